"""Losses. A label of -1 means 'unknown for this sample' and contributes no loss."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from faceattr.config import LossConfig
from faceattr.config.choices import AgeLoss, Loss
from faceattr.labels import UNKNOWN

IGNORE = UNKNOWN  # a label of -1 contributes no loss


def masked_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    label_smoothing: float = 0.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """(Class-weighted, label-smoothed) cross-entropy over the samples whose label is known; 0 when none is."""
    valid = target != IGNORE
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits[valid], target[valid], weight=weight, label_smoothing=label_smoothing)


def soft_cross_entropy(logits: torch.Tensor, probabilities: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against a teacher's probabilities (distillation at temperature 1), over the rows it answered
    (a row of NaN is a face the teacher never saw); 0 when none is."""
    known = ~torch.isnan(probabilities).any(1)
    if not bool(known.any()):
        return logits.sum() * 0.0
    return -(probabilities[known] * F.log_softmax(logits[known], 1)).sum(1).mean()


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Focal loss (Lin et al.): cross-entropy scaled by (1 - p_true)^gamma, so easy samples count less."""
    valid = target != IGNORE
    if not bool(valid.any()):
        return logits.sum() * 0.0
    logits, target = logits[valid], target[valid]
    log_p = F.log_softmax(logits, 1).gather(1, target[:, None]).squeeze(1)
    loss = -((1 - log_p.exp()) ** gamma) * log_p
    if weight is not None:
        w = weight[target]
        return (loss * w).sum() / w.sum()
    return loss.mean()


def soft_f1_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """1 - macro F1 computed on probabilities (differentiable), over classes present in the batch or predicted."""
    valid = target != IGNORE
    if not bool(valid.any()):
        return logits.sum() * 0.0
    probs = logits[valid].softmax(1)
    onehot = F.one_hot(target[valid], logits.shape[1]).to(probs.dtype)
    tp = (probs * onehot).sum(0)
    fp = (probs * (1 - onehot)).sum(0)
    fn = ((1 - probs) * onehot).sum(0)
    f1 = 2 * tp / (2 * tp + fp + fn + eps)
    return 1 - f1.mean()


def balanced_class_weights(labels, num_classes: int) -> torch.Tensor:
    """n / (k * count_c) from the training labels (unknown -1 ignored); absent classes get weight 1."""
    labels = torch.as_tensor(labels)
    counts = torch.bincount(labels[labels >= 0], minlength=num_classes).float()
    weights = counts.sum() / (num_classes * counts.clamp(min=1))
    weights[counts == 0] = 1.0
    return weights


def _valid_ages(logits: torch.Tensor, age: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The rows whose age is known (unknown -1 contributes nothing), ages clamped to the head's range."""
    valid = age != IGNORE
    if not bool(valid.any()):
        return None
    return logits[valid], age[valid].clamp(0, logits.shape[1] - 1)


def age_distribution_loss(logits: torch.Tensor, age: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
    """Cross-entropy of the 101-way age softmax against the true age (one-hot, or a Gaussian of width sigma
    around it when sigma > 0); samples with unknown age (-1) contribute nothing."""
    known = _valid_ages(logits, age)
    if known is None:
        return logits.sum() * 0.0
    logits, age = known
    if sigma <= 0:
        return F.cross_entropy(logits, age)
    ages = torch.arange(logits.shape[1], device=logits.device, dtype=logits.dtype)
    target = torch.exp(-0.5 * ((ages[None, :] - age[:, None].to(logits.dtype)) / sigma) ** 2)
    target = target / target.sum(1, keepdim=True)
    return -(target * F.log_softmax(logits, 1)).sum(1).mean()


def age_mean_variance_loss(logits: torch.Tensor, age: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
    """Mean-variance loss (Pan et al., CVPR 2018): the distribution loss, plus 0.2 x half the squared error of
    the expected age, plus 0.05 x the distribution's variance, so the softmax is both centred and narrow."""
    known = _valid_ages(logits, age)
    if known is None:
        return logits.sum() * 0.0
    logits, age = known
    p = logits.float().softmax(1)
    ages = torch.arange(p.shape[1], device=p.device, dtype=p.dtype)
    mean = p @ ages
    variance = (p * (ages[None, :] - mean[:, None]) ** 2).sum(1)
    mean_loss = 0.5 * ((mean - age.to(p.dtype)) ** 2).mean()
    return age_distribution_loss(logits, age, sigma) + 0.2 * mean_loss + 0.05 * variance.mean()


def age_distribution_l1_loss(logits: torch.Tensor, age: torch.Tensor, sigma: float = 0.0) -> torch.Tensor:
    """DLDL-v2 (Gao et al., IJCAI 2018): the distribution loss plus the L1 error of the expected age, which is
    the MAE that users read (scaled by 0.1 so that 5 years weigh about as much as the cross-entropy)."""
    known = _valid_ages(logits, age)
    if known is None:
        return logits.sum() * 0.0
    logits, age = known
    error = (expected_age(logits) - age.float()).abs().mean()
    return age_distribution_loss(logits, age, sigma) + 0.1 * error


def expected_age(logits: torch.Tensor) -> torch.Tensor:
    """Expectation of the age softmax: the DEX age estimate, differentiable."""
    ages = torch.arange(logits.shape[1], device=logits.device, dtype=torch.float32)
    return logits.float().softmax(1) @ ages


# model.age_loss -> loss(age logits, age in years, sigma) for the exact-age head, for every name config/choices.py
# spells
AGE_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]] = {
    AgeLoss.DISTRIBUTION: age_distribution_loss,
    AgeLoss.MEAN_VARIANCE: age_mean_variance_loss,
    AgeLoss.DISTRIBUTION_L1: age_distribution_l1_loss,
}


# loss.name -> loss(logits, target, cfg, class weights or None) for a classification head, for every name
# config/choices.py spells
LossFn = Callable[[torch.Tensor, torch.Tensor, LossConfig, torch.Tensor | None], torch.Tensor]
CLASSIFICATION_LOSSES: dict[str, LossFn] = {
    Loss.CE: lambda logits, target, cfg, weight: masked_cross_entropy(logits, target, cfg.label_smoothing, weight),
    Loss.FOCAL: lambda logits, target, cfg, weight: focal_loss(logits, target, cfg.focal_gamma, weight),
    Loss.SOFT_F1: lambda logits, target, cfg, weight: soft_f1_loss(logits, target),
    Loss.CE_SOFT_F1: lambda logits, target, cfg, weight: (
        masked_cross_entropy(logits, target, cfg.label_smoothing, weight) + soft_f1_loss(logits, target)
    ),
}
