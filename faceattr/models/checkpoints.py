"""Reading checkpoints without running code: `torch.load(weights_only=True)` and nothing else.

A checkpoint is a pickle, and unpickling can call any function the file names, so a `.ckpt` from a stranger could
run code the moment it is opened. faceattr's own checkpoints hold only tensors and plain values (the config is
stored as dicts, lists, strings and numbers), which torch's restricted unpickler accepts; anything else is refused
before a single object is built.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from faceattr.errors import ConfigError


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents, loaded with torch's weights-only unpickler (no code runs)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path} not found; train one with `faceattr train` (see runs/*/checkpoints)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[-1][:200] if str(e).strip() else type(e).__name__
        raise ConfigError(
            f"{path} was refused: it holds objects other than tensors and plain values ({first}), and opening such a "
            "file could run code. faceattr's own checkpoints never do; if this one is yours and you trust it, "
            "export it where it was made (`faceattr export CKPT --out model.onnx`) and use the ONNX file"
        ) from None
    except Exception as e:
        raise ConfigError(f"{path} is not a faceattr checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(obj, dict) or "state_dict" not in obj:
        raise ConfigError(f"{path} is not a faceattr checkpoint (no state_dict); pass a runs/*/checkpoints/*.ckpt")
    return obj
