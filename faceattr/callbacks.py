"""Lightning callbacks that make runs reproducible and resumable."""

from __future__ import annotations

import random

import lightning as L
import numpy as np
import torch


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
