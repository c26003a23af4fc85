"""Test-time augmentation on normalised image batches: each view is predicted and the probabilities averaged."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from faceattr.config import TTAConfig


def hflip(x: torch.Tensor, cfg: TTAConfig, mean, std) -> torch.Tensor:
    return x.flip(-1)


def shift(x: torch.Tensor, cfg: TTAConfig, mean, std) -> torch.Tensor:
    """Move the image right and down by `cfg.shift` of its side, filling with edge pixels."""
    n = max(1, round(cfg.shift * x.shape[-1]))
    padded = F.pad(x, (n, 0, n, 0), mode="replicate")
    return padded[..., : x.shape[-2], : x.shape[-1]]


def scale(x: torch.Tensor, cfg: TTAConfig, mean, std) -> torch.Tensor:
    """Zoom in by `cfg.scale` around the centre."""
    h, w = x.shape[-2:]
    big = F.interpolate(x, scale_factor=cfg.scale, mode="bilinear", align_corners=False)
    top, left = (big.shape[-2] - h) // 2, (big.shape[-1] - w) // 2
    return big[..., top : top + h, left : left + w]


def brightness(x: torch.Tensor, cfg: TTAConfig, mean, std) -> torch.Tensor:
    """Pixels x (1 + brightness), done in normalised space: x_n' = (1+b) x_n + b mean / std."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device)[:, None, None]
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device)[:, None, None]
    b = cfg.brightness
    return (1 + b) * x + b * m / s


VIEWS = {"hflip": hflip, "shift": shift, "scale": scale, "brightness": brightness}


def tta_views(x: torch.Tensor, cfg: TTAConfig, mean, std) -> list[torch.Tensor]:
    """The original batch followed by one augmented copy per configured transform."""
    return [x] + [VIEWS[name](x, cfg, mean, std) for name in cfg.transforms]
