"""Augmentation on the training device (`augment.on_device`): the workers hand over resized uint8 faces, and each
`augment.*` setting changes the batch on the device the way its CPU counterpart changes one image; with all of
them off the batch equals what validation and prediction feed the model."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("kornia", reason="augment.on_device needs pip install 'faceattr[gpu]'")

from faceattr.config import AugmentConfig, load_config
from faceattr.data.device_augment import DeviceAugment, ResizeToUint8
from faceattr.data.transforms import eval_transform
from faceattr.errors import ConfigError
from tests.conftest import tiny_overrides

SIZE = 64
OFF = {"hflip": 0.0, "shift_scale_rotate": 0.0, "brightness_contrast": 0.0}
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)  # the augmentations draw from torch's generator, as Lightning seeds it in training


def augment(**on: float) -> DeviceAugment:
    """Everything off but `on`; identity normalisation so outputs read as 0..1 pixel values."""
    return DeviceAugment(SIZE, AugmentConfig(**{**OFF, **on}), [0.0] * 3, [1.0] * 3)


def faces(n: int = 8, seed: int = 0) -> torch.Tensor:
    """Textured uint8 batches: noise over a left-to-right and top-to-bottom gradient (no symmetry to hide a flip)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(20, 200, SIZE)
    base = ramp[None, :, None] * 0.6 + ramp[:, None, None] * 0.4 + np.array([0, 15, 30])
    images = np.clip(base[None] + rng.normal(0, 25, (n, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def detail(x: torch.Tensor) -> torch.Tensor:
    """Per-image high-frequency energy: mean absolute difference between neighbouring pixels."""
    return (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(1, 2, 3))


def test_with_every_augmentation_off_the_batch_is_what_prediction_sees():
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (90, 77, 3), dtype=np.uint8)
    worker = ResizeToUint8(SIZE)(image=photo)["image"]
    assert worker.dtype == torch.uint8 and worker.shape == (3, SIZE, SIZE)
    device = DeviceAugment(SIZE, AugmentConfig(**OFF), MEAN, STD)(worker[None])[0]
    expected = eval_transform(SIZE, MEAN, STD)(image=photo)["image"]
    np.testing.assert_allclose(device.numpy(), expected, atol=1e-5)


def test_flip_mirrors_and_each_sample_draws_its_own_chance():
    x = faces(200)
    always = augment(hflip=1.0)(x)
    torch.testing.assert_close(always, x.flip(-1).float() / 255)
    half = augment(hflip=0.5)(x)
    flipped = (half - x.flip(-1).float() / 255).abs().amax(dim=(1, 2, 3)) < 1e-6
    assert 0.3 < flipped.float().mean() < 0.7


@pytest.mark.parametrize(
    "setting",
    ["shift_scale_rotate", "brightness_contrast", "framing_jitter", "color", "jpeg", "occlusion"],
)
def test_each_augmentation_changes_the_images(setting):
    """Each draws its strength per image from a range that includes none (a brightness factor near 1, say), so
    most images change, and an unchanged one is a draw, not a switch ignored."""
    x = faces(16)
    out = augment(**{setting: 1.0})(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    changed = (out - x.float() / 255).abs().amax(dim=(1, 2, 3)) > 0.02
    assert changed.float().mean() >= 0.75, setting


def test_grayscale_makes_the_channels_equal():
    out = augment(grayscale=1.0)(faces())
    torch.testing.assert_close(out[:, 0], out[:, 1])
    torch.testing.assert_close(out[:, 1], out[:, 2])


def test_low_resolution_and_blur_take_away_detail():
    x = faces()
    before = detail(x.float() / 255)
    for setting in ("low_resolution", "blur"):
        after = detail(augment(**{setting: 1.0})(x))
        assert (after < 0.8 * before).all(), setting


def test_low_resolution_shrinks_to_the_sides_given_as_on_the_cpu_path():
    x = faces()
    out = augment(low_resolution=1.0, low_resolution_sides=[8, 8])(x)
    small = torch.nn.functional.interpolate(x.float() / 255, size=(8, 8), mode="area")
    expected = torch.nn.functional.interpolate(small, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_low_resolution_draws_each_side_per_sample_from_the_range():
    """Each image is exactly one side's shrink and enlargement, and the sides vary across the batch."""
    x = faces(24)
    out = augment(low_resolution=1.0, low_resolution_sides=[8, 16])(x)
    errors = []
    for side in range(8, 17):
        small = torch.nn.functional.interpolate(x.float() / 255, size=(side, side), mode="area")
        expected = torch.nn.functional.interpolate(small, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
        errors.append((out - expected).abs().amax(dim=(1, 2, 3)))
    best, side = torch.stack(errors).min(0)
    assert (best < 1e-5).all() and len(side.unique()) >= 4


def test_jpeg_loses_what_a_real_jpeg_loses():
    """At each quality, the batched DCT rounding lands within a grey level of PIL's JPEG of the same image, and
    loses as much (what the model must learn to ignore)."""
    import io

    from PIL import Image

    from faceattr.data.device_augment import Jpeg

    x = faces(6)
    for quality in (20, 50, 90):
        decoded = []
        for image in x.permute(0, 2, 3, 1).numpy():
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, "JPEG", quality=quality)
            decoded.append(np.asarray(Image.open(buffer).convert("RGB")))
        real = torch.from_numpy(np.stack(decoded)).permute(0, 3, 1, 2).float()
        ours = Jpeg(1.0, (quality, quality)).change(x.float() / 255).clamp(0, 1) * 255
        real_loss, our_loss = (real - x).abs().mean(), (ours - x).abs().mean()
        assert (ours - real).abs().mean() < 0.25 * real_loss, quality
        assert abs(our_loss - real_loss) < 0.1 * real_loss, (quality, our_loss, real_loss)


def test_the_geometric_steps_keep_the_face_at_no_change_and_frame_it_as_drawn():
    from faceattr.data.device_augment import Affine

    x = faces(4).float() / 255
    torch.testing.assert_close(Affine(1.0, degrees=0, translate=0, scale=(1, 1)).change(x), x, atol=1e-5, rtol=0)
    half = Affine(1.0, degrees=0, translate=0, scale=(0.5, 0.5)).change(x)  # zoomed out: the face in the middle half
    assert half[..., : SIZE // 4 - 1, :].abs().max() == 0 and half[..., :, -(SIZE // 4 - 1) :].abs().max() == 0
    middle = torch.nn.functional.interpolate(x, size=(SIZE // 2, SIZE // 2), mode="bilinear", antialias=True)
    inner = half[..., SIZE // 4 + 1 : -SIZE // 4 - 1, SIZE // 4 + 1 : -SIZE // 4 - 1]
    assert (inner - middle[..., 1:-1, 1:-1]).abs().mean() < 0.05
    turned = Affine(1.0, degrees=10, translate=0, scale=(1, 1)).change(x)
    assert ((turned - x).abs().mean(dim=(1, 2, 3)) > 0.01).all()  # every sample turned by its own angle


def test_blur_kernels_keep_brightness_and_a_streak_has_its_length():
    from faceattr.data.device_augment import gaussian_kernels, motion_kernels

    gauss = gaussian_kernels(torch.tensor([0.8, 1.4]), 7)
    torch.testing.assert_close(gauss.sum(dim=(1, 2)), torch.ones(2))
    assert gauss[1, 3, 0] > gauss[0, 3, 0]  # the wider sigma reaches further
    streak = motion_kernels(torch.tensor([3.0, 9.0]), torch.tensor([0.0, 0.0]), 9)
    torch.testing.assert_close(streak.sum(dim=(1, 2)), torch.ones(2))
    assert (streak[0, 4] > 0).sum() == 3 and (streak[1, 4] > 0).sum() == 9 and streak[:, :4].sum() == 0


def test_cut_bottom_keeps_the_top_and_stretches_the_rest_down():
    """Up to a quarter cut off (a cut may round to no row at all, as on the CPU path, so the test reads the batch)."""
    x = faces(32)
    out = augment(cut_bottom=1.0)(x)
    original = x.float() / 255
    top = (out[..., :2, :] - original[..., :2, :]).abs().mean()
    assert top < 0.1  # the top rows stay (the stretch moves them by under a pixel)
    # the image brightens downwards, so lower rows now hold what was higher up: darker
    darker = out[..., -8:, :].mean(dim=(1, 2, 3)) < original[..., -8:, :].mean(dim=(1, 2, 3)) - 0.01
    assert darker.float().mean() > 0.75


def test_pitch_moves_the_rows_as_the_cpu_path_does():
    """The same exponent gives the same picture on both paths (within a grey level or two of interpolation)."""
    import albumentations as A

    from faceattr.data.transforms import robustness_transforms

    x = faces(2)
    for exponent in (0.7, 1.5):
        aug = AugmentConfig(**OFF, pitch=1.0, pitch_range=[exponent, exponent])
        out = DeviceAugment(SIZE, aug, [0.0] * 3, [1.0] * 3)(x) * 255
        cpu = A.Compose(robustness_transforms(SIZE, aug))
        for image, device in zip(x, out, strict=True):
            expected = cpu(image=image.permute(1, 2, 0).numpy())["image"].astype(np.float32)
            assert np.abs(device.permute(1, 2, 0).numpy() - expected).mean() < 1.5, exponent
        assert (out - x.float()).abs().mean() > 2  # it did move the rows


def test_occlusion_hides_one_to_four_patches_of_the_documented_size():
    white = torch.full((50, 3, SIZE, SIZE), 255, dtype=torch.uint8)
    hidden = (augment(occlusion=1.0)(white) == 0).all(1).float().mean(dim=(1, 2))
    assert (hidden >= 0.1**2 * 0.8).all()  # at least one hole of 10 % x 10 % of the side
    assert (hidden <= 4 * 0.25**2 + 0.01).all()  # at most four of 25 % x 25 %


def test_training_with_on_device_augmentation_feeds_the_model_normalised_batches(competition_manifest, tmp_path):
    from faceattr.data.datamodule import FaceDataModule
    from faceattr.training import train

    overrides = {
        "augment.on_device": True,
        "augment.blur": 0.5,
        "augment.jpeg": 0.5,
        "augment.low_resolution": 0.5,
        "train.epochs": 1,
    }
    cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path, **overrides))
    data = FaceDataModule(cfg, MEAN, STD)
    data.setup("fit")
    images, targets = next(iter(data.train_dataloader()))
    assert images.dtype == torch.uint8
    augmented, same_targets = data.on_after_batch_transfer((images, targets), 0)
    assert augmented.dtype == torch.float32 and augmented.shape == images.shape and same_targets is targets
    val_images, _ = next(iter(data.val_dataloader()))
    assert data.on_after_batch_transfer((val_images, {}), 0)[0] is val_images  # validation stays as it is
    result = train(cfg)
    assert result.best_checkpoint.is_file() and np.isfinite(result.metrics["train/loss"])


def test_without_kornia_the_colour_step_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "kornia.color", None)
    with pytest.raises(ConfigError, match=r"faceattr\[gpu\]"):
        DeviceAugment(SIZE, AugmentConfig(color=0.3), MEAN, STD)
    assert len(DeviceAugment(SIZE, AugmentConfig(jpeg=0.3), MEAN, STD).steps) == 4  # the other steps need none


def test_both_stacks_take_each_step_from_one_ordered_list():
    """Albumentations in the workers and kornia on the device build the same AUGMENT_STEPS, in that one order:
    each step turned on alone is one op in both, and a stack missing a step is refused."""
    from faceattr.data.transforms import AUGMENT_STEPS, in_order, train_steps, train_transform

    none = {name: 0.0 for name in AUGMENT_STEPS}
    for name in AUGMENT_STEPS:
        aug = AugmentConfig(**{**none, name: 0.5})
        assert len(DeviceAugment(SIZE, aug, MEAN, STD).steps) == 1, name
        assert len(train_transform(SIZE, aug, MEAN, STD).transforms) == 4, name  # resize, the step, normalize, tensor
    everything = AugmentConfig(**{name: 0.5 for name in AUGMENT_STEPS})
    assert len(DeviceAugment(SIZE, everything, MEAN, STD).steps) == len(AUGMENT_STEPS)
    partial = dict(train_steps(SIZE, everything))
    del partial["blur"]
    with pytest.raises(ValueError, match="must build exactly"):
        in_order(partial, everything)
