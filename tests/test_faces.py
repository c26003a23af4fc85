"""Face crops: geometry stays inside the image, the fallback is used, the cache and resume work, bad files skip."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from faceattr.config import FacesConfig
from faceattr.data.images import SkipReport
from faceattr.faces.crop import adopt_crop_settings, crop_manifest, parse_points
from faceattr.faces.detect import Face, FaceDetector, fallback_box, grow_box, margin_box
from tests.conftest import SHARED_UTKFACE, public_face


class FakeDetector(FaceDetector):
    """Finds a face at a fixed box in every image whose top-left pixel is bright; counts its calls.

    The cascade's later steps are off, so an image without a bright corner gets the centred fallback crop."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.cfg = FacesConfig(second_pass=False, whole_image_max_side=0)
        self.calls = 0
        self.fail_after = fail_after

    def detect(self, images):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += len(images)
        face = Face((100, 150, 250, 330), 0.99, np.array([[150, 200], [200, 200], [175, 240], [155, 280], [195, 280]]))
        return [[face] if img[0, 0, 0] > 128 else [] for img in images]


def _manifest(tmp_path: Path, n: int = 6) -> pd.DataFrame:
    rows = []
    for i in range(n):
        path = tmp_path / "src" / f"img{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (384, 512), (200, 90, 90) if i % 2 == 0 else (40, 90, 90)).save(path)
        rows.append(
            {
                "path": str(path),
                "person_id": f"p{i}",
                "mask": i % 3,
                "gender": 0,
                "age": 30.0,
                "age_bin": 1,
                "label18": (i % 3) * 6 + 1,
                "source": "t",
            }
        )
    return pd.DataFrame(rows)


@given(
    x1=st.floats(-100, 500),
    y1=st.floats(-100, 600),
    w=st.floats(1, 400),
    h=st.floats(1, 400),
    width=st.integers(1, 800),
    height=st.integers(1, 800),
    fraction=st.booleans(),
)
def test_crops_stay_inside_the_image(x1, y1, w, h, width, height, fraction):
    cfg = FacesConfig(margins=[0.2, 0.2, 0.4, 0.2], margin_unit="fraction") if fraction else FacesConfig()
    for box in (margin_box((x1, y1, x1 + w, y1 + h), (width, height), cfg), fallback_box((width, height), cfg)):
        bx1, by1, bx2, by2 = box
        assert 0 <= bx1 < bx2 <= width and 0 <= by1 < by2 <= height


def test_default_margins_follow_the_winning_recipe():
    box = margin_box((100, 150, 250, 330), (384, 512), FacesConfig())
    assert box == (70, 90, 280, 360)  # 30 px left/right, 60 above, 30 below
    assert fallback_box((384, 512), FacesConfig()) == (64, 86, 320, 426)  # 256x340 around the centre


def test_margins_in_fractions_grow_with_the_face_and_are_clipped_only_by_margin_box():
    cfg = FacesConfig(margins=[0.1, 0.1, 0.2, 0.5], margin_unit="fraction")
    face = (100, 300, 200, 500)  # 100 x 200 face near the bottom of a 384 x 512 photo
    assert grow_box(face, cfg) == (90, 260, 210, 600)  # 10 % of the width each side, 20 % / 50 % of the height
    assert margin_box(face, (384, 512), cfg) == (90, 260, 210, 512)  # the part past the bottom edge cut off


def test_crop_uses_faces_and_falls_back_when_none_found(tmp_path):
    df = _manifest(tmp_path)
    result = crop_manifest(df, tmp_path / "cache", detector_factory=FakeDetector, progress=False)
    out = result.manifest
    assert out["face_found"].tolist() == [True, False] * 3
    found = out[out.face_found].iloc[0]
    assert (found.crop_x1, found.crop_y1, found.crop_x2, found.crop_y2) == (70, 90, 280, 360)
    assert Image.open(found.path).size == (210, 270)
    # landmarks and face box are kept in crop pixels, for the synthetic-mask augmentation
    assert parse_points(found.landmarks, 5)[0].tolist() == [150 - 70, 200 - 90]
    assert parse_points(found.face_box, 2).ravel().tolist() == [30, 60, 180, 240]
    fallback = out[~out.face_found].iloc[0]
    assert Image.open(fallback.path).size == (256, 340)
    assert parse_points(fallback.landmarks, 5) is None
    assert out["source_path"].tolist() == [str(Path(p).resolve()) for p in df.path]
    assert Image.open(df.path[0]).size == (384, 512)  # sources untouched


def test_second_run_does_no_detection(tmp_path):
    df = _manifest(tmp_path)
    crop_manifest(df, tmp_path / "cache", detector_factory=FakeDetector, progress=False)
    made = []

    def factory():
        made.append(FakeDetector())
        return made[-1]

    again = crop_manifest(df, tmp_path / "cache", detector_factory=factory, progress=False)
    assert made == [] and again.detected_now == 0 and again.reused == len(df)
    Path(again.manifest.path[0]).unlink()  # a missing crop is redone, and only that one
    third = crop_manifest(df, tmp_path / "cache", detector_factory=factory, progress=False)
    assert third.detected_now == 1 and third.reused == len(df) - 1


def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    df = _manifest(tmp_path, n=8)
    with pytest.raises(KeyboardInterrupt):
        crop_manifest(
            df, tmp_path / "cache", detector_factory=lambda: FakeDetector(fail_after=4), batch_size=2, progress=False
        )
    resumed = crop_manifest(df, tmp_path / "cache", detector_factory=FakeDetector, batch_size=2, progress=False)
    assert resumed.reused == 4 and resumed.detected_now == 4 and len(resumed.manifest) == 8


def test_a_run_killed_mid_row_leaves_a_cache_the_next_run_resumes(tmp_path):
    """A kill (or a full disk) can cut the cache index mid-row: that face is cropped again, the rest reused, and
    the rows appended after it are not glued onto the cut one."""
    df = _manifest(tmp_path, n=6)
    crop_manifest(df, tmp_path / "cache", detector_factory=FakeDetector, progress=False)
    (index,) = (tmp_path / "cache").glob("*/index.csv")
    text = index.read_bytes()
    cut_row = text.rstrip().rsplit(b"\n", 1)[1]
    index.write_bytes(text[: len(text) - len(cut_row) - 2 + cut_row.index(b",") + 3])  # the path and 2 digits
    resumed = crop_manifest(df, tmp_path / "cache", detector_factory=FakeDetector, progress=False)
    assert resumed.reused == 5 and resumed.detected_now == 1 and len(resumed.manifest) == 6
    again = crop_manifest(df, tmp_path / "cache", detector_factory=FakeDetector, progress=False)
    assert again.reused == 6 and again.detected_now == 0  # the recropped row was written whole, on its own line


def test_crop_settings_travel_with_the_manifest(tmp_path):
    wide = FacesConfig(margins=[0.2, 0.2, 0.3, 0.1], margin_unit="fraction")
    out = crop_manifest(_manifest(tmp_path, n=2), tmp_path / "cache", wide, FakeDetector, progress=False).manifest
    faces = FacesConfig()
    changed = adopt_crop_settings(faces, out)
    assert faces.margins == [0.2, 0.2, 0.3, 0.1] and faces.margin_unit == "fraction" and len(changed) == 2
    assert adopt_crop_settings(faces, out) == []  # already the same
    mixed = pd.concat([out, out.assign(crop_settings=out.crop_settings.str.replace("0.3", "0.4"))])
    with pytest.raises(ValueError, match="mixes crops made with 2 different"):
        adopt_crop_settings(FacesConfig(), mixed)


def test_changed_settings_make_new_crops(tmp_path):
    df = _manifest(tmp_path, n=2)
    crop_manifest(df, tmp_path / "cache", detector_factory=FakeDetector, progress=False)
    wider = FacesConfig(margins=[50, 50, 80, 40])
    result = crop_manifest(df, tmp_path / "cache", wider, detector_factory=FakeDetector, progress=False)
    assert result.reused == 0 and result.detected_now == 2


def test_bad_images_are_skipped_with_reason_while_good_ones_are_cropped(tmp_path):
    df = _manifest(tmp_path, n=4)
    bad = {"empty.jpg": b"", "text.jpg": b"hello", "trunc.jpg": (tmp_path / "src" / "img0.jpg").read_bytes()[:200]}
    extra = []
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        extra.append({**df.iloc[0].to_dict(), "path": str(tmp_path / name), "person_id": name})
    huge = tmp_path / "huge.png"
    Image.new("RGB", (3000, 3000)).save(huge)
    extra.append({**df.iloc[0].to_dict(), "path": str(huge), "person_id": "huge"})
    df = pd.concat([df, pd.DataFrame(extra)], ignore_index=True)
    skips = SkipReport(tmp_path / "skipped.csv")
    cfg = FacesConfig(max_pixels=5_000_000)
    result = crop_manifest(df, tmp_path / "cache", cfg, detector_factory=FakeDetector, skips=skips, progress=False)
    assert len(result.manifest) == 4 and result.skipped == 4
    reasons = {Path(r["path"]).name: r["reason"] for r in SkipReport.read(tmp_path / "skipped.csv")}
    assert reasons == {
        "empty.jpg": "empty_file",
        "text.jpg": "not_an_image",
        "trunc.jpg": "truncated",
        "huge.png": "too_many_pixels",
    }


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_UTKFACE.is_dir(), reason=f"UTKFace crops not found at {SHARED_UTKFACE}")
def test_mtcnn_finds_utkface_faces_padded_onto_competition_sized_canvases():
    from faceattr.faces.detect import FaceDetector

    files = sorted(SHARED_UTKFACE.glob("*.jpg"))[::39][:200]
    rng = np.random.default_rng(0)
    canvases, centres = [], []
    for f in files:
        face = Image.open(f).convert("RGB")
        x, y = int(rng.integers(0, 384 - 200)), int(rng.integers(0, 512 - 200))
        canvas = Image.new("RGB", (384, 512), tuple(int(v) for v in rng.integers(60, 200, 3)))
        canvas.paste(face, (x, y))
        canvases.append(np.asarray(canvas))
        centres.append((x + 100, y + 100))
    detections = FaceDetector().detect(canvases)
    hits = 0
    for faces, (cx, cy) in zip(detections, centres, strict=True):
        if faces:
            x1, y1, x2, y2 = faces[0].box
            hits += abs((x1 + x2) / 2 - cx) < 40 and abs((y1 + y2) / 2 - cy) < 50
    assert hits / len(files) >= 0.95, f"found {hits} of {len(files)} faces near where they were pasted"


def test_predict_on_photos_gives_one_row_per_face_and_draws_boxes(trained_run, tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    photos = tmp_path / "photos"
    photos.mkdir()
    canvas = Image.new("RGB", (520, 300), (90, 120, 150))  # two real faces side by side on one photo
    for k in range(2):
        canvas.paste(public_face(mirrored=k == 1), (40 + 260 * k, 50))
    expected_faces = 2
    canvas.save(photos / "group.jpg")
    (photos / "broken.jpg").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "faces.csv"
    args = ["predict", str(trained_run.best_checkpoint), str(photos), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--faces", "--draw", str(tmp_path / "drawn")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == expected_faces and table["path"].str.endswith("group.jpg").all()
    assert table["face_found"].all() == (expected_faces == 2)
    assert (table["detection"] == "detected").all() and "faces: detected 2" in result.output
    for col in ("face", "x1", "y1", "x2", "y2", "mask", "gender", "age_bin", "label18", "p_mask_0"):
        assert col in table.columns
    assert ((table.x1 >= 0) & (table.x2 <= 520) & (table.y1 >= 0) & (table.y2 <= 300)).all()
    drawn = tmp_path / "drawn" / "group.jpg_faces.jpg"
    assert drawn.is_file() and Image.open(drawn).size == canvas.size
    skipped = pd.read_csv(tmp_path / "faces.skipped.csv")
    assert skipped["path"].str.endswith("broken.jpg").all() and len(skipped) == 1


def test_crop_command_then_training_on_crops_makes_prediction_crop_too(
    competition_root, competition_manifest, tmp_path
):
    import torch
    from typer.testing import CliRunner

    from faceattr.cli import app
    from faceattr.config import load_config
    from faceattr.training import train
    from tests.conftest import tiny_overrides

    crops_manifest = tmp_path / "crops.csv"
    args = ["crop", str(competition_manifest), "--cache", str(tmp_path / "cache"), "--out", str(crops_manifest)]
    result = CliRunner().invoke(app, [*args, "faces.margins=[0.1,0.1,0.3,0.1]", "faces.margin_unit=fraction"])
    assert result.exit_code == 0, result.output
    assert "mask=wear: face found" in result.output and "105 crops" in result.output
    crops = pd.read_csv(crops_manifest)
    assert len(crops) == 105 and {"source_path", "face_found", "crop_x1"} <= set(crops.columns)

    run = train(load_config(None, tiny_overrides(crops_manifest, tmp_path / "runs", **{"train.epochs": 1})))
    config = torch.load(run.best_checkpoint, weights_only=False)["hyper_parameters"]["config"]
    assert config["faces"]["trained_on_crops"] is True
    # the training config did not repeat the crop's margins: they came from the manifest, so predict matches them
    assert config["faces"]["margins"] == [0.1, 0.1, 0.3, 0.1] and config["faces"]["margin_unit"] == "fraction"
    out = tmp_path / "submission.csv"
    result = CliRunner().invoke(
        app, ["submit", str(run.best_checkpoint), str(competition_root / "eval"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out)["ans"].between(0, 17).all()
    # a config that says how to predict is kept, not overwritten by what the manifest suggests
    kept = {"train.epochs": 1, "run.name": "kept", "faces.trained_on_crops": False}
    run = train(load_config(None, tiny_overrides(crops_manifest, tmp_path / "runs", **kept)))
    config = torch.load(run.best_checkpoint, weights_only=False)["hyper_parameters"]["config"]
    assert config["faces"]["trained_on_crops"] is False


def test_a_face_row_gives_the_detectors_box_beside_the_crop_box():
    """`predict --faces` rows carry the box the detector found (to match against a user's own boxes) and the crop
    box with the model's margins (what the model saw); a photo's fallback crop has no detector box."""
    from faceattr.faces.detect import Found
    from faceattr.faces.detectors import Face
    from faceattr.inference.faces_in_photos import FACE_BOX_COLUMNS, face_result, flat_row

    probs, labels = {"mask": np.array([[0.7, 0.2, 0.1]])}, {"mask": np.array([0])}
    face = Face(box=(40.26, 50.0, 90.04, 120.5), score=0.91, landmarks=np.zeros((5, 2)))
    row = flat_row("p.jpg", face_result(0, face, Found.DETECTED, (30, 35, 100, 125), probs, labels, 0))
    assert [row[c] for c in FACE_BOX_COLUMNS] == [40.3, 50.0, 90.0, 120.5]
    assert [row[c] for c in ("x1", "y1", "x2", "y2")] == [30, 35, 100, 125]
    fallback = flat_row("p.jpg", face_result(0, None, Found.NONE, (0, 0, 256, 340), probs, labels, 0))
    assert all(np.isnan(fallback[c]) for c in FACE_BOX_COLUMNS)
    assert (row["detection"], fallback["detection"]) == ("detected", "none")
