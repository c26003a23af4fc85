"""Lightning callbacks that make runs reproducible and resumable."""

from __future__ import annotations

import os
import random

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from faceattr.atomic import link_or_copy
from faceattr.training.checkpoint_io import slim_checkpoint


class BatchSeed(L.Callback):
    """Reseed torch, numpy and random before every training batch from (seed, epoch, batch, rank).

    Randomness in a step (dropout, stochastic depth) then depends only on where the step is, not on how many
    random numbers other code drew before it (a dataloader iterator, a sanity check, a restart), so a run
    resumed from the checkpoint of epoch N continues exactly as an uninterrupted run would.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        step_seed = int(
            np.random.SeedSequence([self.seed, trainer.current_epoch, batch_idx, trainer.global_rank]).generate_state(
                1
            )[0]
        )
        torch.manual_seed(step_seed)
        np.random.seed(step_seed)
        random.seed(step_seed)


class SaveAbove(L.Callback):
    """Keep every checkpoint whose monitored metric reaches a threshold (besides best and last), as some teams
    did to ensemble good epochs."""

    def __init__(self, dirpath, monitor: str, threshold: float, mode: str = "max") -> None:
        from pathlib import Path

        self.dirpath, self.monitor, self.threshold, self.mode = Path(dirpath), monitor, threshold, mode
        self.saved: list[str] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.monitor])
        good = value >= self.threshold if self.mode == "max" else value <= self.threshold
        if good:
            path = self.dirpath / f"epoch{trainer.current_epoch:03d}-{self.monitor.replace('/', '_')}{value:.4f}.ckpt"
            trainer.save_checkpoint(path)
            if trainer.is_global_zero:
                slim_checkpoint(path)  # kept to predict with, as best.ckpt: weights and config
            self.saved.append(str(path))


class BestAndLast(ModelCheckpoint):
    """Lightning's ModelCheckpoint, with `last.ckpt` written at the end of every epoch as before Lightning 2.6.

    Since 2.6 `save_last` writes it only at a step that also saved a top-k checkpoint, so after an epoch that did
    not improve the monitored metric `last.ckpt` is still the best epoch: a killed run would resume from there and
    train again every epoch since, and "the last epoch" would silently be an older one.

    When `best.ckpt` was written at this very step (every epoch of a run that keeps the last one: full data or
    `train.monitor=last`), `last.ckpt` is a hard link to it instead of a second copy of the same bytes (55 MB
    each for the age-gender preset) until the run ends and best.ckpt is slimmed (training/checkpoint_io.py). Both
    stay plain files; writes replace a file by rename, so the next epoch's best.ckpt never changes the last.ckpt a
    user or --resume holds.
    """

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_missed(trainer)

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict) -> None:
        saved_now = self._last_global_step_saved == trainer.global_step and self._last_checkpoint_saved
        if not (self.save_last and saved_now):
            super()._save_last_checkpoint(trainer, monitor_candidates)
            return
        path = self.format_checkpoint_name(monitor_candidates, self.CHECKPOINT_NAME_LAST)
        self.last_model_path = path
        if trainer.is_global_zero and os.path.abspath(path) != os.path.abspath(self._last_checkpoint_saved):
            link_or_copy(self._last_checkpoint_saved, path)
        trainer.strategy.barrier()

    def _save_last_if_missed(self, trainer: L.Trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):  # skipped: saved at this step
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
