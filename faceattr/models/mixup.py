"""Mixup (Zhang et al., 2018): a training batch blended with itself in another order, each head's loss blended in
the same proportion. The model is taught to answer in between two faces instead of memorising each one, which is
known to help calibration and the transfer to photos unlike the training set's. Off in every shipped recipe: at
their 3-9 CPU epochs it lost on each screen (docs/masks.md, docs/age-gender.md)."""

from __future__ import annotations

import torch


def mix_batch(
    images: torch.Tensor, targets: dict[str, torch.Tensor], alpha: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor], float]:
    """(blended images, the targets of the faces blended in, the first faces' share): share ~ Beta(alpha, alpha),
    the faces blended in are the batch's own in a random order (from torch's seeded generator)."""
    share = float(torch.distributions.Beta(alpha, alpha).sample())
    order = torch.randperm(images.shape[0], device=images.device)
    blended = share * images + (1 - share) * images[order]
    return blended, {key: value[order] for key, value in targets.items()}, share
