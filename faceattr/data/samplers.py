"""Samplers whose order and augmentation seeds are a pure function of (seed, epoch).

Each item is `(index, sample_seed)`: the dataset reseeds its augmentation with `sample_seed`, so an epoch is the
same whichever worker loads which sample, and a run resumed at epoch N replays exactly what an uninterrupted
run would have done. Lightning calls `set_epoch` before every epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from torch.utils.data import Sampler

from faceattr.errors import ManifestError


class EpochSeededSampler(Sampler[tuple[int, int]]):
    """Shuffled (or in-order) indices with a per-sample augmentation seed.

    weights: draw `num_samples` with replacement, in proportion (a weighted random sampler).
    groups + keep: each epoch, keep only `keep` random members of every group (e.g. 2 of a person's 5 masked
    photos); rows in no group (group id < 0) are always kept.
    """

    def __init__(
        self,
        size: int,
        seed: int,
        shuffle: bool = True,
        weights: np.ndarray | None = None,
        groups: np.ndarray | None = None,
        keep: int = 0,
    ) -> None:
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.weights = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.groups = None if groups is None or keep <= 0 else np.asarray(groups)
        self.keep = keep
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _pool(self, rng: np.random.Generator) -> np.ndarray:
        if self.groups is None:
            return np.arange(self.size)
        kept = [np.flatnonzero(self.groups < 0)]
        frame = pd.DataFrame({"i": np.arange(self.size), "g": self.groups})
        for _, members in frame[frame.g >= 0].groupby("g")["i"]:
            kept.append(rng.choice(members.to_numpy(), size=min(self.keep, len(members)), replace=False))
        return np.sort(np.concatenate(kept))

    def __len__(self) -> int:
        if self.groups is None:
            return self.size
        sizes = pd.Series(self.groups[self.groups >= 0]).value_counts().clip(upper=self.keep)
        return int((self.groups < 0).sum() + sizes.sum())

    def __iter__(self) -> Iterator[tuple[int, int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        pool = self._pool(rng)
        if self.weights is not None:
            p = self.weights[pool] / self.weights[pool].sum()
            order = rng.choice(pool, size=len(pool), replace=True, p=p)
        elif self.shuffle:
            order = rng.permutation(pool)
        else:
            order = pool
        seeds = rng.integers(0, 2**31 - 1, size=len(order))
        return iter(zip(order.tolist(), seeds.tolist(), strict=True))


def balance_labels(frame: pd.DataFrame, by: str) -> np.ndarray:
    """One integer label per row from the manifest column(s) named in `by` ('race' or 'race+gender'), for
    balancing by any label, not only the trained ones; a missing value (empty, NaN or -1) is unknown (-1)."""
    columns = [c.strip() for c in by.split("+")]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ManifestError(f"sampler.by={by}: the manifest has no column {missing}; columns: {list(frame.columns)}")
    parts = frame[columns].astype(str).apply(lambda col: col.str.strip())
    unknown = parts.isin(["", "nan", "None", "-1", "-1.0"]).any(axis=1).to_numpy()
    codes, _ = pd.factorize(pd.MultiIndex.from_frame(parts))
    return np.where(unknown, -1, codes)


def inverse_frequency_weights(labels: np.ndarray) -> np.ndarray:
    """1 / count of each sample's label, so every label is drawn equally often; unknown (-1) labels get the
    mean weight."""
    labels = np.asarray(labels)
    known = labels >= 0
    counts = pd.Series(labels[known]).value_counts()
    weights = np.ones(len(labels), dtype=np.float64)
    weights[known] = 1.0 / counts.reindex(labels[known]).to_numpy()
    if (~known).any():
        weights[~known] = weights[known].mean() if known.any() else 1.0
    return weights
