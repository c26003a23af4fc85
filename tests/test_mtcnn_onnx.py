"""MTCNN on onnxruntime finds the same faces as facenet-pytorch's MTCNN, without torch."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.nn.functional import interpolate
from torchvision.ops import nms as torchvision_nms

from faceattr.config import FacesConfig, load_config
from faceattr.errors import ConfigError
from faceattr.faces.detect import FaceDetector
from faceattr.faces.mtcnn_onnx import OnnxMTCNN, integral_image, mtcnn_folder, nms, pooled
from tests.conftest import public_face


def _photos() -> list[np.ndarray]:
    """The astronaut at three sizes and places on plain canvases, two faces side by side, and a photo of noise."""
    rng = np.random.default_rng(0)
    photos = []
    for size, at in (((170, 200), (40, 30)), ((85, 100), (200, 150)), ((300, 352), (0, 0))):
        canvas = np.full((400, 420, 3), 128, np.uint8)
        face = np.asarray(public_face(size))
        canvas[at[1] : at[1] + face.shape[0], at[0] : at[0] + face.shape[1]] = face
        photos.append(canvas)
    pair = np.full((260, 420, 3), 90, np.uint8)
    pair[20:220, 10:180] = np.asarray(public_face())
    pair[20:220, 230:400] = np.asarray(public_face(mirrored=True))
    photos.append(pair[:, :, :])
    photos.append(rng.integers(0, 255, (260, 420, 3), dtype=np.uint8))
    return photos


def test_same_faces_boxes_scores_and_landmarks_as_facenet_pytorch():
    from facenet_pytorch import MTCNN

    reference = MTCNN(keep_all=True, min_face_size=20, thresholds=[0.6, 0.7, 0.7], post_process=False, device="cpu")
    ours = OnnxMTCNN(mtcnn_folder(), 20, [0.6, 0.7, 0.7])
    found = 0
    for photo in _photos():
        want_boxes, want_probs, want_points = reference.detect(photo[None], landmarks=True)
        boxes, probs, points = ours.detect(photo[None], landmarks=True)
        if want_boxes[0] is None:
            assert boxes[0] is None and probs[0] == [None]
            continue
        found += len(want_boxes[0])
        np.testing.assert_allclose(boxes[0], np.asarray(want_boxes[0], np.float32), atol=0.01)
        np.testing.assert_allclose(probs[0], np.asarray(want_probs[0], np.float32), atol=1e-4)
        np.testing.assert_allclose(points[0], np.asarray(want_points[0], np.float32), atol=0.01)
    assert found >= 5  # the astronaut in each photo, twice in the pair


def test_a_batch_gives_each_image_its_own_faces():
    ours = OnnxMTCNN(mtcnn_folder(), 20)
    photos = _photos()[3:]  # the pair, then noise: same size
    boxes, _, _ = ours.detect(np.stack(photos), landmarks=True)
    assert len(boxes[0]) == 2 and boxes[1] is None


def test_resizing_from_the_summed_area_table_is_torchs_area_interpolation():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    table = integral_image(image)
    chw = torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32))
    for size in ((12, 17), (24, 24), (48, 48), (60, 90), (37, 53)):  # one box: a whole pyramid level
        want = interpolate(chw[None], size=size, mode="area")[0].numpy()
        np.testing.assert_allclose(pooled(table, [0], [37], [0], [53], *size)[0], want, atol=1e-3)
    top, height, left, width = [3, 0, 10], [20, 37, 9], [5, 0, 30], [14, 53, 9]  # several boxes: patches
    got = pooled(table, top, height, left, width, 24, 24)
    for k, patch in enumerate(got):
        box = chw[None, :, top[k] : top[k] + height[k], left[k] : left[k] + width[k]]
        np.testing.assert_allclose(patch, interpolate(box, size=(24, 24), mode="area")[0].numpy(), atol=1e-3)


def test_nms_keeps_what_torchvision_keeps():
    rng = np.random.default_rng(2)
    corners = rng.uniform(0, 100, (200, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 40, (200, 2))], 1).astype(np.float32)
    scores = rng.uniform(0, 1, 200).astype(np.float32)
    for threshold in (0.3, 0.5, 0.7):
        want = torchvision_nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold).numpy()
        np.testing.assert_array_equal(nms(boxes, scores, threshold), want)


def test_the_detector_answers_the_same_with_either_backend():
    photos = _photos()
    onnx = FaceDetector(FacesConfig(detector="onnx", min_face_size=20)).detect_every(photos)
    reference = FaceDetector(FacesConfig(detector="torch", min_face_size=20)).detect_every(photos)
    for (faces, how), (want_faces, want_how) in zip(onnx, reference, strict=True):
        assert how == want_how and len(faces) == len(want_faces)
        for face, want in zip(faces, want_faces, strict=True):
            np.testing.assert_allclose(face.box, want.box, atol=0.01)


def test_the_networks_are_exported_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path))
    folder = mtcnn_folder()
    assert folder.parent == tmp_path and sorted(p.name for p in folder.iterdir()) == [
        "onet.onnx",
        "pnet.onnx",
        "rnet.onnx",
    ]
    stamps = [p.stat().st_mtime_ns for p in sorted(folder.iterdir())]
    assert mtcnn_folder() == folder
    assert [p.stat().st_mtime_ns for p in sorted(folder.iterdir())] == stamps


def test_detecting_with_onnx_does_not_import_torch():
    mtcnn_folder()  # exported (with torch) beforehand, as `faceattr export` or a first run does
    code = (
        "import sys, numpy as np; from faceattr.config import FacesConfig; from faceattr.faces.detect import "
        "FaceDetector; d = FaceDetector(FacesConfig(detector='onnx')); "
        "d.detect_every([np.zeros((120, 160, 3), np.uint8)]); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    assert out.stdout.strip() == "False"


def test_a_missing_network_folder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"faceattr export.*faces\.detector=torch"):
        OnnxMTCNN(tmp_path)


def test_an_unknown_backend_is_a_config_error():
    with pytest.raises(ConfigError, match=r"faces\.detector"):
        load_config(None, ["faces.detector=tensorflow"])


def test_auto_falls_back_to_facenet_pytorch_when_the_networks_cannot_be_exported(tmp_path, monkeypatch):
    blocked = tmp_path / "read-only"
    blocked.write_text("a file where the cache folder should be")  # nothing can be created under it
    monkeypatch.setenv("FACEATTR_CACHE", str(blocked))
    assert FaceDetector(FacesConfig(detector="auto"), device="cpu").backend == "torch"
    with pytest.raises(OSError):
        FaceDetector(FacesConfig(detector="onnx"))
