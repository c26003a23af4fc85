"""Synthetic masks: placement from landmarks, the competition layout they are written in, the augmentation."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from faceattr.data.datamodule import FaceDataset
from faceattr.data.manifest import read_manifest, write_manifest
from faceattr.data.sources import read_competition, read_utkface
from faceattr.errors import DatasetError, FaceAttrError, ManifestError
from faceattr.faces.detect import Face
from faceattr.labels import encode
from faceattr.synth.augment import SyntheticMasker
from faceattr.synth.dataset import contact_sheet, synthesize_dataset
from faceattr.synth.masks import INCORRECT_WEARS, SHAPES, MaskStyle, random_style, render_mask
from faceattr.synth.occluders import OCCLUDERS, render_occluder
from tests.conftest import SHARED_UTKFACE

# A frontal face on a 200 x 200 photo: eyes, nose tip, mouth corners, and its box down to the chin.
LANDMARKS = np.array([[70, 85], [130, 85], [100, 118], [78, 145], [122, 145]], dtype=np.float32)
BOX = (45.0, 40.0, 155.0, 180.0)
NOSE, MOUTH = (100, 118), (100, 145)


def _photo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(90, 200, size=(200, 200, 3), dtype=np.uint8)


def _covered(rendered, point) -> float:
    x, y = point
    return float(rendered.alpha[y, x])


@pytest.mark.parametrize("shape", SHAPES)
def test_a_correctly_worn_mask_covers_nose_and_mouth(shape):
    style = MaskStyle(shape, (150, 190, 225))
    rendered = render_mask(_photo(), LANDMARKS, BOX, "correct", style)
    assert _covered(rendered, NOSE) > 0.9
    assert _covered(rendered, MOUTH) > 0.9
    assert _covered(rendered, (100, 85)) < 0.1  # the eyes stay visible
    changed = np.abs(rendered.image.astype(int) - _photo().astype(int)).sum(-1) > 0
    assert changed[NOSE[1], NOSE[0]] and not changed[60, 100]


# incorrect wear -> (nose tip covered?, mouth centre covered?), None = either
INCORRECT_COVERAGE = {
    "nose_exposed": (False, True),
    "chin": (False, False),
    "mouth_only": (False, True),
    "under_chin": (False, False),
    "one_ear": (None, None),
    "loose": (False, True),
}
CHIN = (100, 172)
CHEEKS = ((64, 122), (136, 122))  # beside the nose, a little below its tip


@pytest.mark.parametrize("wear", INCORRECT_WEARS)
def test_every_incorrect_wear_bares_what_it_says(wear):
    rendered = render_mask(_photo(), LANDMARKS, BOX, wear, MaskStyle("cloth", (30, 40, 80)))
    assert rendered.alpha.sum() > 500  # a mask was drawn
    nose, mouth = INCORRECT_COVERAGE[wear]
    for point, covered in ((NOSE, nose), (MOUTH, mouth)):
        if covered is not None:
            assert (_covered(rendered, point) > 0.9) if covered else (_covered(rendered, point) < 0.1)
    if wear == "under_chin":
        assert _covered(rendered, CHIN) > 0.5  # still on the chin tip, so tight crops show it
    if wear == "loose":  # worn up on the cheeks, hanging off the nose in the middle
        assert all(_covered(rendered, cheek) > 0.9 for cheek in CHEEKS)
    if wear == "one_ear":  # hanging from one ear over the jaw: the nose bare and the mouth mostly so, for any draw
        for seed in range(8):
            hanging = render_mask(
                _photo(), LANDMARKS, BOX, wear, MaskStyle("cloth", (30, 40, 80)), np.random.default_rng(seed)
            )
            assert _covered(hanging, NOSE) < 0.1 and _covered(hanging, MOUTH) < 0.3 and hanging.alpha.sum() > 500


def _top_edge(rendered, x: int) -> int:
    return int(np.flatnonzero(rendered.alpha[:, x] > 0.5)[0])


@pytest.mark.parametrize("wear", ["nose_exposed", "chin", "under_chin", "loose"])
def test_a_pulled_down_or_loose_mask_sags_between_its_ear_loops_and_still_bares_what_it_says(wear):
    """Real masks pulled down ride up the cheeks on their loops: drawn ones sag by a random amount, the middle
    staying where the wear puts it."""
    sags = []
    for seed in range(12):
        rng = np.random.default_rng(seed)
        rendered = render_mask(_photo(), LANDMARKS, BOX, wear, MaskStyle("cloth", (30, 40, 80), edge_jitter=0.0), rng)
        nose, mouth = INCORRECT_COVERAGE[wear]
        assert (_covered(rendered, NOSE) > 0.9) == nose and (_covered(rendered, MOUTH) > 0.9) == mouth
        sags.append(_top_edge(rendered, 100) - max(_top_edge(rendered, 64), _top_edge(rendered, 136)))
    assert min(sags) >= -2 and max(sags) >= 8  # pixels the middle hangs below the sides (eyes 60 px apart)


def test_a_correct_mask_varies_its_fit_but_always_covers_nose_and_mouth():
    """Real masks sit higher or lower: drawn ones vary too, from under the eyes to low on the nose with its tip still
    covered, so a mask slipped down the nose is not taught as "incorrect" (real ones were called so)."""
    tops = []
    for seed in range(30):
        rendered = render_mask(
            _photo(), LANDMARKS, BOX, "correct", MaskStyle("surgical", (150, 190, 225)), np.random.default_rng(seed)
        )
        assert _covered(rendered, NOSE) > 0.9 and _covered(rendered, MOUTH) > 0.9
        tops.append(_top_edge(rendered, 100))
    assert max(tops) - min(tops) >= 4  # pixels: the top edge moves between draws
    eyes_y, tip_y = LANDMARKS[0, 1], NOSE[1]
    assert max(tops) > eyes_y + 0.5 * (tip_y - eyes_y)  # some fits sit on the lower half of the nose


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_draws_inside_the_face_region(shape):
    """Whatever the style draws (rough edge, shadow, wrinkles), it stays on the lower face, inside the box."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        style = replace(random_style(rng), shape=shape)
        rendered = render_mask(_photo(seed), LANDMARKS, BOX, "correct", style, rng)
        changed = np.abs(rendered.image.astype(int) - _photo(seed).astype(int)).sum(-1) > 12
        ys, xs = np.nonzero(changed)
        assert ys.min() >= 70 and xs.min() >= BOX[0] - 25 and xs.max() <= BOX[2] + 25
        assert _covered(rendered, NOSE) > 0.3  # clear plastic is partly transparent, yet there


@pytest.mark.parametrize("kind", OCCLUDERS)
def test_occluders_cover_the_lower_face_and_are_not_masks(kind):
    """A hand over the mouth or a scarf at the chin changes the lower face only; synth-masks labels it not worn."""
    rendered = render_occluder(_photo(), LANDMARKS, BOX, kind, np.random.default_rng(1))
    assert _covered(rendered, (100, 70)) < 0.05  # above the eyes: untouched
    if kind == "hand":
        assert _covered(rendered, MOUTH) > 0.5
    else:
        assert _covered(rendered, CHIN) > 0.5 and _covered(rendered, NOSE) < 0.05
    with pytest.raises(ValueError, match="hand"):
        render_occluder(_photo(), LANDMARKS, BOX, "glove")


def test_the_mask_follows_a_tilted_head():
    angle = np.deg2rad(20)
    centre = np.array([100.0, 110.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    tilted = (LANDMARKS - centre) @ rot.T + centre
    rendered = render_mask(_photo(), tilted, BOX, "correct", MaskStyle("surgical", (235, 236, 238)))
    nose = np.round(tilted[2]).astype(int)
    mouth = np.round(tilted[3:].mean(0)).astype(int)
    assert _covered(rendered, nose) > 0.9 and _covered(rendered, mouth) > 0.9


def test_same_seed_same_mask_and_degenerate_landmarks_are_refused():
    a = render_mask(_photo(), LANDMARKS, BOX, rng=np.random.default_rng(5)).image
    b = render_mask(_photo(), LANDMARKS, BOX, rng=np.random.default_rng(5)).image
    assert np.array_equal(a, b)
    styles = {random_style(np.random.default_rng(s)).shape for s in range(40)}
    assert styles == set(SHAPES)
    collapsed = np.repeat(LANDMARKS[:1], 5, axis=0)
    with pytest.raises(ValueError, match="degenerate"):
        render_mask(_photo(), collapsed, BOX)


def test_without_an_rng_the_mask_has_the_fixed_fit(monkeypatch):
    """No rng: the same image whatever the range of drawn correct fits, so fixtures built on it stay put."""
    from faceattr.synth import masks

    style = MaskStyle("cloth", (35, 35, 38))
    before = render_mask(_photo(), LANDMARKS, BOX, "correct", style).image
    monkeypatch.setattr(masks, "CORRECT_TOP", (0.5, 0.51))
    assert np.array_equal(render_mask(_photo(), LANDMARKS, BOX, "correct", style).image, before)
    drawn = render_mask(_photo(), LANDMARKS, BOX, "correct", style, np.random.default_rng(0)).image
    assert not np.array_equal(drawn, before)  # with an rng, the fit is drawn from the (patched) range


class KnownFaceDetector:
    """Stands in for MTCNN: the face sits where LANDMARKS say (shifted by the padding the builder adds);
    an all-black photo has none, an all-white one has all five points on one spot."""

    calls = 0

    def detect(self, images):
        out = []
        for image in images:
            pad = (image.shape[0] - 200) // 2
            centre = image[image.shape[0] // 2, image.shape[1] // 2]
            bright = centre.mean() > 10
            landmarks = LANDMARKS + pad
            if centre.mean() > 250:  # a white photo: a face whose five points fall on one spot
                landmarks = np.full_like(landmarks, 100.0 + pad)
            face = Face(tuple(v + pad for v in BOX), 0.99, landmarks)
            out.append([face] if bright else [])
        return out


@pytest.fixture
def bare_faces(tmp_path):
    """Six unmasked 'people' as a UTKFace folder, one photo (all black = no face) among them."""
    folder = tmp_path / "utk"
    folder.mkdir()
    for k in range(6):
        age, gender = 20 + 9 * k, k % 2
        pixels = np.zeros((200, 200, 3), np.uint8) if k == 5 else _photo(k)
        Image.fromarray(pixels).save(folder / f"{age}_{gender}_2_2017010{k}.jpg.chip.jpg")
    return write_manifest(read_utkface(folder), tmp_path / "utk.csv")


def _digest(root) -> str:
    h = hashlib.sha1()
    for path in sorted(root.rglob("*.jpg")):
        h.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return h.hexdigest()


def test_synthesized_dataset_reads_back_as_a_competition_dataset(bare_faces, tmp_path):
    source = read_manifest(bare_faces)
    result = synthesize_dataset(source, tmp_path / "synth", persons=10, detector=KnownFaceDetector(), progress=False)
    assert result.persons == 5 and result.skipped == 1  # the face-less photo is reported, not dropped silently
    skipped = pd.read_csv(tmp_path / "synth" / "skipped.csv")
    assert skipped["reason"].tolist() == ["no_face"]
    back = read_competition(tmp_path / "synth")
    assert len(back) == 5 * 7
    assert back.groupby("person_id").size().eq(7).all()
    assert sorted(back.groupby("mask").size().tolist()) == [5, 5, 25]
    by_person = back.groupby("person_id")[["gender", "age"]].first()
    expected = source[source["age"] != 65].set_index("age")["gender"]  # age 65 is the black photo
    assert dict(zip(by_person["age"], by_person["gender"], strict=True)) == expected.to_dict()
    assert set(back["label18"]) == {encode(m, g, a) for m, g, a in back[["mask", "gender", "age_bin"]].to_numpy()}
    log = pd.read_csv(result.log)
    assert set(log.loc[log["file"] == "incorrect_mask", "wear"]) <= set(INCORRECT_WEARS)
    sheet = contact_sheet(back, tmp_path / "synth" / "preview.png", count=12)
    assert Image.open(sheet).size[0] > 0


def test_a_face_whose_landmarks_cannot_place_a_mask_is_skipped_and_reported_and_the_rest_are_drawn(
    bare_faces, tmp_path
):
    source = read_manifest(bare_faces)
    white = source["path"].iloc[0]
    Image.fromarray(np.full((200, 200, 3), 255, np.uint8)).save(white)
    result = synthesize_dataset(source, tmp_path / "synth", persons=10, detector=KnownFaceDetector(), progress=False)
    assert result.persons == 4 and result.skipped == 2
    skipped = pd.read_csv(tmp_path / "synth" / "skipped.csv")
    assert sorted(skipped["reason"]) == ["degenerate_face", "no_face"]
    assert skipped.loc[skipped["reason"] == "degenerate_face", "path"].tolist() == [white]
    back = read_competition(tmp_path / "synth")
    assert len(back) == 4 * 7 and back.groupby("person_id").size().eq(7).all()  # no half-drawn person


def test_same_seed_writes_the_same_files_and_an_existing_dataset_is_kept(bare_faces, tmp_path):
    source = read_manifest(bare_faces)
    for name in ("a", "b"):
        synthesize_dataset(source, tmp_path / name, 3, seed=7, detector=KnownFaceDetector(), progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    with pytest.raises(DatasetError, match="--overwrite"):
        synthesize_dataset(source, tmp_path / "a", 3, seed=7, detector=KnownFaceDetector(), progress=False)
    synthesize_dataset(source, tmp_path / "a", 2, seed=8, detector=KnownFaceDetector(), progress=False, overwrite=True)
    assert len(read_competition(tmp_path / "a")) == 14
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "skipped.csv").write_text("a file of the user's own")  # no dataset there, but a file
    with pytest.raises(DatasetError, match=r"already holds skipped.csv.*--overwrite"):
        synthesize_dataset(source, tmp_path / "mine", 3, seed=7, detector=KnownFaceDetector(), progress=False)
    assert (tmp_path / "mine" / "skipped.csv").read_text() == "a file of the user's own"


def test_overwrite_never_replaces_a_competition_dataset_synth_masks_did_not_draw(
    bare_faces, competition_root, tmp_path
):
    theirs = tmp_path / "mask-data"  # a user's real training set, pointed at by mistake
    shutil.copytree(competition_root / "train", theirs / "train")
    images = theirs / "train" / "images"
    people = sorted(p.name for p in images.iterdir())
    with pytest.raises(DatasetError, match="did not draw"):
        synthesize_dataset(
            read_manifest(bare_faces), theirs, 2, detector=KnownFaceDetector(), progress=False, overwrite=True
        )
    assert sorted(p.name for p in images.iterdir()) == people


def test_no_people_or_an_out_that_is_a_file_is_refused_before_anything_is_written(bare_faces, tmp_path):
    source = read_manifest(bare_faces)
    with pytest.raises(DatasetError, match="at least one person"):
        synthesize_dataset(source, tmp_path / "none", 0, detector=KnownFaceDetector(), progress=False)
    assert not (tmp_path / "none").exists()
    mine = tmp_path / "notes.csv"
    mine.write_text("a file of the user's own")
    with pytest.raises(FaceAttrError, match="is a file, and --out names a folder"):
        synthesize_dataset(source, mine, 3, detector=KnownFaceDetector(), progress=False)
    assert mine.read_text() == "a file of the user's own"


def test_masker_draws_a_mask_and_relabels_only_unmasked_faces_with_landmarks():
    lm_text = " ".join(f"{v:.1f}" for v in LANDMARKS.ravel())
    box_text = " ".join(str(v) for v in BOX)
    frame = pd.DataFrame(
        {
            "path": ["a.jpg", "b.jpg", "c.jpg"],
            "mask": [2, 0, 2],
            "gender": [1, 1, 0],
            "age_bin": [2, 2, 0],
            "landmarks": [lm_text, lm_text, ""],
            "face_box": [box_text, box_text, ""],
        }
    )
    masker = SyntheticMasker(frame, p=1.0, incorrect=0.5)
    assert masker.eligible() == 1
    wears = []
    for seed in range(20):
        targets = {"mask": torch.tensor(2), "gender": torch.tensor(1), "age_bin": torch.tensor(2)}
        targets["label18"] = torch.tensor(encode(2, 1, 2))
        image, out = masker(0, _photo(), targets, seed)
        assert int(out["mask"]) in (0, 1)
        assert int(out["label18"]) == encode(int(out["mask"]), 1, 2)
        assert not np.array_equal(image, _photo())
        wears.append(int(out["mask"]))
    assert 0 < sum(wears) < 20  # both correct and incorrect wears are drawn
    for row in (1, 2):  # already masked, or no landmarks: untouched
        targets = {"mask": torch.tensor(int(frame["mask"][row])), "gender": torch.tensor(0), "age_bin": torch.tensor(0)}
        image, out = masker(row, _photo(), targets, 3)
        assert np.array_equal(image, _photo()) and out is targets
    with pytest.raises(ManifestError, match=r"faceattr framing MANIFEST --landmarks.*faceattr crop"):
        SyntheticMasker(frame.drop(columns=["landmarks"]), 0.5, 0.5)


def test_masker_keeps_label18_unknown_for_a_face_whose_gender_or_age_is_unknown():
    """An image-folder row (mask known, gender and age unknown) mixed into a synthetic-mask training run."""
    lm_text, box_text = " ".join(f"{v:.1f}" for v in LANDMARKS.ravel()), " ".join(str(v) for v in BOX)
    frame = pd.DataFrame(
        {
            "path": ["a.jpg"],
            "mask": [2],
            "gender": [-1],
            "age_bin": [-1],
            "landmarks": [lm_text],
            "face_box": [box_text],
        }
    )
    targets = {
        "mask": torch.tensor(2),
        "gender": torch.tensor(-1),
        "age_bin": torch.tensor(-1),
        "label18": torch.tensor(-1),
    }
    image, out = SyntheticMasker(frame, p=1.0, incorrect=0.0)(0, _photo(), targets, 0)
    assert int(out["mask"]) == 0 and int(out["label18"]) == -1
    assert not np.array_equal(image, _photo())


def test_dataset_applies_the_masker(tmp_path):
    Image.fromarray(_photo()).save(tmp_path / "a.jpg")
    lm_text = " ".join(f"{v:.1f}" for v in LANDMARKS.ravel())
    frame = pd.DataFrame(
        {
            "path": [str(tmp_path / "a.jpg")],
            "person_id": ["p"],
            "mask": [2],
            "gender": [0],
            "age": [40.0],
            "age_bin": [1],
            "label18": [encode(2, 0, 1)],
            "landmarks": [lm_text],
            "face_box": [" ".join(str(v) for v in BOX)],
        }
    )
    dataset = FaceDataset(frame, lambda image: {"image": image}, masker=SyntheticMasker(frame, 1.0, 0.0))
    image, targets = dataset[(0, 11)]
    assert int(targets["mask"]) == 0 and int(targets["label18"]) == encode(0, 0, 1)
    assert not np.array_equal(image, _photo())


@pytest.mark.skipif(not SHARED_UTKFACE.is_dir(), reason="../shared/data/utkface is absent (research-only, not in repo)")
def test_real_faces_get_masks_where_mtcnn_puts_them_and_a_mask_head_learns_them(tmp_path):
    """40 real UTKFace people -> 280 images; a brief mask-head fine-tune separates the three mask states."""
    from faceattr.config import load_config
    from faceattr.reports.evaluate import evaluate
    from faceattr.training import train
    from tests.conftest import tiny_overrides

    files = sorted(SHARED_UTKFACE.iterdir())[:400:10]
    folder = tmp_path / "utk"
    folder.mkdir()
    for f in files:
        (folder / f.name).symlink_to(f)
    source = read_utkface(folder)
    result = synthesize_dataset(source, tmp_path / "synth", persons=40, seed=1, progress=False)
    assert result.persons >= 36  # MTCNN finds nearly every padded UTKFace face
    manifest = write_manifest(read_competition(tmp_path / "synth"), tmp_path / "synth.csv")
    overrides = tiny_overrides(
        manifest,
        tmp_path / "runs",
        **{
            "model.backbone": "tf_efficientnet_lite0",
            "model.pretrained": "package",
            "model.heads": "[mask]",
            "data.image_size": 96,
            "data.folds": 4,
            "train.epochs": 3,
            "train.monitor": "val/f1_mask",
            "optim.lr": "2e-3",
        },
    )
    trained = train(load_config(None, overrides))
    scores = evaluate(trained.best_checkpoint, out_dir=tmp_path / "eval").metrics
    assert scores["mask"]["f1"] > 0.6, scores["mask"]  # chance is ~0.33 on held-out people


@pytest.mark.skipif(not SHARED_UTKFACE.is_dir(), reason="../shared/data/utkface is absent (research-only, not in repo)")
def test_synth_masks_command_writes_the_layout_and_a_preview(tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    folder = tmp_path / "utk"
    folder.mkdir()
    for f in sorted(SHARED_UTKFACE.iterdir())[:4]:
        (folder / f.name).symlink_to(f)
    manifest = write_manifest(read_utkface(folder), tmp_path / "utk.csv")
    out = tmp_path / "synth"
    args = ["synth-masks", str(manifest), "--out", str(out), "--persons", "3", "--preview", "8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 people x 7 images" in result.output
    assert Image.open(out / "preview.png").size[0] > 0
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "--overwrite" in again.output
