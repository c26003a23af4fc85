"""Training augmentation on whole batches where they are trained (`augment.on_device`): each step one batched
tensor operation.

On a lent H200 with 16 cores, DataLoader workers fed lite0 at 128 px a fifth to a third of the rate the model takes
(docs/results.md, "Training on the lent GPU"). With `augment.on_device=true` the workers only decode, draw masks and
resize (`ResizeToUint8`: uint8 batches, a quarter of the bytes), and `DeviceAugment` applies the same `augment.*`
settings, in the same order as `transforms.train_transform`, to the batch after it reached the device: the same
kinds of change with the same ranges, not bit-equal to Albumentations; each sample draws its own parameters.

Why our own ops and not kornia's augmentation modules: kornia's per-sample modules cost as much as the model step on
that GPU (8,880 faces/s for the preset's steps: its JPEG alone took two thirds of the time on a CPU). Here every step
is computed for the whole batch at once and kept where a sample was chosen (`torch.where`): no Python loop over
samples, no copy to the host, no synchronisation. Geometry is one `affine_grid`/`grid_sample` per step; the small
face is a per-sample matrix product (area down then bilinear up is linear and separable); blur is one grouped
convolution with a kernel per sample; JPEG is its lossy part (YCbCr, 4:2:0, 8x8 DCT quantised by the IJG tables at
each sample's quality). kornia is used for the HSV conversion only. The drawn masks (`augment.synthetic_mask_p`)
stay in the workers: they need the landmarks and change labels.
"""

from __future__ import annotations

import math

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


def uniform(x: torch.Tensor, low: float, high: float, *shape: int) -> torch.Tensor:
    """One draw per sample of `x` (shape (B, *shape)) from U(low, high), on x's device."""
    return torch.empty(len(x), *shape, device=x.device).uniform_(low, high)


def per_sample(value: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1, 1), to scale or shift each image of a batch by its own value."""
    return value.view(-1, 1, 1, 1)


class Step(nn.Module):
    """One augmentation of probability `p`: `change` computes it for the whole batch, and each sample keeps it with
    probability `p`, drawn on its own (as Albumentations draws per image)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def change(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chosen = torch.rand(len(x), device=x.device) < self.p
        return torch.where(per_sample(chosen), self.change(x), x)


class OneOf(Step):
    """With probability `p` per sample, one of `ops` (chosen per sample, uniformly), as Albumentations' OneOf."""

    def __init__(self, ops: list[Step], p: float) -> None:
        super().__init__(p)
        self.ops = nn.ModuleList(ops)

    def change(self, x: torch.Tensor) -> torch.Tensor:
        which = per_sample(torch.randint(len(self.ops), (len(x),), device=x.device))
        out = x
        for k, op in enumerate(self.ops):
            out = torch.where(which == k, op.change(x), out)
        return out


def warp(x: torch.Tensor, theta: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Each image resampled (bilinear) through its own 2x3 map from output to input in [-1, 1] coordinates."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


class HFlip(Step):
    def change(self, x: torch.Tensor) -> torch.Tensor:
        return x.flip(-1)


class Affine(Step):
    """Scale by U(scale), shift by U(-translate, translate) of the side, rotate by U(-degrees, degrees) about the
    centre; black outside the image (Albumentations' Affine with its constant border)."""

    def __init__(self, p: float, degrees: float, translate: float, scale: tuple[float, float]) -> None:
        super().__init__(p)
        self.degrees, self.translate, self.scale = degrees, translate, scale

    def change(self, x: torch.Tensor) -> torch.Tensor:
        angle = uniform(x, -self.degrees, self.degrees) * (math.pi / 180)
        scale = uniform(x, *self.scale)
        shift = uniform(x, -self.translate, self.translate, 2) * 2  # a share of the side, in [-1, 1] units
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        # output q = scale * R p + shift  =>  input p = R^T (q - shift) / scale
        inverse = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)  # (B, 2, 2)
        offset = -(inverse @ shift.unsqueeze(-1))
        return warp(x, torch.cat([inverse, offset], 2))


class CutBottom(Step):
    """Up to `CUT_BOTTOM_MAX` of the height cut off the bottom and the rest stretched back to the full height."""

    def change(self, x: torch.Tensor) -> torch.Tensor:
        keep = 1 - uniform(x, 0, CUT_BOTTOM_MAX)
        theta = torch.zeros(len(x), 2, 3, device=x.device)
        theta[:, 0, 0] = 1
        theta[:, 1, 1], theta[:, 1, 2] = keep, keep - 1  # output row y in [-1, 1] reads input row (y + 1) keep - 1
        return warp(x, theta, padding="border")


class Pitch(Step):
    """Rows remapped y -> y ** g (y in [0, 1] from the top), g log-uniform in `exponents`: `transforms.Pitch`."""

    def __init__(self, p: float, exponents: list[float]) -> None:
        super().__init__(p)
        self.low, self.high = (math.log(e) for e in exponents)

    def change(self, x: torch.Tensor) -> torch.Tensor:
        exponent = torch.exp(uniform(x, self.low, self.high))  # (B,)
        height, width = x.shape[-2:]
        y = torch.linspace(0.0, 1.0, height, device=x.device)
        source_y = y[None] ** exponent[:, None] * 2 - 1  # (B, H) in [-1, 1], pixel centres as align_corners=True
        source_x = torch.linspace(-1.0, 1.0, width, device=x.device)
        grid = torch.stack(
            [source_x.expand(len(x), height, width), source_y[:, :, None].expand(len(x), height, width)], -1
        )
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)


class BrightnessContrast(Step):
    """x * (1 + U(-c, c)) + U(-b, b), Albumentations' RandomBrightnessContrast (brightness by the maximum)."""

    def __init__(self, p: float, brightness: float, contrast: float) -> None:
        super().__init__(p)
        self.brightness, self.contrast = brightness, contrast

    def change(self, x: torch.Tensor) -> torch.Tensor:
        alpha = 1 + uniform(x, -self.contrast, self.contrast)
        beta = uniform(x, -self.brightness, self.brightness)
        return x * per_sample(alpha) + per_sample(beta)


class HueSaturationValue(Step):
    """Hue shifted by up to `hue` of OpenCV's 180 units, saturation and value by up to `saturation` and `value` of
    255, each added (Albumentations' HueSaturationValue on uint8 images)."""

    def __init__(self, p: float, hue: float, saturation: float, value: float) -> None:
        super().__init__(p)
        self.hue, self.saturation, self.value = hue, saturation, value

    def change(self, x: torch.Tensor) -> torch.Tensor:
        from kornia.color import hsv_to_rgb, rgb_to_hsv

        def shift(limit: float) -> torch.Tensor:  # one draw per sample, broadcast over a (B, H, W) channel
            return uniform(x, -limit, limit).view(-1, 1, 1)

        h, s, v = rgb_to_hsv(x).unbind(1)  # h in radians
        h = torch.remainder(h + shift(self.hue) * (2 * math.pi / 180), 2 * math.pi)
        s = (s + shift(self.saturation) / 255).clamp(0, 1)
        v = (v + shift(self.value) / 255).clamp(0, 1)
        return hsv_to_rgb(torch.stack([h, s, v], 1))


class Gamma(Step):
    """x ** U(gamma): Albumentations' RandomGamma with gamma_limit (70, 150) is U(0.7, 1.5)."""

    def __init__(self, p: float, gamma: tuple[float, float]) -> None:
        super().__init__(p)
        self.gamma = gamma

    def change(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(min=0).pow(per_sample(uniform(x, *self.gamma)))


class PlanckianJitter(Step):
    """Red and blue scaled to a black body's colour at a temperature drawn as Albumentations draws it (3,000-6,000 K
    with probability 0.4, else 6,000-15,000 K), from its own coefficient table, interpolated linearly."""

    WHITE, BELOW_WHITE = 6000.0, 0.4

    def __init__(self, p: float) -> None:
        super().__init__(p)
        from albumentations.augmentations.pixel.functional import PLANCKIAN_COEFFS

        table = sorted(PLANCKIAN_COEFFS["blackbody"].items())
        self.range = (float(table[0][0]), float(table[-1][0]))
        self.register_buffer("kelvin", torch.tensor([k for k, _ in table], dtype=torch.float32), persistent=False)
        rgb = torch.tensor([c for _, c in table], dtype=torch.float32)
        self.register_buffer("gains", torch.stack([rgb[:, 0] / rgb[:, 1], rgb[:, 2] / rgb[:, 1]], 1), persistent=False)

    def change(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.range  # Python floats: reading the buffer would wait for the device
        warm = torch.rand(len(x), device=x.device) < self.BELOW_WHITE
        kelvin = torch.where(warm, uniform(x, low, self.WHITE), uniform(x, self.WHITE, high))
        step = self.kelvin[1] - self.kelvin[0]
        position = ((kelvin - low) / step).clamp(0, len(self.kelvin) - 1)
        left = position.floor().long().clamp(max=len(self.kelvin) - 2)
        right_weight = (position - left).unsqueeze(1)
        gains = self.gains[left] * (1 - right_weight) + self.gains[left + 1] * right_weight  # (B, 2): red, blue
        scale = torch.stack([gains[:, 0], torch.ones_like(gains[:, 0]), gains[:, 1]], 1)
        return x * scale.view(-1, 3, 1, 1)


class Grayscale(Step):
    """ITU-R 601 luma in all three channels (Albumentations' ToGray)."""

    def change(self, x: torch.Tensor) -> torch.Tensor:
        luma = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        return luma.expand_as(x)


class LowResolution(Step):
    """The face shrunk to a side in `sides` (px; area average, as a sensor would) and enlarged back (bilinear).
    Both resizes are linear and separable, so each side is one `size` x `size` matrix M and an image X becomes
    M X M^T: the whole batch in one matrix product, each sample with its own side's M."""

    def __init__(self, size: int, p: float, sides: list[int]) -> None:
        super().__init__(p)
        columns = torch.eye(size).unsqueeze(1)  # each basis signal resized as a 1-D image
        matrices = [
            F.interpolate(F.interpolate(columns, size=side, mode="area"), size=size, mode="linear").squeeze(1).T
            for side in range(min(size, sides[0]), min(size, sides[1]) + 1)
        ]
        self.register_buffer("resize", torch.stack(matrices), persistent=False)  # (sides, size, size)

    def change(self, x: torch.Tensor) -> torch.Tensor:
        side = torch.randint(len(self.resize), (len(x),), device=x.device)
        m = self.resize[side].unsqueeze(1)  # (B, 1, size, size)
        return m @ x @ m.transpose(-1, -2)


def gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) sigmas -> (B, size, size) normalised Gaussian kernels."""
    r = torch.arange(size, device=sigma.device, dtype=torch.float32) - (size - 1) / 2
    line = torch.exp(-(r**2) / (2 * sigma.view(-1, 1) ** 2))
    kernel = line.unsqueeze(2) * line.unsqueeze(1)
    return kernel / kernel.sum(dim=(1, 2), keepdim=True)


def motion_kernels(length: torch.Tensor, angle: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) lengths (px, odd) and angles -> (B, size, size) kernels: a line through the centre, drawn as the mean of
    points along it splatted bilinearly, so every angle keeps the same weight."""
    steps = 4 * size
    t = (torch.linspace(-0.5, 0.5, steps, device=length.device).view(1, -1)) * (length.view(-1, 1) - 1)
    centre = (size - 1) / 2
    px, py = centre + t * torch.cos(angle).view(-1, 1), centre + t * torch.sin(angle).view(-1, 1)
    grid = torch.arange(size, device=length.device, dtype=torch.float32)
    wx = (1 - (px.unsqueeze(-1) - grid).abs()).clamp(min=0)  # (B, steps, size)
    wy = (1 - (py.unsqueeze(-1) - grid).abs()).clamp(min=0)
    kernel = torch.einsum("bsy,bsx->byx", wy, wx)
    return kernel / kernel.sum(dim=(1, 2), keepdim=True)


def convolve_each(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Each image of `x` convolved with its own (size x size) kernel: one grouped convolution, edges reflected."""
    b, c, h, w = x.shape
    size = kernels.shape[-1]
    weight = kernels.repeat_interleave(c, dim=0).unsqueeze(1)  # (B * C, 1, size, size)
    padded = F.pad(x.reshape(1, b * c, h, w), [size // 2] * 4, mode="reflect")
    return F.conv2d(padded, weight, groups=b * c).view(b, c, h, w)


class GaussianBlur(Step):
    """A Gaussian of sigma U(sigma) (OpenCV's sigmas for Albumentations' 3-7 px kernels: 0.8-1.4)."""

    KERNEL = 7

    def __init__(self, p: float, sigma: tuple[float, float]) -> None:
        super().__init__(p)
        self.sigma = sigma

    def change(self, x: torch.Tensor) -> torch.Tensor:
        return convolve_each(x, gaussian_kernels(uniform(x, *self.sigma), self.KERNEL))


class MotionBlur(Step):
    """A straight streak of an odd length in `lengths` (px) at any angle (Albumentations' MotionBlur, 3-9 px)."""

    def __init__(self, p: float, lengths: tuple[int, int]) -> None:
        super().__init__(p)
        self.lengths = lengths

    def change(self, x: torch.Tensor) -> torch.Tensor:
        low, high = self.lengths
        length = torch.randint(low // 2, high // 2 + 1, (len(x),), device=x.device) * 2 + 1
        angle = uniform(x, 0, math.pi)
        return convolve_each(x, motion_kernels(length.float(), angle, high))


# The IJG's (libjpeg's) base quantisation tables, scaled by quality as libjpeg, PIL and OpenCV scale them
LUMA_TABLE = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17,
              22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78,
              87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]  # fmt: skip
CHROMA_TABLE = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47,
                66, 99, 99, 99, 99, 99, 99, *[99] * 32]  # fmt: skip
RGB_TO_YCBCR = [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]


def quality_tables(quality: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
    """(B,) integer qualities 1-100 -> (B, 2, 8, 8) luma and chroma steps: `base` (2, 8, 8) scaled as libjpeg does."""
    q = quality.float().view(-1, 1, 1, 1)
    scale = torch.where(q < 50, 5000 / q, 200 - 2 * q)
    return ((base * scale + 50) / 100).floor().clamp(1, 255)


def dct_matrix() -> torch.Tensor:
    """The orthonormal 8-point DCT-II: coefficients = D block D^T."""
    k, n = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    d = torch.cos((2 * n + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d


def quantise_blocks(plane: torch.Tensor, steps: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """(B, H, W) level-shifted plane, H and W multiples of 8 -> each 8x8 block's DCT rounded to `steps` (B, 8, 8)
    and transformed back."""
    b, h, w = plane.shape
    blocks = plane.view(b, h // 8, 8, w // 8, 8).transpose(2, 3)  # (B, rows, cols, 8, 8)
    coefficients = d @ blocks @ d.T
    s = steps.view(b, 1, 1, 8, 8)
    restored = d.T @ (torch.round(coefficients / s) * s) @ d
    return restored.transpose(2, 3).reshape(b, h, w)


class Jpeg(Step):
    """What a baseline JPEG at an integer quality drawn from `quality` per sample loses (Albumentations'
    ImageCompression): YCbCr, chroma halved both ways (4:2:0, as PIL and OpenCV save by default), each 8x8 block's
    DCT rounded to the IJG tables scaled by the quality; entropy coding loses nothing and is left out."""

    def __init__(self, p: float, quality: tuple[int, int]) -> None:
        super().__init__(p)
        self.quality = quality
        self.register_buffer("to_ycbcr", torch.tensor(RGB_TO_YCBCR), persistent=False)
        self.register_buffer("base", torch.tensor([LUMA_TABLE, CHROMA_TABLE], dtype=torch.float32).view(2, 8, 8),
                             persistent=False)  # fmt: skip
        self.register_buffer("dct", dct_matrix(), persistent=False)

    def change(self, x: torch.Tensor) -> torch.Tensor:
        return self.compress(x, torch.randint(self.quality[0], self.quality[1] + 1, (len(x),), device=x.device))

    def compress(self, x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1], quality: (B,) -> x as decoded after saving at those qualities."""
        h, w = x.shape[-2:]
        pixels = F.pad(x, [0, -w % 16, 0, -h % 16], mode="replicate") * 255
        ycbcr = torch.einsum("ij,bjhw->bihw", self.to_ycbcr, pixels)
        tables = quality_tables(quality, self.base)
        luma = quantise_blocks(ycbcr[:, 0] - 128, tables[:, 0], self.dct) + 128
        chroma = F.avg_pool2d(ycbcr[:, 1:], 2)  # Cb and Cr are centred on 0 already
        restored = torch.stack([quantise_blocks(chroma[:, i], tables[:, 1], self.dct) for i in range(2)], 1)
        cb, cr = F.interpolate(restored, scale_factor=2, mode="bilinear", align_corners=False).unbind(1)
        rgb = torch.stack([luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb], 1)
        return rgb[:, :, :h, :w] / 255


class Occlusion(Step):
    """1-4 black rectangles, each 10-25 % of the side in height and width, anywhere on the face."""

    def change(self, x: torch.Tensor) -> torch.Tensor:
        n, (height, width), dev = len(x), x.shape[-2:], x.device
        holes = OCCLUSION_HOLES[1]
        count = torch.randint(OCCLUSION_HOLES[0], holes + 1, (n, 1), device=dev)
        active = torch.arange(holes, device=dev)[None] < count  # (n, holes)
        lo, hi = OCCLUSION_SIDE
        h = (uniform(x, lo, hi, holes) * height).round()
        w = (uniform(x, lo, hi, holes) * width).round()
        y0 = (torch.rand(n, holes, device=dev) * (height - h + 1)).floor()
        x0 = (torch.rand(n, holes, device=dev) * (width - w + 1)).floor()
        yy = torch.arange(height, device=dev).view(1, 1, height, 1)
        xx = torch.arange(width, device=dev).view(1, 1, 1, width)

        def edge(v: torch.Tensor) -> torch.Tensor:
            return v.view(n, holes, 1, 1)

        inside = (yy >= edge(y0)) & (yy < edge(y0 + h)) & (xx >= edge(x0)) & (xx < edge(x0 + w))
        hidden = (inside & active.view(n, holes, 1, 1)).any(1, keepdim=True)  # (n, 1, H, W)
        return x.masked_fill(hidden, 0.0)


class DeviceAugment(nn.Module):
    """uint8 batch (B, 3, H, W) on any device -> augmented, normalised float batch: `transforms.train_transform`'s
    steps after the resize, in its order, with the same `augment.*` probabilities and ranges."""

    def __init__(self, size: int, aug: AugmentConfig, mean, std) -> None:
        super().__init__()
        if aug.color > 0:  # the only step that needs kornia (its HSV conversion)
            try:
                import kornia.color  # noqa: F401
            except ImportError as e:
                raise ConfigError(
                    "augment.on_device=true with augment.color needs kornia: pip install 'faceattr[gpu]' "
                    "(or set augment.on_device=false)"
                ) from e
        self.steps = nn.ModuleList([op for _, op in in_order(device_steps(size, aug), aug)])
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.float().div_(255.0)
        for step in self.steps:
            x = step(x).clamp_(0.0, 1.0)
        return ((x - self.mean) / self.std).contiguous()


def device_steps(size: int, aug: AugmentConfig) -> dict[str, Step]:
    """Our batched op for each of AUGMENT_STEPS (config/schema.py), with the probability it applies at: the same
    kinds of change with the same ranges as the Albumentations ops of `transforms.train_steps`."""
    return {
        "hflip": HFlip(aug.hflip),
        "shift_scale_rotate": Affine(aug.shift_scale_rotate, degrees=10, translate=0.06, scale=(0.9, 1.1)),
        "brightness_contrast": BrightnessContrast(aug.brightness_contrast, brightness=0.2, contrast=0.2),
        "framing_jitter": Affine(aug.framing_jitter, degrees=0, translate=0.1, scale=tuple(aug.framing_scale)),
        "pitch": Pitch(aug.pitch, aug.pitch_range),
        "cut_bottom": CutBottom(aug.cut_bottom),
        "color": OneOf(  # HueSaturationValue(10, 25, 15), RandomGamma(70-150), PlanckianJitter, as on the CPU path
            [HueSaturationValue(1.0, 10, 25, 15), Gamma(1.0, (0.7, 1.5)), PlanckianJitter(1.0)], aug.color
        ),
        "grayscale": Grayscale(aug.grayscale),
        "low_resolution": LowResolution(size, aug.low_resolution, aug.low_resolution_sides),
        "blur": OneOf([GaussianBlur(1.0, (0.8, 1.4)), MotionBlur(1.0, (3, 9))], aug.blur),
        "jpeg": Jpeg(aug.jpeg, (20, 90)),
        "occlusion": Occlusion(aug.occlusion),
    }
