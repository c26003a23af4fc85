"""Training augmentation on whole batches where they are trained (`augment.on_device`), with kornia.

On an H100 with 16 cores, DataLoader workers fed lite0 at 128 px a quarter to a third of the rate the model takes
(docs/results.md, "Training on the lent GPU"). One worker core reads, decodes and augments about 1,070 faces a second
(`benchmarks/augment_speed.py`), so the likelier limit is the float32 batches the main process takes from the
workers, pins and copies. With `augment.on_device=true` the workers only decode, draw masks and resize
(`ResizeToUint8`: uint8 batches, a quarter of the bytes), and `DeviceAugment` applies the same `augment.*` settings,
in the same order as `transforms.train_transform`, to the batch after it reached the device. The operations are
kornia's (or a few lines of torch where kornia has none): the same kinds of change with the same ranges, not
bit-equal to Albumentations; each sample still draws its own parameters. The drawn masks
(`augment.synthetic_mask_p`) stay in the workers: they need the landmarks and change labels. On a CPU this is the
slow choice (kornia on 2 threads: 374 faces/s against 2,850 for Albumentations on one), and it is not yet measured
on a GPU.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceattr.config import AugmentConfig
from faceattr.data.transforms import CUT_BOTTOM_MAX, OCCLUSION_HOLES, OCCLUSION_SIDE, in_order
from faceattr.errors import ConfigError


class ResizeToUint8:
    """The workers' share when augmenting on the device: resize (bilinear, as `EvalTransform`) to a CHW uint8
    tensor; called like an Albumentations pipeline."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, *, image: np.ndarray) -> dict[str, torch.Tensor]:
        if image.shape[:2] != (self.size, self.size):
            image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        return {"image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))}


def _chosen(batch: int, p: float, device: torch.device) -> torch.Tensor:
    """Indices of the samples an augmentation of probability `p` applies to (each drawn on its own)."""
    return torch.nonzero(torch.rand(batch, device=device) < p).flatten()


class OneOf(nn.Module):
    """With probability `p` per sample, one of `ops` (chosen per sample, uniformly); each op is applied to its
    samples only, as Albumentations' OneOf does per image."""

    def __init__(self, ops: list[nn.Module], p: float) -> None:
        super().__init__()
        self.ops, self.p = nn.ModuleList(ops), p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        picked = _chosen(len(x), self.p, x.device)
        if len(picked) == 0:
            return x
        which = torch.randint(len(self.ops), (len(picked),), device=x.device)
        out = x.clone()
        for k, op in enumerate(self.ops):
            rows = picked[which == k]
            if len(rows):
                out[rows] = op(x[rows])
        return out


def _each_chosen(x: torch.Tensor, p: float, change) -> torch.Tensor:
    """`change` (one image as a 1-batch -> the same shape) applied to each sample chosen with probability `p`: for
    changes whose size differs per sample, which a whole batch cannot take at once."""
    out = x.clone()
    for i in _chosen(len(x), p, x.device).tolist():
        out[i] = change(x[i : i + 1])[0]
    return out


class LowResolution(nn.Module):
    """The face shrunk to a side in `sides` (px; area average, as a sensor would) and enlarged back (bilinear)."""

    def __init__(self, size: int, p: float, sides: list[int]) -> None:
        super().__init__()
        self.p, self.sides = p, (min(size, sides[0]), min(size, sides[1]))

    def _shrink(self, image: torch.Tensor) -> torch.Tensor:
        side = int(torch.randint(self.sides[0], self.sides[1] + 1, ()).item())
        small = F.interpolate(image, size=(side, side), mode="area")
        return F.interpolate(small, size=image.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _each_chosen(x, self.p, self._shrink)


class CutBottom(nn.Module):
    """Up to `CUT_BOTTOM_MAX` of the height cut off the bottom and the rest stretched back to the full height."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    @staticmethod
    def _cut(image: torch.Tensor) -> torch.Tensor:
        height = image.shape[-2]
        keep = max(1, round(height * (1 - float(torch.rand(())) * CUT_BOTTOM_MAX)))
        return F.interpolate(image[:, :, :keep], size=image.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _each_chosen(x, self.p, self._cut)


class Occlusion(nn.Module):
    """1-4 black rectangles, each 10-25 % of the side in height and width, anywhere on the face."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = _chosen(len(x), self.p, x.device)
        if len(rows) == 0:
            return x
        n, (height, width), dev = len(rows), x.shape[-2:], x.device
        holes = OCCLUSION_HOLES[1]
        count = torch.randint(OCCLUSION_HOLES[0], holes + 1, (n, 1), device=dev)
        active = torch.arange(holes, device=dev)[None] < count  # (n, holes)
        lo, hi = OCCLUSION_SIDE
        h = (torch.empty(n, holes, device=dev).uniform_(lo, hi) * height).round()
        w = (torch.empty(n, holes, device=dev).uniform_(lo, hi) * width).round()
        y0 = (torch.rand(n, holes, device=dev) * (height - h + 1)).floor()
        x0 = (torch.rand(n, holes, device=dev) * (width - w + 1)).floor()
        yy = torch.arange(height, device=dev).view(1, 1, height, 1)
        xx = torch.arange(width, device=dev).view(1, 1, 1, width)

        def edge(v: torch.Tensor) -> torch.Tensor:
            return v.view(n, holes, 1, 1)

        inside = (yy >= edge(y0)) & (yy < edge(y0 + h)) & (xx >= edge(x0)) & (xx < edge(x0 + w))
        hidden = (inside & active.view(n, holes, 1, 1)).any(1, keepdim=True)  # (n, 1, H, W)
        out = x.clone()
        out[rows] = x[rows].masked_fill(hidden, 0.0)
        return out


class DeviceAugment(nn.Module):
    """uint8 batch (B, 3, H, W) on any device -> augmented, normalised float batch: `transforms.train_transform`'s
    steps after the resize, in its order, with the same `augment.*` probabilities and ranges."""

    def __init__(self, size: int, aug: AugmentConfig, mean, std) -> None:
        super().__init__()
        try:
            import kornia.augmentation as K
        except ImportError as e:
            raise ConfigError(
                "augment.on_device=true needs kornia: pip install 'faceattr[gpu]' (or set augment.on_device=false)"
            ) from e
        self.steps = nn.ModuleList([op for _, op in in_order(device_steps(size, aug, K), aug)])
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().div_(255.0)
        for step in self.steps:
            x = step(x).clamp_(0.0, 1.0)
        return ((x - self.mean) / self.std).contiguous()


def device_steps(size: int, aug: AugmentConfig, K) -> dict[str, nn.Module]:
    """kornia's (or our torch) op for each of transforms.AUGMENT_STEPS, with the probability it applies at: the same
    kinds of change with the same ranges as the Albumentations ops of `transforms.train_steps`."""
    low, high = aug.framing_scale
    return {
        "hflip": K.RandomHorizontalFlip(p=aug.hflip),
        "shift_scale_rotate": K.RandomAffine(
            degrees=10, translate=(0.06, 0.06), scale=(0.9, 1.1), p=aug.shift_scale_rotate
        ),
        "brightness_contrast": K.ColorJitter(brightness=0.2, contrast=0.2, p=aug.brightness_contrast),
        "framing_jitter": K.RandomAffine(degrees=0, translate=(0.1, 0.1), scale=(low, high), p=aug.framing_jitter),
        "cut_bottom": CutBottom(aug.cut_bottom),
        "color": OneOf(
            [  # HueSaturationValue(10, 25, 15), RandomGamma(70-150), PlanckianJitter, as on the CPU path
                K.ColorJitter(brightness=15 / 255, saturation=25 / 255, hue=10 / 180, p=1.0),
                K.RandomGamma(gamma=(0.7, 1.5), p=1.0),
                K.RandomPlanckianJitter(p=1.0),
            ],
            aug.color,
        ),
        "grayscale": K.RandomGrayscale(p=aug.grayscale),
        "low_resolution": LowResolution(size, aug.low_resolution, aug.low_resolution_sides),
        "blur": OneOf(
            [  # GaussianBlur 3-7 px (OpenCV's sigma for those kernels: 0.8-1.4), MotionBlur 3-9 px
                K.RandomGaussianBlur(kernel_size=7, sigma=(0.8, 1.4), p=1.0),
                K.RandomMotionBlur(kernel_size=(3, 9), angle=(-180.0, 180.0), direction=(-1.0, 1.0), p=1.0),
            ],
            aug.blur,
        ),
        "jpeg": K.RandomJPEG(jpeg_quality=(20.0, 90.0), p=aug.jpeg),
        "occlusion": Occlusion(aug.occlusion),
    }
