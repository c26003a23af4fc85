"""Face alignment (faces.align): the five landmarks onto a template by a similarity transform, in training and in
prediction alike."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage

from faceattr.config import FacesConfig, load_config
from faceattr.data.align import CHIP_SIDE, Alignment, align, moved, similarity, template
from faceattr.errors import ManifestError
from tests.conftest import public_face, tiny_overrides


def turned(points: np.ndarray, degrees: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = np.deg2rad(degrees)
    rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (points - points.mean(0)) @ rotation.T * scale + points.mean(0) + shift


def test_a_face_turned_scaled_and_moved_lands_exactly_on_the_template():
    target = template(CHIP_SIDE, 0.25)
    for degrees, scale in ((25, 1.7), (-40, 0.4), (170, 3.0)):
        face = turned(target, degrees, scale, (310.0, 95.0))
        assert np.abs(moved(face, similarity(face, target)) - target).max() < 1e-6


def test_the_fit_is_the_least_squares_similarity():
    rng = np.random.default_rng(0)
    target = template(CHIP_SIDE, 0.25)
    face = turned(target, 12, 1.3, (40.0, 60.0)) + rng.normal(0, 3, size=(5, 2))  # a real face is not the template
    best = similarity(face, target)
    error = ((moved(face, best) - target) ** 2).sum()
    for _ in range(50):  # no nearby similarity fits better
        a, s = rng.normal(0, 0.02), 1 + rng.normal(0, 0.02)
        nudge = np.array([[s * np.cos(a), -s * np.sin(a)], [s * np.sin(a), s * np.cos(a)]])
        other = np.hstack([nudge @ best[:, :2], (best[:, 2] + rng.normal(0, 1, 2))[:, None]])
        assert ((moved(face, other) - target) ** 2).sum() > error


# enlarge 6: a face much larger than the chip takes the shrink-first path
@pytest.mark.parametrize("enlarge, name, padding", [(1, "arcface", 0.25), (6, "arcface", 0.25), (1, "utkface", 0.0)])
def test_each_landmark_of_a_real_face_lands_where_the_fit_puts_it_within_a_pixel(enlarge, name, padding):
    from faceattr.faces.detect import FaceDetector

    photo = np.asarray(public_face().resize((170 * enlarge, 200 * enlarge)))
    face = max(FaceDetector(FacesConfig()).detect([photo])[0], key=lambda f: f.score)
    marked = np.zeros(photo.shape[:2], np.float32)
    for x, y in face.landmarks:  # a bright blob on each landmark, found again in the chip
        yy, xx = np.mgrid[: photo.shape[0], : photo.shape[1]]
        marked += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * (1.5 * enlarge) ** 2))
    chip = Alignment(name, padding)(np.repeat(marked[..., None], 3, axis=2), face.landmarks)[..., 0]
    expected = moved(face.landmarks, similarity(face.landmarks, template(CHIP_SIDE, padding, name)))
    blobs, count = ndimage.label(chip > 0.3 * chip.max())
    found = np.array(ndimage.center_of_mass(chip, blobs, range(1, count + 1)))[:, ::-1]
    assert count == 5
    for point in expected:
        assert np.linalg.norm(found - point, axis=1).min() < 1.0
    # and the fit puts them near the template: the eyes level, about 2 px off at this chip size
    assert abs(expected[1, 1] - expected[0, 1]) < 2.0
    assert np.linalg.norm(expected - template(CHIP_SIDE, padding, name), axis=1).mean() < 6.0


def test_utkface_template_frames_a_face_as_utkface_crops_do_where_arcface_reaches_past_them():
    """On a 200 px crop framed as UTKFace's are (the landmarks where its median face has them), the utkface chip is
    the crop itself, scaled; ArcFace's frame, even without padding, reaches past it and replicates its edge."""
    crop = np.asarray(public_face().resize((200, 200)))
    points = template(200, 0.0, "utkface")
    utkface = Alignment("utkface", 0.0)(crop, points)
    assert np.abs(utkface.astype(float) - cv2.resize(crop, (CHIP_SIDE, CHIP_SIDE)).astype(float)).mean() < 3.0
    for chip, repeated in ((Alignment("arcface", 0.0)(crop, points), True), (utkface, False)):
        top = np.abs(chip[1:40].astype(float) - chip[:1]).mean()  # the top rows repeat the photo's first row
        assert (top < 2.0) == repeated


def test_predict_aligns_a_detected_face_and_keeps_margin_crops_without_the_setting():
    from faceattr.faces.detect import FaceDetector, crop_face, face_chip

    photo = np.asarray(public_face())
    face = max(FaceDetector(FacesConfig()).detect([photo])[0], key=lambda f: f.score)
    chip, box = face_chip(photo, face, FacesConfig(align=True))
    assert chip.shape == (CHIP_SIDE, CHIP_SIDE, 3)
    assert np.array_equal(chip, align(photo, face.landmarks, 0.25))
    utkface, _ = face_chip(photo, face, FacesConfig(align=True, align_template="utkface", align_padding=0.0))
    assert np.array_equal(utkface, align(photo, face.landmarks, 0.0, name="utkface"))
    margin, same_box = face_chip(photo, face, FacesConfig())
    assert same_box == box and margin.shape[:2] == (box[3] - box[1], box[2] - box[0])
    # `faceattr crop` keeps margin crops (and their landmarks) whatever faces.align says: training aligns them
    assert np.array_equal(crop_face(photo, face, FacesConfig(align=True))[0], margin)


def test_training_aligned_needs_landmarks_in_the_manifest(competition_manifest, tmp_path):
    from faceattr.data.datamodule import FaceDataModule

    cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"faces.align": True}))
    with pytest.raises(ManifestError, match="framing MANIFEST --landmarks"):
        FaceDataModule(cfg, [0.5] * 3, [0.5] * 3).setup("fit")


def test_training_batches_are_aligned_by_each_rows_landmarks(competition_manifest, tmp_path):
    import pandas as pd

    from faceattr.data.datamodule import FaceDataset
    from faceattr.data.images import load_rgb
    from faceattr.data.landmarks import format_points, parse_points

    frame = pd.read_csv(competition_manifest).head(2)
    points = parse_points(format_points(template(100, 0.1) + np.array([20.0, 40.0])), 5)  # as the manifest keeps them
    frame["landmarks"] = [format_points(points), ""]  # the second row: no face found, used as it is

    def identity(image):
        return {"image": image}

    dataset = FaceDataset(frame, identity, alignment=Alignment("arcface", 0.25))
    image, _ = dataset[0]
    assert np.array_equal(image, align(load_rgb(frame["path"][0]), points, 0.25))
    assert np.array_equal(dataset[1][0], load_rgb(frame["path"][1]))


def test_a_face_much_larger_than_the_chip_is_shrunk_by_area_first_so_fine_detail_does_not_alias():
    side = 1200
    stripes = np.indices((side, side)).sum(0) % 2 * 255  # a one-pixel checkerboard: detail finer than the chip
    photo = np.repeat(stripes[..., None], 3, axis=2).astype(np.uint8)
    points = template(side, 0.25)  # the face fills the photo: six times the chip's side
    chip = align(photo, points, 0.25)
    assert abs(chip.mean() - 127.5) < 5 and chip.std() < 10  # averaged to grey, not sampled into moire


def test_an_aligned_model_is_evaluated_on_crops_aligned_by_the_manifests_landmarks(competition_manifest, tmp_path):
    import pandas as pd

    from faceattr.data.images import load_rgb
    from faceattr.data.landmarks import format_points, parse_points
    from faceattr.inference.load import load_predictor
    from faceattr.reports.evaluate import evaluate
    from faceattr.training import train

    frame = pd.read_csv(competition_manifest)
    frame["landmarks"] = [format_points(template(90, 0.1) + np.array([k % 5, 12.0])) for k in range(len(frame))]
    manifest = tmp_path / "aligned.csv"
    frame.to_csv(manifest, index=False)
    cfg = load_config(None, tiny_overrides(manifest, tmp_path, **{"faces.align": True, "train.epochs": 1}))
    checkpoint = train(cfg).best_checkpoint
    table = evaluate(checkpoint, out_dir=tmp_path / "eval").predictions
    landmarks = frame.set_index("path").loc[table["path"], "landmarks"]
    chips = [align(load_rgb(p), parse_points(m, 5), 0.25) for p, m in zip(table["path"], landmarks, strict=True)]
    expected = load_predictor(checkpoint).predict_crops(chips)["gender"]
    assert np.allclose(table[["p_gender_0", "p_gender_1"]].to_numpy(), expected, atol=1e-4)
