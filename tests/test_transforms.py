"""The prediction transform is Albumentations' Resize + Normalize + ToTensorV2, without importing Albumentations."""

from __future__ import annotations

import numpy as np
import pytest

from faceattr.data.transforms import eval_transform


@pytest.mark.parametrize("shape", [(200, 200, 3), (37, 91, 3), (128, 128, 3), (300, 120, 3)])
def test_eval_transform_equals_the_albumentations_pipeline(shape):
    A = pytest.importorskip("albumentations")
    from albumentations.pytorch import ToTensorV2

    image = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    expected = A.Compose([A.Resize(128, 128), A.Normalize(mean=mean, std=std), ToTensorV2()])(image=image)["image"]
    got = eval_transform(128, mean, std)(image=image)["image"]
    assert got.dtype == np.float32 and got.shape == (3, 128, 128)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-6)
