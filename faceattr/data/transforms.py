"""Image pipelines on uint8 images: resize first (cheaper augmentation), then augment, normalize.

Training uses Albumentations; validation and prediction only resize and normalise, which `EvalTransform` does
with OpenCV and NumPy alone (equal to Albumentations' Resize + Normalize + ToTensorV2, as tests/test_transforms.py
checks), so `predict` and `serve` start without importing Albumentations (about half a second), and an ONNX
model predicts without torch.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, TypeVar

import cv2
import numpy as np

from faceattr.config import AUGMENT_STEPS, AugmentConfig

if TYPE_CHECKING:
    import albumentations as A

T = TypeVar("T")

CUT_BOTTOM_MAX = 0.25  # the largest share of the height that `augment.cut_bottom` takes off
OCCLUSION_HOLES = (1, 4)  # how many rectangles `augment.occlusion` blacks out
OCCLUSION_SIDE = (0.1, 0.25)  # each one's height and width, as shares of the side

# the steps and their one order are AUGMENT_STEPS (config/schema.py); from the framing on, how real photos differ
ROBUSTNESS_STEPS = AUGMENT_STEPS[AUGMENT_STEPS.index("framing_jitter") :]


def in_order(ops: dict[str, T], aug: AugmentConfig, names: tuple[str, ...] = AUGMENT_STEPS) -> list[tuple[float, T]]:
    """(probability, op) for the steps of `names` that `aug` turns on, in their order."""
    if set(ops) != set(AUGMENT_STEPS):
        raise ValueError(f"an augmentation stack must build exactly {AUGMENT_STEPS}, not {sorted(ops)}")
    return [(getattr(aug, name), ops[name]) for name in names if getattr(aug, name) > 0]


def pitch_rows(height: int, exponent: float) -> np.ndarray:
    """The source row of each output row when a face is tipped by `exponent` (`augment.pitch`): row y (0 at the top,
    1 at the bottom) reads row y ** exponent, the top and bottom rows staying put."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)
    return (y**exponent) * (height - 1)


class Pitch:
    """`augment.pitch` on one image (an Albumentations `Lambda`'s function): an exponent drawn log-uniformly from
    `exponents` (Python's `random`, which each DataLoader worker seeds apart), then `pitch_rows`."""

    def __init__(self, exponents: list[float]) -> None:
        self.low, self.high = (math.log(e) for e in exponents)

    def __call__(self, image: np.ndarray, **_) -> np.ndarray:
        height, width = image.shape[:2]
        rows = pitch_rows(height, math.exp(random.uniform(self.low, self.high)))
        map_y = np.repeat(rows[:, None], width, axis=1)
        map_x = np.repeat(np.arange(width, dtype=np.float32)[None], height, axis=0)
        return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def train_steps(size: int, aug: AugmentConfig) -> dict[str, A.BasicTransform]:
    """Albumentations' op for each of AUGMENT_STEPS (its probability is set by the caller)."""
    import albumentations as A

    low = tuple(min(1.0, side / size) for side in aug.low_resolution_sides)
    side = OCCLUSION_SIDE
    return {
        "hflip": A.HorizontalFlip(p=1.0),
        "shift_scale_rotate": A.Affine(scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), rotate=(-10, 10), p=1.0),
        "brightness_contrast": A.RandomBrightnessContrast(0.2, 0.2, p=1.0),
        "framing_jitter": A.Affine(scale=tuple(aug.framing_scale), translate_percent=(-0.1, 0.1), border_mode=0, p=1.0),
        "pitch": A.Lambda(image=Pitch(aug.pitch_range), p=1.0),
        # the crop box clipped by the photo's bottom edge, then resized to a square like every crop
        "cut_bottom": A.Sequential(
            [
                A.RandomCropFromBorders(crop_left=0, crop_right=0, crop_top=0, crop_bottom=CUT_BOTTOM_MAX),
                A.Resize(size, size),
            ],
            p=1.0,
        ),
        "color": A.OneOf(
            [A.HueSaturationValue(10, 25, 15, p=1.0), A.RandomGamma((70, 150), p=1.0), A.PlanckianJitter(p=1.0)],
            p=1.0,
        ),
        "grayscale": A.ToGray(p=1.0),
        # area-average down, bilinear up: a small face from a real sensor, not nearest-neighbour blocks
        "low_resolution": A.Downscale(
            scale_range=low, interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}, p=1.0
        ),
        "blur": A.OneOf([A.GaussianBlur(blur_limit=(3, 7), p=1.0), A.MotionBlur(blur_limit=(3, 9), p=1.0)], p=1.0),
        "jpeg": A.ImageCompression(quality_range=(20, 90), p=1.0),
        "occlusion": A.CoarseDropout(
            num_holes_range=OCCLUSION_HOLES, hole_height_range=side, hole_width_range=side, p=1.0
        ),
    }


def _with_p(steps: list[tuple[float, A.BasicTransform]]) -> list[A.BasicTransform]:
    for p, transform in steps:
        transform.p = p
    return [transform for _, transform in steps]


def robustness_transforms(size: int, aug: AugmentConfig) -> list[A.BasicTransform]:
    """The ways real photos differ from a training set's faces (ROBUSTNESS_STEPS), each behind its `augment.*`
    probability; a probability of 0 leaves the transform out."""
    return _with_p(in_order(train_steps(size, aug), aug, ROBUSTNESS_STEPS))


def train_transform(size: int, aug: AugmentConfig, mean, std) -> A.Compose:
    """Training pipeline: resize, AUGMENT_STEPS in order, normalize."""
    import albumentations as A
    from albumentations.pytorch import ToTensorV2

    return A.Compose(
        [
            A.Resize(size, size),
            *_with_p(in_order(train_steps(size, aug), aug)),
            A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0),
            ToTensorV2(),
        ]
    )


class EvalTransform:
    """Validation / prediction pipeline: resize (bilinear) and normalize only; called like an Albumentations
    pipeline (`t(image=x)["image"]` is a CHW float32 array, which a DataLoader collates into a tensor)."""

    def __init__(self, size: int, mean, std, interpolation: int = cv2.INTER_LINEAR) -> None:
        self.size, self.interpolation = size, interpolation
        self.mean = np.asarray(mean, np.float32) * 255.0
        self.inv_std = 1.0 / (np.asarray(std, np.float32) * 255.0)

    def __call__(self, *, image: np.ndarray) -> dict[str, np.ndarray]:
        if image.shape[:2] != (self.size, self.size):
            image = cv2.resize(image, (self.size, self.size), interpolation=self.interpolation)
        normalised = (image.astype(np.float32) - self.mean) * self.inv_std
        return {"image": np.ascontiguousarray(normalised.transpose(2, 0, 1))}


def eval_transform(size: int, mean, std) -> EvalTransform:
    """Validation / prediction pipeline: resize and normalize only."""
    return EvalTransform(size, mean, std)
