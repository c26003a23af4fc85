"""Albumentations pipelines on uint8 images: resize first (cheaper augmentation), then augment, normalize."""

from __future__ import annotations

import albumentations as A
import numpy as np
import torch
from albumentations.pytorch import ToTensorV2

from faceattr.config import AugmentConfig


def train_transform(size: int, aug: AugmentConfig, mean, std) -> A.Compose:
    """Training pipeline: resize, flip, small affine, brightness/contrast, normalize."""
    return A.Compose(
        [
            A.Resize(size, size),
            A.HorizontalFlip(p=aug.hflip),
            A.Affine(scale=(0.9, 1.1), translate_percent=(-0.06, 0.06), rotate=(-10, 10), p=aug.shift_scale_rotate),
            A.RandomBrightnessContrast(0.2, 0.2, p=aug.brightness_contrast),
            A.Normalize(mean=tuple(mean), std=tuple(std), max_pixel_value=255.0),
            ToTensorV2(),
        ]
    )


def eval_transform(size: int, mean, std) -> A.Compose:
    """Validation / prediction pipeline: resize and normalize only."""
    return A.Compose([A.Resize(size, size), A.Normalize(mean=tuple(mean), std=tuple(std)), ToTensorV2()])


def to_tensor(transform: A.Compose, image: np.ndarray) -> torch.Tensor:
    return transform(image=image)["image"]
