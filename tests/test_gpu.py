"""The GPU paths, where they run: mixed precision, augmentation on the device, the batch-size tuner, prediction and
export on CUDA. Skipped without CUDA (CI has none); `benchmarks/gpu_check.sh` runs them on a lent GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceattr.config import AugmentConfig, load_config
from tests.conftest import tiny_overrides

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh)"),
]
CUDA = torch.device("cuda")


def _module(backbone: str = "tf_efficientnet_lite0"):
    from faceattr.models.module import FaceAttrModule

    cfg = load_config(None, [f"model.backbone={backbone}", "model.pretrained=none", "model.heads=[mask,gender,age]"])
    torch.manual_seed(0)
    return FaceAttrModule.from_config(cfg, load_pretrained=False).to(CUDA)


def _batch(n: int = 32, size: int = 128):
    g = torch.Generator().manual_seed(1)
    images = torch.randn(n, 3, size, size, generator=g).to(CUDA)
    targets = {
        "mask": torch.randint(0, 3, (n,), generator=g).to(CUDA),
        "gender": torch.randint(0, 2, (n,), generator=g).to(CUDA),
        "age": torch.randint(0, 101, (n,), generator=g).to(CUDA),
    }
    return images, targets


def test_a_bf16_training_step_is_finite_and_labels_agree_with_fp32():
    module = _module().eval()
    images, targets = _batch()
    with torch.no_grad():
        full = module(images)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            mixed = module(images)
    for task in full:
        agree = (full[task].argmax(1) == mixed[task].float().argmax(1)).float().mean().item()
        assert agree >= 0.9, f"{task}: bf16 labels agree with fp32 on only {agree:.0%}"
        np.testing.assert_allclose(mixed[task].float().cpu(), full[task].cpu(), atol=0.1, rtol=0.05)
    module.train()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = module._total(module._losses(module(images), targets))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and all(torch.isfinite(p).all() for p in module.parameters())


def test_on_device_augmentation_keeps_its_documented_distributions_on_cuda():
    from faceattr.data.device_augment import DeviceAugment

    off = {"hflip": 0.0, "shift_scale_rotate": 0.0, "brightness_contrast": 0.0}
    torch.manual_seed(0)
    images = torch.randint(0, 256, (512, 3, 64, 64), dtype=torch.uint8, device=CUDA)
    flip = DeviceAugment(64, AugmentConfig(**{**off, "hflip": 0.5}), [0.0] * 3, [1.0] * 3).to(CUDA)(images)
    plain = images.float() / 255
    flipped = (flip - plain.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert 0.4 < flipped.float().mean().item() < 0.6  # each sample draws its own chance
    gray = DeviceAugment(64, AugmentConfig(**{**off, "grayscale": 1.0}), [0.0] * 3, [1.0] * 3).to(CUDA)(images)
    assert (gray[:, 0] - gray[:, 1]).abs().max() < 1e-4 and (gray[:, 1] - gray[:, 2]).abs().max() < 1e-4
    same = DeviceAugment(64, AugmentConfig(**off), [0.0] * 3, [1.0] * 3).to(CUDA)(images)
    torch.testing.assert_close(same, plain)


def test_on_device_augmentation_never_waits_for_the_gpu():
    """Every step is drawn and applied on the device: no copy to the host and no synchronisation (what made the
    per-sample version as slow as the model step)."""
    from faceattr.data.device_augment import DeviceAugment
    from faceattr.data.transforms import AUGMENT_STEPS

    augment = DeviceAugment(128, AugmentConfig(**{name: 0.5 for name in AUGMENT_STEPS}), [0.5] * 3, [0.5] * 3)
    augment = augment.to(CUDA)
    images = torch.randint(0, 256, (64, 3, 128, 128), dtype=torch.uint8, device=CUDA)
    augment(images)  # the first call creates the library handles
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = augment(images)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert out.shape == (64, 3, 128, 128) and torch.isfinite(out).all()


def test_the_batch_size_tuner_picks_a_size_that_trains(competition_manifest, tmp_path):
    from faceattr.training import train

    overrides = tiny_overrides(
        competition_manifest, tmp_path, **{"data.batch_size": "auto", "trainer.accelerator": "gpu", "train.epochs": 1}
    )
    result = train(load_config(None, overrides))
    import json

    summary = json.loads((result.run_dir / "train_summary.json").read_text())
    assert 1 <= summary["batch_size"] <= summary["train_size"] and result.best_checkpoint.is_file()


def test_predict_and_export_on_cuda_equal_the_cpu(trained_run, tmp_path):
    from faceattr.inference.checkpoint_predictor import Predictor
    from faceattr.inference.export import export_onnx
    from faceattr.inference.onnx_predictor import OnnxPredictor

    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (80, 70, 3), dtype=np.uint8) for _ in range(6)]
    on_cpu = Predictor(trained_run.best_checkpoint, device="cpu").predict_crops(crops)
    on_gpu = Predictor(trained_run.best_checkpoint, device="cuda").predict_crops(crops)
    for task in on_cpu:
        np.testing.assert_allclose(on_gpu[task], on_cpu[task], atol=1e-3)
    model, _ = export_onnx(trained_run.best_checkpoint, tmp_path / "m.onnx", 17)
    exported = OnnxPredictor(model).predict_crops(crops)
    for task in on_cpu:
        np.testing.assert_allclose(exported[task], on_gpu[task], atol=1e-3)
