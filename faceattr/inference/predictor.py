"""What every model offers for prediction (`BasePredictor`) and `Predictions`; unreadable images are reported, not
fatal. `load_predictor` (inference/load.py) makes one from a checkpoint, an ONNX file or several of them.

Nothing here imports torch: a checkpoint's `Predictor` (checkpoint_predictor.py) does, an ONNX model's
`OnnxPredictor` (onnx_predictor.py) does not, so `predict --onnx` starts without it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from faceattr.config import Config, TTAConfig
from faceattr.data.align import Alignment
from faceattr.data.images import SkipReport, load_rgb
from faceattr.errors import ImageLoadError
from faceattr.inference.priors import apply_priors
from faceattr.inference.profile import StageClock
from faceattr.inference.tta import tta_views
from faceattr.labels import CLASS_NAMES, DEFAULT_OLD_THRESHOLD, TASK_CLASSES, decide

if TYPE_CHECKING:
    from faceattr.faces.detect import FaceDetector

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Predictions:
    """Probabilities per task for the images that could be read, in input order."""

    paths: list[str]
    probs: dict[str, np.ndarray]
    skipped: list[tuple[str, str, str]]
    indices: list[int]  # each kept row's position in the input list: line a manifest up by it, not by path, so a
    # manifest that lists a file twice still lines up
    old_threshold: int = DEFAULT_OLD_THRESHOLD

    def labels(self) -> dict[str, np.ndarray]:
        """Labels per task (see faceattr.labels.decide): argmax, age in years, label18."""
        return decide(self.probs, self.old_threshold)


class BasePredictor:
    """What every predictor offers: `cfg`, `tasks`, `transform`, `predict_array`, `predict_crops`,
    `predict_paths` and `face_detector`."""

    cfg: Config
    tasks: list[str]
    transform: object
    source: Path
    tta: TTAConfig | None = None  # test-time augmentation; None = the model's own cfg.tta
    detector_dir: Path | None = None  # MTCNN's ONNX networks shipped with the model (None: the user cache)
    is_peer: bool = False  # another project's model (inference/peer_models.py)

    def _predict_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def face_detector(self) -> FaceDetector:
        """The face detector with this model's face settings (and MTCNN's networks when the model ships them)."""
        from faceattr.faces.detect import FaceDetector

        return FaceDetector(self.cfg.faces, onnx_dir=self.detector_dir)

    def predict_array(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Probabilities per head for a normalised batch (N x 3 x S x S float32), averaged over the TTA views and
        moved to the class shares of `priors.target` (inference/priors.py)."""
        tta = self.tta if self.tta is not None else self.cfg.tta
        if not tta.transforms:
            return apply_priors(self._predict_batch(images), self.cfg.priors)
        views = tta_views(images, tta, self.cfg.augment.mean, self.cfg.augment.std)
        outputs = [self._predict_batch(v) for v in views]
        averaged = {task: np.mean([o[task] for o in outputs], axis=0) for task in outputs[0]}
        return apply_priors(averaged, self.cfg.priors)

    def predict_crops(self, crops: list[np.ndarray], clock: StageClock | None = None) -> dict[str, np.ndarray]:
        """Probabilities for raw RGB crops (this predictor's own resize and normalisation)."""
        clock = clock or StageClock()
        with clock.stage("resize"):
            batch = np.stack([self.transform(image=c)["image"] for c in crops])
        with clock.stage("model"):
            return self.predict_array(batch)

    def describe(self) -> dict:
        """Backbone, heads and classes, for the server's /model endpoint and the ONNX sidecar."""
        return {
            "source": str(self.source),
            "backbone": self.cfg.model.backbone,
            "heads": list(self.tasks),
            "classes": {t: list(CLASS_NAMES[t]) if t in CLASS_NAMES else TASK_CLASSES[t] for t in self.tasks},
            "input_size": self.cfg.data.image_size,
            "mean": list(self.cfg.augment.mean or []),
            "std": list(self.cfg.augment.std or []),
            "old_threshold": self.cfg.data.old_threshold,
            "class_shares": {"trained": self.cfg.priors.trained, "target": self.cfg.priors.target},
        }

    def predict_paths(
        self,
        paths: list[str],
        batch_size: int = 64,
        num_workers: int = 0,
        skips: SkipReport | None = None,
        landmarks: list | None = None,
    ) -> Predictions:
        """Probabilities for image files, in order; unreadable files are reported (and in `skips`), not fatal.
        `num_workers` threads decode and resize the next batches while the model runs (0: in this thread).
        `landmarks` (a 5-point array or None per path): a model trained on aligned faces (faces.align) gets each
        image aligned by its own, as training aligned the manifest's crops."""
        kept: list[int] = []
        chunks: dict[str, list[np.ndarray]] = {task: [] for task in self.tasks}
        skipped: list[tuple[str, str, str]] = []
        names = [str(p) for p in paths]
        batches = [list(range(s, min(s + batch_size, len(names)))) for s in range(0, len(names), batch_size)]
        alignment = Alignment.of(self.cfg.faces)
        points = landmarks if landmarks is not None and alignment is not None else [None] * len(names)
        for images, indices, errors in read_ahead(
            lambda b: self._batch(names, b, points, alignment), batches, num_workers
        ):
            for error in errors:
                skipped.append((error.path, error.reason, error.detail))
                if skips is not None:
                    skips.add(error)
            if images is None:
                continue
            for task, p in self.predict_array(images).items():
                chunks[task].append(p)
            kept.extend(indices)
        probs = {task: np.concatenate(c) if c else np.zeros((0, TASK_CLASSES[task])) for task, c in chunks.items()}
        return Predictions([str(paths[i]) for i in kept], probs, skipped, kept, self.cfg.data.old_threshold)

    def _load(self, path: str, points: np.ndarray | None, alignment: Alignment | None) -> np.ndarray | ImageLoadError:
        try:
            image = load_rgb(path, self.cfg.faces.max_pixels)
        except ImageLoadError as e:
            return e
        if alignment is not None and points is not None:
            image = alignment(image, points)
        return self.transform(image=image)["image"]

    def _batch(
        self, paths: list[str], indices: list[int], points: list, alignment: Alignment | None
    ) -> tuple[np.ndarray | None, list[int], list[ImageLoadError]]:
        """(normalised images or None, the indices read, the errors) for `paths[i]` of `indices`, each aligned by
        `points[i]` when the model was trained aligned (`alignment`)."""
        results = [self._load(paths[i], points[i], alignment) for i in indices]
        good = [(i, r) for i, r in zip(indices, results, strict=True) if not isinstance(r, ImageLoadError)]
        errors = [r for r in results if isinstance(r, ImageLoadError)]
        return (np.stack([r for _, r in good]) if good else None), [i for i, _ in good], errors


def read_ahead(work: Callable[[T], R], items: list[T], workers: int = 1) -> Iterator[R]:
    """`work(item)` for each item, in order. With `workers`, that many background threads run the next items'
    work while the caller uses this one's result (never more than `workers` results waiting); 0 runs each in
    this thread. Errors are raised in order, as without threads."""
    if workers <= 0:
        yield from map(work, items)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = deque(pool.submit(work, item) for item in items[:workers])
        for k in range(len(items)):
            result = pending.popleft().result()
            if k + workers < len(items):
                pending.append(pool.submit(work, items[k + workers]))
            yield result
