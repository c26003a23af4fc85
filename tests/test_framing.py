"""`faceattr framing`: a pre-cropped dataset's framing, measured so that prediction crops photos the same way."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from faceattr.config import FacesConfig
from faceattr.data.images import SkipReport
from faceattr.errors import ConfigError, DatasetError
from faceattr.faces.detect import Face, crop_face, detect_padded
from faceattr.faces.framing import image_margins, measure_framing
from tests.conftest import SHARED_UTKFACE, public_face
from tests.test_faces import FakeDetector, _manifest


def test_margins_say_where_the_image_edges_lie_around_the_face():
    face = Face((20.0, -30.0, 120.0, 170.0), 0.99, np.zeros((5, 2)))  # the image cuts 30 px off the box's top
    margins = image_margins(face, (150, 200))
    assert margins == pytest.approx([0.2, 0.3, -0.15, 0.15])


def test_cropping_a_photo_with_the_measured_framing_recovers_what_the_dataset_shows():
    box_in_crop = (20.0, -30.0, 120.0, 170.0)  # a tight dataset image of 150x200 whose face box overhangs its top
    face = Face(box_in_crop, 0.99, np.zeros((5, 2)))
    cfg = FacesConfig(margins=list(image_margins(face, (150, 200))), margin_unit="fraction")
    photo = np.zeros((512, 384, 3), np.uint8)
    dx, dy = 100, 150  # the same face in a wider photo
    in_photo = Face(
        (box_in_crop[0] + dx, box_in_crop[1] + dy, box_in_crop[2] + dx, box_in_crop[3] + dy), 0.99, np.zeros((5, 2))
    )
    _, box = crop_face(photo, in_photo, cfg)
    assert box == (dx, dy, dx + 150, dy + 200)


def test_measure_framing_takes_the_median_over_images_with_a_face(tmp_path):
    df = _manifest(tmp_path, n=6)  # 384x512 images; FakeDetector finds (100, 150, 250, 330) in the bright ones
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    df = pd.concat([df, df.iloc[:1].assign(path=str(tmp_path / "broken.jpg"))], ignore_index=True)
    skips = SkipReport()
    framing = measure_framing(df, limit=0, skips=skips, detector=FakeDetector(), pad=0)
    assert framing.read == 6 and framing.measured == 3 and framing.face_rate == 0.5
    assert framing.margins == pytest.approx([100 / 150, 134 / 150, 150 / 180, 182 / 180], abs=1e-3)
    assert [r["reason"] for r in skips.rows] == ["not_an_image"]
    cfg = framing.faces_config(FacesConfig(min_score=0.8))
    assert cfg.margin_unit == "fraction" and cfg.margins == framing.margins and cfg.min_score == 0.8


def test_faces_are_detected_on_a_padded_copy_and_mapped_back_to_the_image():
    class SeesCanvas:
        def detect(self, images):
            self.seen = images
            return [[Face((110.0, 120.0, 160.0, 190.0), 0.99, np.array([[130.0, 140.0]] * 5))] for _ in images]

    image = np.full((200, 100, 3), 50, np.uint8)
    detector = SeesCanvas()
    (face,) = detect_padded(detector, [image], pad=0.5)
    canvas = detector.seen[0]
    assert canvas.shape == (400, 300, 3) and canvas[0, 0, 0] == 127
    detect_padded(detector, [image], pad=0.5, fill=None)
    assert detector.seen[0][0, 0, 0] == 50  # the image's mean colour
    assert (canvas[100:300, 100:200] == image).all()
    assert face.box == (10.0, 20.0, 60.0, 90.0) and (face.landmarks == [30.0, 40.0]).all()


def test_a_framing_run_cut_short_goes_on_from_the_faces_it_noted(tmp_path):
    df = _manifest(tmp_path, n=6)
    fresh_found: dict = {}
    fresh = measure_framing(df, limit=0, detector=FakeDetector(), pad=0, found=fresh_found)
    journal = tmp_path / "faces.partial.csv"
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after two batches of two
        measure_framing(df, limit=0, detector=FakeDetector(fail_after=4), pad=0, batch_size=2, journal=journal)
    again, found = FakeDetector(), {}
    resumed = measure_framing(df, limit=0, detector=again, pad=0, batch_size=2, found=found, journal=journal)
    assert again.calls == 2  # only the images the first run never reached
    assert resumed.read == fresh.read and resumed.margins == pytest.approx(fresh.margins)
    assert found.keys() == fresh_found.keys()
    assert all(np.allclose(found[p].landmarks, fresh_found[p].landmarks) for p in found)


def test_no_face_anywhere_is_a_clear_error(tmp_path):
    dark = _manifest(tmp_path, n=6).iloc[1::2]  # FakeDetector finds nothing in the dark images
    with pytest.raises(DatasetError, match="no face found in any of the 3 images"):
        measure_framing(dark, limit=0, detector=FakeDetector())


def test_fraction_margins_may_cut_into_the_box_but_must_leave_part_of_it():
    from faceattr.config import load_config

    cfg = load_config(None, ["faces.margins=[-0.03,0.04,-0.23,0.01]", "faces.margin_unit=fraction"])
    assert cfg.faces.margins[2] == -0.23
    with pytest.raises(ConfigError, match=r"faces\.margins"):
        load_config(None, ["faces.margins=[-0.6,-0.6,0,0]", "faces.margin_unit=fraction"])


def test_training_on_the_framed_manifest_makes_prediction_crop_with_that_framing(
    competition_manifest, tmp_path, monkeypatch
):
    import torch
    from typer.testing import CliRunner

    import faceattr.faces.framing as framing_module
    from faceattr.cli import app
    from faceattr.config import load_config
    from faceattr.training import train
    from tests.conftest import tiny_overrides

    class BrightFace(FakeDetector):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__()

        def detect(self, images):
            return [[Face((10.0, 20.0, 60.0, 90.0), 0.99, np.zeros((5, 2)))] for _ in images]

    monkeypatch.setattr(framing_module, "FaceDetector", BrightFace)
    framed = tmp_path / "framed.csv"
    result = CliRunner().invoke(app, ["framing", str(competition_manifest), "--out", str(framed), "--limit", "20"])
    assert result.exit_code == 0, result.output
    assert "20 of 20 images" in result.output
    size = Image.open(pd.read_csv(competition_manifest)["path"][0]).size
    dx = dy = round(max(size) * 0.5)  # the box was found on the image padded by half its longer side
    expected = [(10 - dx) / 50, (size[0] + dx - 60) / 50, (20 - dy) / 70, (size[1] + dy - 90) / 70]

    run = train(load_config(None, tiny_overrides(framed, tmp_path / "runs", **{"train.epochs": 1})))
    faces = torch.load(run.best_checkpoint, weights_only=False)["hyper_parameters"]["config"]["faces"]
    assert faces["trained_on_crops"] is True
    assert faces["margins"] == pytest.approx(expected, abs=1e-3) and faces["margin_unit"] == "fraction"


@pytest.mark.skipif(not SHARED_UTKFACE.is_dir(), reason=f"UTKFace crops not found at {SHARED_UTKFACE}")
def test_utkface_framing_is_tighter_than_mtcnn_and_recovers_the_face_from_a_photo():
    from faceattr.faces.detect import FaceDetector

    files = sorted(SHARED_UTKFACE.glob("*.jpg"))[::97][:60]
    detector = FaceDetector(FacesConfig(detector="mtcnn"))
    framing = measure_framing(pd.DataFrame({"path": [str(f) for f in files]}), limit=0, detector=detector)
    assert framing.face_rate >= 0.9
    assert framing.margins[2] < -0.1, "UTKFace's crops cut the forehead off MTCNN's box"
    cfg = framing.faces_config()
    rng = np.random.default_rng(0)
    overlaps = []
    for f in files[:30]:
        face = Image.open(f).convert("RGB")
        x, y = int(rng.integers(0, 384 - 200)), int(rng.integers(0, 512 - 200))
        photo = Image.new("RGB", (384, 512), (120, 110, 100))
        photo.paste(face, (x, y))
        found = detector.detect([np.asarray(photo)])[0]
        if not found:
            overlaps.append(0.0)
            continue
        x1, y1, x2, y2 = crop_face(np.asarray(photo), found[0], cfg)[1]
        inter = max(0, min(x2, x + 200) - max(x1, x)) * max(0, min(y2, y + 200) - max(y1, y))
        overlaps.append(inter / ((x2 - x1) * (y2 - y1) + 200 * 200 - inter))
    assert np.median(overlaps) >= 0.8, f"median overlap with the pasted UTKFace crop {np.median(overlaps):.2f}"


def test_framing_command_names_a_missing_manifest(tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    result = CliRunner().invoke(app, ["framing", str(tmp_path / "nope.csv")])
    assert result.exit_code != 0 and "nope.csv" in result.output


def test_predict_can_crop_with_margins_from_the_command_line(trained_run, tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    photo = Image.new("RGB", (384, 512), (120, 110, 100))
    photo.paste(public_face(), (90, 150))
    photo.save(tmp_path / "photo.jpg")
    boxes = {}
    for name, extra in {"checkpoint": ["--faces"], "tight": ["--margins", "0,0,-0.1,0"]}.items():
        out = tmp_path / f"{name}.csv"
        args = ["predict", str(trained_run.best_checkpoint), str(tmp_path / "photo.jpg"), "--out", str(out), *extra]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        boxes[name] = pd.read_csv(out).iloc[0]
    wide, tight = boxes["checkpoint"], boxes["tight"]  # the tight crop lies inside the checkpoint's margin crop
    assert tight.face_found and tight.x1 > wide.x1 and tight.y1 > wide.y1 and tight.x2 < wide.x2
    bad = CliRunner().invoke(app, ["predict", str(trained_run.best_checkpoint), str(tmp_path), "--margins", "1,2"])
    assert bad.exit_code != 0 and "faces.margins" in bad.output


def test_framing_landmarks_let_training_draw_masks_on_utkface(tmp_path):
    """The README recipe's step: `framing --landmarks` records every face, so augment.synthetic_mask_p can draw."""
    if not SHARED_UTKFACE.is_dir():
        pytest.skip("needs ../shared/data/utkface (research-only data, not shipped)")
    from typer.testing import CliRunner

    from faceattr.cli import app
    from faceattr.data.manifest import read_manifest
    from faceattr.synth.augment import SyntheticMasker

    files = sorted(SHARED_UTKFACE.glob("*.jpg"))[::400][:12]
    root = tmp_path / "utk"
    root.mkdir()
    for f in files:
        (root / f.name).write_bytes(f.read_bytes())
    manifest = tmp_path / "utk.csv"
    assert (
        CliRunner().invoke(app, ["prepare", "utkface", str(root), "--out", str(manifest), "--folds", "2"]).exit_code
        == 0
    )
    # a journal left by a run cut short: its noted face is taken as it is, and the journal goes once all are found
    from faceattr.config import load_config
    from faceattr.faces.crop import settings_key

    journal = tmp_path / f"utk.framed.csv.{settings_key(load_config(None).faces)}.partial.csv"
    noted = str(read_manifest(manifest)["path"].iloc[0])
    journal.write_text(
        "path,width,height,face_box,score,landmarks\n"
        f"{noted},200,200,10 20 150 190,0.9,50 80 120 80 85 120 60 150 110 150\n"
    )
    result = CliRunner().invoke(app, ["framing", str(manifest), "--landmarks"])
    assert result.exit_code == 0, result.output
    assert "going on from the faces noted" in result.output and not journal.exists()
    framed = read_manifest(tmp_path / "utk.framed.csv")
    assert framed.set_index("path").loc[noted, "face_box"] == "10.0 20.0 150.0 190.0"
    assert "face boxes and landmarks recorded for" in result.output
    masker = SyntheticMasker(framed, p=1.0, incorrect=0.0)
    assert masker.eligible() >= 10  # MTCNN finds nearly every UTKFace face
