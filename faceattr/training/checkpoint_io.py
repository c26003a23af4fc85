"""Checkpoints written atomically: a temp file, fsync, then rename; a crash never leaves half a file. The kept
checkpoint (best.ckpt) is slimmed to what prediction reads once a run ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from faceattr.atomic import atomic_path


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save to `path` so that `path` is either the old file or the complete new one."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a process killed mid-write
        stale.unlink(missing_ok=True)
    with atomic_path(path, fsync=True) as tmp:
        torch.save(obj, tmp)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch checkpoint IO with atomic writes."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        atomic_torch_save(checkpoint, path)


# what predict, evaluate, export and model.init_from read of a checkpoint; the rest (the optimizer's moments, an
# average's raw weights, the loops' and callbacks' states) is for resuming, which last.ckpt does
PREDICTION_KEYS = (
    "epoch",
    "global_step",
    "pytorch-lightning_version",
    "state_dict",
    "hyper_parameters",
    "hparams_name",
)


def slim_checkpoint(path: str | Path) -> dict[str, Any]:
    """Rewrite a finished run's kept checkpoint with only its weights, config and epoch: a quarter of the size (14
    against 55 MB for the mask recipes), the file users ship and load. Replaced by rename, so a hard link to the
    old file (last.ckpt, when the last epoch is the kept one) keeps everything a resume needs. Returns what it
    wrote, so the caller need not read it back."""
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    slim = {k: v for k, v in checkpoint.items() if k in PREDICTION_KEYS}
    atomic_torch_save(slim, path)
    return slim
