"""Optimizers and lr schedulers built from the config."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from timm.optim import AdamP
from torch import nn

from faceattr.config import OptimConfig, SchedulerConfig
from faceattr.config.choices import Optimizer, Schedule


def create_optimizer(cfg: OptimConfig, backbone: nn.Module, heads: nn.Module) -> torch.optim.Optimizer:
    """Two param groups so the backbone can learn slower than the freshly initialised heads."""
    groups = [
        {
            "params": [p for p in backbone.parameters()],
            "lr": cfg.lr * cfg.backbone_lr_mult,
            "name": "backbone",
        },
        {"params": [p for p in heads.parameters()], "lr": cfg.lr, "name": "heads"},
    ]
    return OPTIMIZERS[cfg.name](groups, cfg)


# optim.name -> builder(param groups, cfg), for every name config/choices.py spells
OPTIMIZERS: dict[str, Callable[[list[dict], OptimConfig], torch.optim.Optimizer]] = {
    Optimizer.SGD: lambda groups, cfg: torch.optim.SGD(
        groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay
    ),
    Optimizer.ADAM: lambda groups, cfg: torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay),
    Optimizer.ADAMW: lambda groups, cfg: torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay),
    Optimizer.ADAMP: lambda groups, cfg: AdamP(groups, lr=cfg.lr, weight_decay=cfg.weight_decay),
}


def quarter_factor(epoch: float, epochs: int) -> float:
    """The recipe's quarter schedule: lr x1, x0.2, x0.04, x0.008 from 0, 25, 50, 75 % of the epochs."""
    quarter = min(3, int(4 * epoch / max(1, epochs)))
    return 0.2**quarter


def lr_factor(cfg: SchedulerConfig, epoch: float, epochs: int) -> float:
    """The lr multiplier at `epoch` (fractional between epochs with scheduler.per_step): every schedule is a pure
    function of the epoch, so a resumed run (whose checkpoint may predate the end-of-epoch scheduler step) sets
    exactly the lr an uninterrupted run has."""
    return SCHEDULES[cfg.name](cfg, epoch, epochs)


def _cosine(cfg: SchedulerConfig, epoch: float, epochs: int) -> float:
    floor = cfg.min_lr_ratio
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(epoch, epochs) / max(1, epochs)))


# scheduler.name -> lr multiplier(cfg, epoch, epochs), for every name config/choices.py spells
SCHEDULES: dict[str, Callable[[SchedulerConfig, float, int], float]] = {
    Schedule.NONE: lambda cfg, epoch, epochs: 1.0,
    Schedule.QUARTER: lambda cfg, epoch, epochs: quarter_factor(epoch, epochs),
    Schedule.STEP: lambda cfg, epoch, epochs: cfg.gamma ** (epoch // max(1, cfg.step_size)),
    Schedule.EXPONENTIAL: lambda cfg, epoch, epochs: cfg.gamma**epoch,
    Schedule.COSINE: _cosine,
}


def create_scheduler(cfg: SchedulerConfig, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: float = 1.0):
    """A LambdaLR over `lr_factor`, or None for a constant lr. It counts epochs, or optimizer steps when given
    `steps_per_epoch` (scheduler.per_step): the same curve, followed between epochs too."""
    if cfg.name == Schedule.NONE:
        return None
    lr_factor(cfg, 0, epochs)  # unknown names fail here, not mid-run
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda n: lr_factor(cfg, n / steps_per_epoch, epochs))


def sync_scheduler(scheduler, position: int) -> None:
    """Put a LambdaLR (and its optimizer's lrs) at `position` (its epoch or step), whatever count the restored state
    holds."""
    scheduler.last_epoch = position - 1
    with warnings.catch_warnings():  # "step() before optimizer.step()": intended, we only set the lr here
        warnings.simplefilter("ignore", UserWarning)
        scheduler.step()
