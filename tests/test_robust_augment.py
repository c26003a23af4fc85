"""Robustness augmentations change images the way real photos differ, and never change a label."""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np
import pytest
import torch

from faceattr.config import AugmentConfig, load_config
from faceattr.data.transforms import ROBUSTNESS_STEPS, robustness_transforms, train_transform
from faceattr.errors import ConfigError
from faceattr.models.module import user_error

SIZE = 96


def _face(seed: int = 0) -> np.ndarray:
    """A sharp, colourful test image: checkerboard detail the degradations must remove."""
    rng = np.random.default_rng(seed)
    tile = np.kron(rng.integers(0, 255, (48, 48, 3)), np.ones((2, 2, 1))).astype(np.uint8)
    return tile


def _apply(**probs: float) -> np.ndarray:
    aug = AugmentConfig(hflip=0, shift_scale_rotate=0, brightness_contrast=0, **probs)
    transform = train_transform(SIZE, aug, (0, 0, 0), (1, 1, 1))
    transform.set_random_seed(3)
    return transform(image=_face())["image"].permute(1, 2, 0).numpy() * 255


def _detail(image: np.ndarray) -> float:
    """High-frequency energy: mean absolute difference between neighbouring pixels."""
    return float(np.abs(np.diff(image.astype(float), axis=1)).mean())


def test_off_by_default_and_each_key_adds_its_transform():
    assert robustness_transforms(SIZE, AugmentConfig()) == []
    for key in ROBUSTNESS_STEPS:
        assert len(robustness_transforms(SIZE, AugmentConfig(**{key: 0.5}))) == 1, key


def test_low_resolution_and_blur_remove_detail():
    sharp = _detail(_apply())
    assert _detail(_apply(low_resolution=1.0)) < 0.8 * sharp
    assert _detail(_apply(blur=1.0)) < 0.8 * sharp


def test_grayscale_jpeg_occlusion_and_framing_do_what_they_say():
    gray = _apply(grayscale=1.0)
    assert np.allclose(gray[..., 0], gray[..., 1], atol=1) and np.allclose(gray[..., 1], gray[..., 2], atol=1)
    plain = _apply()
    assert not np.allclose(_apply(jpeg=1.0), plain, atol=2)
    holes = _apply(occlusion=1.0)
    assert ((holes == 0).all(-1) & ~(plain == 0).all(-1)).sum() > 0.01 * SIZE * SIZE  # dropped-out patches
    moved = _apply(framing_jitter=1.0)
    assert moved.shape == plain.shape and not np.allclose(moved, plain, atol=2)


def test_framing_scale_zooms_in_by_the_factor_given():
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    side = SIZE // 4
    image[SIZE // 2 - side // 2 : SIZE // 2 + side // 2, SIZE // 2 - side // 2 : SIZE // 2 + side // 2] = 255
    for zoom in (1.0, 1.5):
        aug = AugmentConfig(framing_jitter=1.0, framing_scale=[zoom, zoom])
        out = A.Compose(robustness_transforms(SIZE, aug))(image=image)["image"]
        area = (out[..., 0] > 127).sum()
        assert area == pytest.approx(side * side * zoom**2, rel=0.1), zoom


def _band_rows(image: np.ndarray) -> np.ndarray:
    return np.flatnonzero(image[:, SIZE // 2, 0] > 127)


def test_pitch_tips_the_face_down_or_up_keeping_the_top_and_bottom_rows():
    """A face looking down shows more forehead and a shorter lower face: a band at 40 % of the height moves to
    0.4 ** (1 / g) (lower for g > 1, higher for g < 1), while the photo's first and last rows stay."""
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    band = round(0.4 * (SIZE - 1))
    image[band - 1 : band + 2] = 255
    image[0], image[-1] = 120, 100
    for exponent in (0.7, 1.5):
        aug = AugmentConfig(pitch=1.0, pitch_range=[exponent, exponent])
        out = A.Compose(robustness_transforms(SIZE, aug))(image=image)["image"]
        assert abs(_band_rows(out).mean() - (SIZE - 1) * 0.4 ** (1 / exponent)) <= 1, exponent
        assert (out[0] == 120).all() and (out[-1] == 100).all()
    drawn = AugmentConfig(pitch=1.0, pitch_range=[0.7, 1.5])
    moved = {
        round(_band_rows(A.Compose(robustness_transforms(SIZE, drawn))(image=image)["image"]).mean()) for _ in range(20)
    }
    assert len(moved) > 3  # each image draws its own exponent


def test_cut_bottom_ends_the_face_higher_and_stretches_it_back_to_the_full_size():
    """A photo that ends at the chin: up to a quarter of the height is cut off the bottom, the rest stretched."""
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[: SIZE // 2] = 255  # the upper half white
    transform = A.Compose(robustness_transforms(SIZE, AugmentConfig(cut_bottom=1.0)))
    whites = []
    for seed in range(20):
        transform.set_random_seed(seed)
        out = transform(image=image)["image"]
        assert out.shape == image.shape
        whites.append((out[:, SIZE // 2, 0] > 127).mean())
    # the white half grows from 1/2 to at most 1/2 / (1 - 1/4) = 2/3 of the height
    assert min(whites) >= 0.5 - 0.02 and max(whites) <= 2 / 3 + 0.02 and max(whites) > 0.58


def test_low_resolution_shrinks_the_face_to_the_sides_given_and_back():
    """A crowd face of 12 px: the output is the image shrunk to 12 px (area average) and enlarged back."""
    image = _face()
    expected = cv2.resize(cv2.resize(image, (12, 12), interpolation=cv2.INTER_AREA), (SIZE, SIZE), cv2.INTER_LINEAR)
    tiny = AugmentConfig(low_resolution=1.0, low_resolution_sides=[12, 12])
    out = A.Compose(robustness_transforms(SIZE, tiny))(image=cv2.resize(image, (SIZE, SIZE)))["image"]
    assert np.abs(out.astype(float) - expected).mean() < 4
    larger = AugmentConfig(low_resolution=1.0, low_resolution_sides=[48, 48])
    assert _detail(A.Compose(robustness_transforms(SIZE, larger))(image=image)["image"]) > 1.5 * _detail(out)


def test_framing_scale_is_checked():
    with pytest.raises(ConfigError, match=r"augment\.framing_scale"):
        load_config(None, ["augment.framing_scale=[1.5,0.8]"])
    with pytest.raises(ConfigError, match=r"augment\.pitch_range"):
        load_config(None, ["augment.pitch_range=[1.5,0.7]"])
    with pytest.raises(ConfigError, match=r"augment\.low_resolution_sides"):
        load_config(None, ["augment.low_resolution_sides=[48,16]"])


def test_labels_survive_every_augmentation(tmp_path, competition_manifest):
    """Through the dataset: gender, age and mask targets are the manifest's, whatever the pixels went through."""
    from faceattr.data.datamodule import FaceDataset
    from faceattr.data.manifest import read_manifest

    frame = read_manifest(competition_manifest).iloc[:12].reset_index(drop=True)
    aug = AugmentConfig(hflip=1, **dict.fromkeys(ROBUSTNESS_STEPS, 1.0))
    dataset = FaceDataset(frame, train_transform(64, aug, (0.5,) * 3, (0.5,) * 3))
    for i in range(len(frame)):
        _, targets = dataset[(i, 7)]
        for task in ("mask", "gender", "age_bin", "label18"):
            assert int(targets[task]) == int(frame[task].iloc[i]), task


def test_probabilities_are_checked():
    with pytest.raises(ConfigError, match=r"augment\.blur"):
        load_config(None, ["augment.blur=1.5"])


def test_checkpoint_metric_is_what_users_feel():
    """val/error = gender error + MAE/10 (+ mask F1 error): 1 point of gender accuracy = 0.1 year of MAE."""
    values = {"acc_gender": torch.tensor(0.9), "age_mae": torch.tensor(5.0), "f1_age_bin": torch.tensor(0.8)}
    assert float(user_error(values)) == pytest.approx(0.1 + 0.5)
    assert float(user_error({"acc_gender": torch.tensor(0.9), "f1_age_bin": torch.tensor(0.8)})) == pytest.approx(0.3)
    assert user_error({}) is None
