"""Optimizers and lr schedulers built from the config."""

from __future__ import annotations

import math

import torch
from timm.optim import AdamP
from torch import nn

from faceattr.config import OptimConfig, SchedulerConfig


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
    wd = cfg.weight_decay
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, weight_decay=wd)
    if cfg.name == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=wd)
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=wd)
    if cfg.name == "adamp":
        return AdamP(groups, lr=cfg.lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer {cfg.name}")


def quarter_factor(epoch: int, epochs: int) -> float:
    """The recipe's quarter schedule: lr x1, x0.2, x0.04, x0.008 from 0, 25, 50, 75 % of the epochs."""
    quarter = min(3, int(4 * epoch / max(1, epochs)))
    return 0.2**quarter


def create_scheduler(cfg: SchedulerConfig, optimizer: torch.optim.Optimizer, epochs: int):
    """A per-epoch lr scheduler, or None."""
    if cfg.name == "none":
        return None
    if cfg.name == "quarter":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: quarter_factor(e, epochs))
    if cfg.name == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.name == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.gamma)
    if cfg.name == "cosine":
        floor = cfg.min_lr_ratio

        def cosine(e: int) -> float:
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(e, epochs) / max(1, epochs)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
    raise ValueError(f"unknown scheduler {cfg.name}")
