"""Losses. A label of -1 means 'unknown for this sample' and contributes no loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -1


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy over the samples whose label is known; 0 (with a gradient path) when none is."""
    valid = target != IGNORE
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[valid], target[valid], label_smoothing=label_smoothing)


def age_distribution_loss(logits: torch.Tensor, age: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
    """Cross-entropy of the 101-way age softmax against the true age (one-hot, or a Gaussian of width sigma
    around it when sigma > 0); samples with unknown age (-1) contribute nothing."""
    valid = age != IGNORE
    if not bool(valid.any()):
        return logits.sum() * 0.0
    logits, age = logits[valid], age[valid].clamp(0, logits.shape[1] - 1)
    if sigma <= 0:
        return F.cross_entropy(logits, age)
    ages = torch.arange(logits.shape[1], device=logits.device, dtype=logits.dtype)
    target = torch.exp(-0.5 * ((ages[None, :] - age[:, None].to(logits.dtype)) / sigma) ** 2)
    target = target / target.sum(1, keepdim=True)
    return -(target * F.log_softmax(logits, 1)).sum(1).mean()


def expected_age(logits: torch.Tensor) -> torch.Tensor:
    """Expectation of the age softmax: the DEX age estimate, differentiable."""
    ages = torch.arange(logits.shape[1], device=logits.device, dtype=torch.float32)
    return logits.float().softmax(1) @ ages
