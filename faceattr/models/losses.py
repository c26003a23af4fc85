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
