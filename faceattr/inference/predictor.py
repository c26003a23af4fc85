"""Load a checkpoint and turn images into per-task probabilities; unreadable images are reported, not fatal."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from faceattr.config import Config, TTAConfig
from faceattr.data.images import IMAGE_SUFFIXES, SkipReport, load_rgb
from faceattr.data.transforms import eval_transform
from faceattr.errors import ConfigError, FaceAttrError, ImageLoadError
from faceattr.inference.profile import StageClock
from faceattr.inference.tta import tta_views
from faceattr.labels import CLASS_NAMES, DEFAULT_OLD_THRESHOLD, TASK_CLASSES, decide
from faceattr.models.checkpoints import read_checkpoint


class _PathDataset(Dataset):
    def __init__(self, paths: list[str], transform, max_pixels: int) -> None:
        self.paths, self.transform, self.max_pixels = paths, transform, max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            return self.transform(image=load_rgb(self.paths[i], self.max_pixels))["image"], i, None
        except ImageLoadError as e:
            return None, i, (e.path, e.reason, e.detail)


def _collate(batch):
    good = [(x, i) for x, i, _ in batch if x is not None]
    errors = [err for _, _, err in batch if err is not None]
    images = torch.stack([x for x, _ in good]) if good else None
    return images, [i for _, i in good], errors


@dataclass
class Predictions:
    """Probabilities per task for the images that could be read, in input order."""

    paths: list[str]
    probs: dict[str, np.ndarray]
    skipped: list[tuple[str, str, str]]
    old_threshold: int = DEFAULT_OLD_THRESHOLD

    def labels(self) -> dict[str, np.ndarray]:
        """Labels per task (see faceattr.labels.decide): argmax, age in years, label18."""
        return decide(self.probs, self.old_threshold)


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class BasePredictor:
    """What every predictor offers: `cfg`, `tasks`, `transform`, `predict_tensor` and `predict_paths`."""

    cfg: Config
    tasks: list[str]
    transform: object
    source: Path
    tta: TTAConfig | None = None  # test-time augmentation; None = the model's own cfg.tta

    def _predict_batch(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def predict_tensor(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        """Probabilities per head for a normalised batch, averaged over the TTA views."""
        tta = self.tta if self.tta is not None else self.cfg.tta
        if not tta.transforms:
            return self._predict_batch(images)
        views = tta_views(images, tta, self.cfg.augment.mean, self.cfg.augment.std)
        outputs = [self._predict_batch(v) for v in views]
        return {task: np.mean([o[task] for o in outputs], axis=0) for task in outputs[0]}

    def predict_crops(self, crops: list[np.ndarray], clock: StageClock | None = None) -> dict[str, np.ndarray]:
        """Probabilities for raw RGB crops (this predictor's own resize and normalisation)."""
        clock = clock or StageClock()
        with clock.stage("resize"):
            batch = torch.stack([self.transform(image=c)["image"] for c in crops])
        with clock.stage("model"):
            return self.predict_tensor(batch)

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
        }

    def predict_paths(
        self, paths: list[str], batch_size: int = 64, num_workers: int = 0, skips: SkipReport | None = None
    ) -> Predictions:
        loader = DataLoader(
            _PathDataset([str(p) for p in paths], self.transform, self.cfg.faces.max_pixels),
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=_collate,
        )
        kept: list[int] = []
        chunks: dict[str, list[np.ndarray]] = {task: [] for task in self.tasks}
        skipped: list[tuple[str, str, str]] = []
        for images, indices, errors in loader:
            for path, reason, detail in errors:
                skipped.append((path, reason, detail))
                if skips is not None:
                    skips.add(ImageLoadError(path, reason, detail))
            if images is None:
                continue
            for task, p in self.predict_tensor(images).items():
                chunks[task].append(p)
            kept.extend(indices)
        probs = {task: np.concatenate(c) if c else np.zeros((0, TASK_CLASSES[task])) for task, c in chunks.items()}
        return Predictions([str(paths[i]) for i in kept], probs, skipped, self.cfg.data.old_threshold)


class Predictor(BasePredictor):
    """A trained model ready to predict; the checkpoint carries the config, so nothing else is needed."""

    def __init__(self, checkpoint: str | Path, device: str = "auto") -> None:
        path = Path(checkpoint)
        ckpt = read_checkpoint(path)  # weights-only: a crafted file cannot run code here
        try:
            config = ckpt["hyper_parameters"]["config"]
        except (KeyError, TypeError):
            raise ConfigError(f"{path} is not a faceattr checkpoint (no hyper_parameters.config)") from None
        self.source = self.checkpoint = path
        self.device = resolve_device(device)
        from faceattr.models.net import FaceAttrNet  # timm, imported only here: an ONNX model does without it

        self.module = FaceAttrNet(config)  # the plain network: prediction never imports Lightning
        self.module.load_checkpoint_weights(ckpt["state_dict"], str(path))
        self.module.eval().to(self.device)
        # channels-last convolutions run about 15 % faster on CPU (oneDNN); results equal to float rounding
        self.memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.module.to(memory_format=self.memory_format)
        self.cfg = self.module.cfg
        self.tasks = self.module.tasks
        self.transform = eval_transform(self.cfg.data.image_size, self.cfg.augment.mean, self.cfg.augment.std)

    @torch.inference_mode()
    def _predict_batch(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        probs = self.module.predict_probs(images.to(self.device, memory_format=self.memory_format))
        return {task: p.cpu().numpy() for task, p in probs.items()}


def load_predictor(
    path: str | Path | list, device: str = "auto", voting: str = "soft", tta: list[str] | None = None
) -> BasePredictor:
    """A .onnx file runs on onnxruntime (with its JSON sidecar); anything else is a Lightning checkpoint.
    Several paths make an ensemble (per-task models combine, same-task models vote)."""
    paths = list(path) if isinstance(path, list | tuple) else [path]
    members: list[BasePredictor] = []
    for p in paths:
        if Path(p).suffix == ".onnx":
            from faceattr.inference.export import OnnxPredictor

            members.append(OnnxPredictor(p))
        else:
            members.append(Predictor(p, device))
    if tta is not None:
        for member in members:
            member.tta = replace(member.cfg.tta, transforms=list(tta))
    if len(members) == 1:
        return members[0]
    from faceattr.inference.ensemble import EnsemblePredictor

    return EnsemblePredictor(members, voting)


def collect_images(inputs: list[str | Path], suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[str]:
    """Files, folders (searched recursively for `suffixes`) and .txt lists of paths -> paths, sorted per folder."""
    found: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found += sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in suffixes and not f.name.startswith("."))
        elif p.suffix.lower() == ".txt" and p.is_file():
            found += [line.strip() for line in p.read_text().splitlines() if line.strip()]
        elif p.exists() or p.suffix.lower() in suffixes:
            found.append(str(p))  # a missing image file is reported as skipped, not silently dropped
        else:
            raise FaceAttrError(f"{p}: not found; give image files, folders of images, or a .txt list of paths")
    return found
