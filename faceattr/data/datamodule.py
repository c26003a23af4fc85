"""Datasets and the LightningDataModule that serves a manifest's folds."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from faceattr.config import Config
from faceattr.data.align import Alignment
from faceattr.data.decoded_cache import DecodedCache
from faceattr.data.images import SkipReport, load_rgb
from faceattr.data.landmarks import parse_points
from faceattr.data.manifest import read_manifest, unlabelled_heads
from faceattr.data.samplers import EpochSeededSampler, balance_labels, inverse_frequency_weights
from faceattr.data.split import load_or_make_folds
from faceattr.data.transforms import eval_transform, train_transform
from faceattr.errors import ImageLoadError, ManifestError
from faceattr.labels import CLASSIFICATION_TASKS, TASK_CLASSES, YOUNG_THRESHOLD

log = logging.getLogger(__name__)

TARGETS = (*CLASSIFICATION_TASKS, "label18")
# (row index, image, targets, seed, cache scale) -> (image, targets): an augmentation that may change labels
Masker = Callable[[int, np.ndarray, dict, "int | None", tuple], tuple[np.ndarray, dict]]
MaskerFactory = Callable[[pd.DataFrame], Masker]
MAX_AGE = 100
MAX_SUBSTITUTES = 50


class FaceDataset(Dataset):
    """Manifest rows -> (image tensor, {task: label}). An unreadable image is reported and replaced by the next
    readable one, so a long run keeps going and the skip lands in `skipped.csv`."""

    def __init__(
        self,
        frame: pd.DataFrame,
        transform,
        skips: SkipReport | None = None,
        masker: Masker | None = None,
        cache: DecodedCache | None = None,
        soft_targets: dict[str, np.ndarray] | None = None,
        alignment: Alignment | None = None,
    ) -> None:
        self.paths = frame["path"].astype(str).tolist()
        # faces.align: each face warped onto the landmark template, as predict warps detected faces
        self.alignment = alignment
        self.points = [parse_points(p, 5) for p in frame["landmarks"]] if alignment is not None else []
        self.targets = {t: torch.tensor(frame[t].to_numpy(np.int64)) for t in TARGETS if t in frame}
        self.targets["age"] = torch.tensor(age_targets(frame["age"].to_numpy(float)))
        for task, probabilities in (soft_targets or {}).items():  # a teacher's probabilities (distill.peer)
            self.targets[f"soft_{task}"] = torch.tensor(probabilities, dtype=torch.float32)
        self.transform = transform
        self.skips = skips if skips is not None else SkipReport()
        self.masker = masker
        self.cache = cache

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, item: int | tuple[int, int]):
        index, seed = item if isinstance(item, tuple) else (item, None)
        if seed is not None and hasattr(self.transform, "set_random_seed"):
            self.transform.set_random_seed(seed)  # augmentation fixed by (run seed, epoch, position)
        for attempt in range(MAX_SUBSTITUTES):
            i = (index + attempt) % len(self.paths)
            image = self.cache.get(self.paths[i]) if self.cache is not None else None
            scale = self.cache.scale(self.paths[i]) if image is not None else (1.0, 1.0)
            if image is None:
                try:
                    image = load_rgb(self.paths[i])
                except ImageLoadError as e:
                    self.skips.add(e)
                    continue
            targets = {t: v[i] for t, v in self.targets.items()}
            if self.masker is not None:
                image, targets = self.masker(i, image, targets, seed, scale)
            if self.alignment is not None and self.points[i] is not None:  # landmarks: original pixels
                image = self.alignment(image, self.points[i] * np.asarray(scale))
            return self.transform(image=image)["image"], targets
        raise ImageLoadError(self.paths[index], "corrupt", f"{MAX_SUBSTITUTES} images in a row could not be read")


class FaceDataModule(L.LightningDataModule):
    """Reads the manifest once, splits by person, and serves train/val loaders for `cfg.data.fold`."""

    def __init__(
        self, cfg: Config, mean, std, run_dir: str | Path | None = None, masker_factory: MaskerFactory | None = None
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.masker_factory = masker_factory  # augment.synthetic_mask_p: the caller injects the synth package's
        self.mean, self.std = tuple(mean), tuple(std)
        self.skips = SkipReport(Path(run_dir) / "skipped.csv" if run_dir else None)
        self.train_frame: pd.DataFrame | None = None
        self.val_frame: pd.DataFrame | None = None
        self.device_augment = None  # augment.on_device: built in setup
        self.soft_targets: dict[str, np.ndarray] | None = None  # distill.peer: per train_frame row, set by train

    def setup(self, stage: str | None = None) -> None:
        if self.train_frame is not None:
            return
        d = self.cfg.data
        if not d.manifest:
            raise ManifestError("data.manifest is not set; run `faceattr prepare` and pass data.manifest=PATH")
        frame = read_manifest(d.manifest, d.old_threshold)
        frame = frame[frame["source"] != "competition-eval"].reset_index(drop=True)
        if self.cfg.train.full_data:
            train, val = frame, frame.iloc[:0]
        elif d.use_split_column:
            if "split" not in frame:
                raise ManifestError(f"{d.manifest}: data.use_split_column=true needs a 'split' column (train/valid)")
            train, val = frame[frame["split"] == "train"], frame[frame["split"] == "valid"]
        else:
            frame["fold"] = load_or_make_folds(frame, d.manifest, d.folds, self.cfg.data.split_seed)
            train, val = frame[frame["fold"] != d.fold], frame[frame["fold"] == d.fold]
        train = drop_near_boundary(train, d.drop_near_boundary, d.old_threshold)
        if d.keep_masked < 5 and not d.keep_masked_random:
            train = train[~fixed_masked_drop(train, d.keep_masked, self.cfg.seed)]
        if self.cfg.faces.align and "landmarks" not in frame:
            raise ManifestError(
                f"{d.manifest}: faces.align=true warps faces by their landmarks, and the manifest has none; make it "
                "with `faceattr framing MANIFEST --landmarks` (face crops) or `faceattr crop` (photos)"
            )
        unlabelled = unlabelled_heads(train, self.cfg.model.heads)
        if unlabelled:
            labelled = [h for h in self.cfg.model.heads if h not in unlabelled]
            without = f", or train the other heads alone (model.heads=[{','.join(labelled)}])" if labelled else ""
            raise ManifestError(
                f"{d.manifest}: no training row has a label for the head(s) {', '.join(unlabelled)}; label the "
                f"faces (`faceattr pseudo-label` with a trained model, if they have none){without}"
            )
        self.train_frame = _cap(train, d.max_train_samples, self.cfg.seed)
        self.val_frame = _cap(val, d.max_val_samples, self.cfg.seed)
        if self.cfg.augment.on_device:  # built now, so a missing kornia stops the run before it starts
            from faceattr.data.device_augment import DeviceAugment

            self.device_augment = DeviceAugment(d.image_size, self.cfg.augment, self.mean, self.std)

    @property
    def batch_size(self) -> int:
        """The training batch (Lightning's batch-size tuner reads and sets it here)."""
        return self.cfg.data.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.cfg.data.batch_size = int(value)

    def train_sampler(self) -> EpochSeededSampler:
        """Shuffling, optional weighted draws by a label, optional per-epoch masked-photo downsampling."""
        frame, d = self.train_frame, self.cfg.data
        weights = None
        if self.cfg.sampler.name == "weighted":
            weights = inverse_frequency_weights(balance_labels(frame, self.cfg.sampler.by))
        groups = None
        if d.keep_masked < 5 and d.keep_masked_random:
            groups = masked_groups(frame)
        return EpochSeededSampler(len(frame), self.cfg.seed, weights=weights, groups=groups, keep=d.keep_masked)

    def label_shares(self, heads: list[str]) -> dict[str, list[float]]:
        """The class shares each of `heads` sees in training, as `priors.trained` records them: rows weighted as the
        sampler draws them (weighted sampling, k of a person's masked photos), and bare faces that
        `augment.synthetic_mask_p` masks counted as worn or incorrect, in expectation."""
        frame, d, aug = self.train_frame, self.cfg.data, self.cfg.augment
        weight = np.ones(len(frame))
        if self.cfg.sampler.name == "weighted":
            weight = inverse_frequency_weights(balance_labels(frame, self.cfg.sampler.by))
            weight = weight * len(frame) / weight.sum()
        if d.keep_masked < 5:
            groups = masked_groups(frame)
            in_group = groups >= 0
            size = pd.Series(groups[in_group]).value_counts()[groups[in_group]].to_numpy()  # each row's group size
            weight[in_group] *= np.minimum(d.keep_masked, size) / size
        shares: dict[str, list[float]] = {}
        for head in heads:
            labels = frame[head].to_numpy()
            known = labels >= 0
            counts = np.bincount(labels[known].astype(np.int64), weights=weight[known], minlength=TASK_CLASSES[head])
            if head == "mask" and aug.synthetic_mask_p > 0 and "landmarks" in frame:
                drawable = known & (labels == 2) & frame["landmarks"].map(lambda t: parse_points(t, 5) is not None)
                moved = float(weight[drawable.to_numpy()].sum()) * aug.synthetic_mask_p
                counts = counts + moved * np.array(
                    [1 - aug.synthetic_mask_incorrect, aug.synthetic_mask_incorrect, -1.0]
                )
            if counts.sum() > 0:
                counts = np.maximum(counts, 1e-3 * counts.sum())  # a class never seen still gets a small share
                shares[head] = [round(float(v), 6) for v in counts / counts.sum()]
        return shares

    def _loader(self, frame: pd.DataFrame, transform, batch_size: int, shuffle: bool) -> DataLoader:
        workers = resolve_workers(self.cfg)
        sampler = self.train_sampler() if shuffle else None
        aug = self.cfg.augment
        masker = None
        if shuffle and aug.synthetic_mask_p > 0:
            if self.masker_factory is None:
                raise ManifestError(
                    "augment.synthetic_mask_p needs a masker: build the data module through faceattr.training.train"
                )
            masker = self.masker_factory(frame)
        cache = (
            DecodedCache(self.cfg.data.decoded_cache, self.cfg.data.image_size) if self.cfg.data.decoded_cache else None
        )
        if cache is not None and (missing := int((~frame["path"].astype(str).isin(cache.row_of)).sum())):
            log.warning(  # e.g. a cache built from another manifest: right, but decoded from the files, slowly
                "data.decoded_cache holds %d of these %d images; the rest are decoded from their files "
                "(build it from this manifest with `faceattr cache`)",
                len(frame) - missing,
                len(frame),
            )
        return DataLoader(
            FaceDataset(
                frame,
                transform,
                self.skips,
                masker,
                cache,
                self.soft_targets if shuffle else None,
                Alignment.of(self.cfg.faces),
            ),
            batch_size=batch_size,
            sampler=sampler,
            drop_last=shuffle and len(frame) > batch_size,
            num_workers=workers,
            persistent_workers=workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    def train_dataloader(self) -> DataLoader:
        d = self.cfg.data
        if self.cfg.augment.on_device:  # uint8 batches; on_after_batch_transfer augments them
            from faceattr.data.device_augment import ResizeToUint8

            transform = ResizeToUint8(d.image_size)
        else:
            transform = train_transform(d.image_size, self.cfg.augment, self.mean, self.std)
        return self._loader(self.train_frame, transform, d.batch_size, shuffle=True)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        """With `augment.on_device`, the training batches arrive as uint8 (validation ones are normalised floats)
        and are augmented here, on the device that trains."""
        images, targets = batch
        if images.dtype != torch.uint8 or self.device_augment is None:
            return batch
        return self.device_augment.to(images.device)(images), targets

    def val_dataloader(self) -> DataLoader:
        d = self.cfg.data
        return self._loader(self.val_frame, eval_transform(d.image_size, self.mean, self.std), d.eval_batch_size, False)


def resolve_workers(cfg: Config) -> int:
    """data.num_workers, with auto = 0 on CPU (decoding in the training process beat worker processes competing
    for the same cores in benchmarks/throughput.py) and min(8, cores - 1) when a GPU trains."""
    if cfg.data.num_workers != "auto":
        return int(cfg.data.num_workers)
    on_gpu = cfg.trainer.accelerator in ("gpu", "cuda") or (
        cfg.trainer.accelerator == "auto" and torch.cuda.is_available()
    )
    return min(8, max(0, (os.cpu_count() or 1) - 1)) if on_gpu else 0


def age_targets(age: np.ndarray) -> np.ndarray:
    """Years -> whole-year class 0..100 for the exact-age head; -1 where the age is unknown."""
    known = ~np.isnan(age)
    out = np.full(age.shape, -1, dtype=np.int64)
    out[known] = np.clip(np.rint(age[known]), 0, MAX_AGE).astype(np.int64)
    return out


def masked_groups(frame: pd.DataFrame) -> np.ndarray:
    """Group id per row: one group per person's correctly-masked photos (mask == 0); -1 for everything else."""
    masked = (frame["mask"] == 0).to_numpy()
    codes = pd.factorize(frame["person_id"])[0]
    return np.where(masked, codes, -1)


def fixed_masked_drop(frame: pd.DataFrame, keep: int, seed: int) -> np.ndarray:
    """Rows to drop so that each person keeps a fixed, seeded `keep` of their masked photos."""
    groups = masked_groups(frame)
    rng = np.random.default_rng(seed)
    drop = np.zeros(len(frame), dtype=bool)
    for g in np.unique(groups[groups >= 0]):
        members = np.flatnonzero(groups == g)
        if len(members) > keep:
            drop[rng.choice(members, size=len(members) - keep, replace=False)] = True
    return drop


def drop_near_boundary(frame: pd.DataFrame, years: int, old_threshold: int) -> pd.DataFrame:
    """Training rows whose age lies within `years` of an age-bin boundary (b - years <= age < b + years) go:
    their bin is the least certain label."""
    if years <= 0:
        return frame
    age = frame["age"].to_numpy(float)
    near = np.zeros(len(frame), dtype=bool)
    for boundary in (YOUNG_THRESHOLD, old_threshold):
        near |= (age >= boundary - years) & (age < boundary + years)
    return frame[~near]


def _cap(frame: pd.DataFrame, limit: int, seed: int) -> pd.DataFrame:
    if limit and len(frame) > limit:
        frame = frame.sample(n=limit, random_state=seed)
    return frame.reset_index(drop=True)
