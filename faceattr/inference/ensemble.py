"""Ensembles over any set of models: folds, backbones, per-task models.

Per head, the members that have it vote: soft voting averages their probabilities, hard voting counts their
argmax votes (ties broken by the soft average). Per-task models (a mask model, a gender model, an age model)
therefore combine into the 18 classes by themselves; `product18` gives the 18-class probabilities as the
product of the three heads' probabilities.
"""

from __future__ import annotations

import numpy as np

from faceattr.data.images import SkipReport
from faceattr.errors import ConfigError
from faceattr.inference.predictor import BasePredictor, Predictions
from faceattr.inference.profile import StageClock
from faceattr.labels import TASKS

VOTINGS = ("soft", "hard")


def check_voting(voting: str) -> None:
    if voting not in VOTINGS:
        raise ConfigError(f"voting must be {' or '.join(VOTINGS)}, not '{voting}'")


def vote(probs: list[np.ndarray], voting: str = "soft") -> np.ndarray:
    """Combine members' (N, C) probabilities: soft = mean; hard = share of argmax votes (+ soft tie-break)."""
    check_voting(voting)
    soft = np.mean(probs, axis=0)
    if voting == "soft":
        return soft
    votes = np.mean([np.eye(p.shape[1])[p.argmax(1)] for p in probs], axis=0)
    return votes + 1e-6 * soft


def product18(probs: dict[str, np.ndarray]) -> np.ndarray:
    """P(code) = P(mask) P(gender) P(age_bin) for the 18 codes mask*6 + gender*3 + age_bin; (N, 18)."""
    m, g, a = probs["mask"], probs["gender"], probs["age_bin"]
    return np.einsum("nm,ng,na->nmga", m, g, a).reshape(len(m), 18)


class EnsemblePredictor(BasePredictor):
    def __init__(self, members: list[BasePredictor], voting: str = "soft") -> None:
        check_voting(voting)
        self.members, self.voting = members, voting
        self.cfg = members[0].cfg
        self.tasks = [t for t in TASKS if any(t in m.tasks for m in members)]
        self.transform = members[0].transform
        self.source = members[0].source

    def describe(self) -> dict:
        return {
            **self.members[0].describe(),
            "heads": self.tasks,
            "voting": self.voting,
            "members": [m.describe() for m in self.members],
        }

    def _combine(self, outputs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        combined = {}
        for task in self.tasks:
            have = [o[task] for o in outputs if task in o]
            combined[task] = vote(have, "soft" if task == "age" else self.voting)
        return combined

    def predict_crops(self, crops: list[np.ndarray], clock: StageClock | None = None) -> dict[str, np.ndarray]:
        return self._combine([m.predict_crops(crops, clock) for m in self.members])

    def face_detector(self):
        return self.members[0].face_detector()

    def predict_array(self, images: np.ndarray) -> dict[str, np.ndarray]:
        sizes = {(m.cfg.data.image_size, tuple(m.cfg.augment.mean), tuple(m.cfg.augment.std)) for m in self.members}
        if len(sizes) > 1:
            raise ConfigError("members differ in input size or normalisation; use predict_paths or predict_crops")
        return self._combine([m.predict_array(images) for m in self.members])

    def predict_paths(
        self,
        paths: list[str],
        batch_size: int = 64,
        num_workers: int = 0,
        skips: SkipReport | None = None,
        landmarks: list | None = None,
    ) -> Predictions:
        results = [
            m.predict_paths(paths, batch_size, num_workers, skips if i == 0 else None, landmarks)
            for i, m in enumerate(self.members)
        ]
        first = results[0]
        combined = self._combine([r.probs for r in results])
        return Predictions(first.paths, combined, first.skipped, first.indices, self.cfg.data.old_threshold)
