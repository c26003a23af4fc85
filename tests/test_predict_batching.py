"""Speed work that must not change answers: faces of several photos classified in one batch, and detection on a
downscaled copy with boxes mapped back to the photo's pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from faceattr.config import FacesConfig
from faceattr.faces.detect import FaceDetector, downscale


@pytest.fixture(scope="module")
def astronaut(skimage_data) -> np.ndarray:
    return skimage_data.astronaut()  # 512x512, one face


def test_downscale_keeps_small_images_and_shrinks_large_ones_to_the_longest_side():
    image = np.zeros((400, 1000, 3), np.uint8)
    assert downscale(image, 0)[1] == 1.0 and downscale(image, 1000)[0] is image
    small, scale = downscale(image, 500)
    assert small.shape == (200, 500, 3) and scale == 0.5


def test_faces_found_on_a_downscaled_copy_are_mapped_back_to_the_photo(monkeypatch):
    """MTCNN answers in the small copy's pixels; detect() returns the photo's."""
    detector = FaceDetector(FacesConfig(detector="mtcnn", detect_max_side=250, min_score=0.5))
    seen = []

    def fake_detect(batch, landmarks=True):
        seen.append(batch.shape)
        boxes = np.array([[[10.0, 20.0, 60.0, 80.0]]])
        points = np.array([[[[20.0, 40.0]] * 5]])
        return boxes, np.array([[0.99]]), points

    monkeypatch.setattr(detector.mtcnn, "detect", fake_detect)
    face = detector.detect([np.zeros((500, 1000, 3), np.uint8)])[0][0]
    assert seen == [(1, 125, 250, 3)]
    assert face.box == pytest.approx((40.0, 80.0, 240.0, 320.0))
    assert face.landmarks[0].tolist() == pytest.approx([80.0, 160.0])


def test_a_real_face_detected_at_half_size_lands_where_full_size_detection_puts_it(astronaut):
    full = FaceDetector(FacesConfig(detect_max_side=0)).detect([astronaut])[0][0]
    half = FaceDetector(FacesConfig(detect_max_side=256)).detect([astronaut])[0][0]
    width = full.box[2] - full.box[0]
    assert np.abs(np.subtract(half.box, full.box)).max() < 0.1 * width
    assert np.abs(half.landmarks - full.landmarks).max() < 0.1 * width


def test_classifying_many_photos_in_one_batch_gives_each_photo_its_own_answer(trained_run, astronaut, tmp_path):
    from faceattr.inference.faces_in_photos import predict_faces
    from faceattr.inference.load import load_predictor

    photos = []
    for k, (side, flip) in enumerate([(512, False), (400, True), (300, False), (450, True), (512, True)]):
        image = Image.fromarray(astronaut[:, ::-1] if flip else astronaut).resize((side, side))
        photos.append(tmp_path / f"p{k}.jpg")
        image.save(photos[-1], quality=95)
    predictor = load_predictor(trained_run.best_checkpoint)
    detector = predictor.face_detector()
    one_by_one = predict_faces(predictor, [str(p) for p in photos], detector, batch_size=1, overlap=False)
    together = predict_faces(predictor, [str(p) for p in photos], detector, batch_size=8)
    pipelined = predict_faces(predictor, [str(p) for p in photos], detector, batch_size=2)  # detect ahead
    assert len(together) == len(one_by_one) == len(pipelined) == len(photos)
    assert pipelined.equals(together) or np.allclose(
        pipelined.select_dtypes("number"), together.select_dtypes("number"), atol=1e-4
    )
    assert together["path"].tolist() == pipelined["path"].tolist() == [str(p) for p in photos]
    labels = [c for c in together if c in ("mask", "gender", "age_bin")]
    assert labels and (together[labels] == one_by_one[labels]).all().all()
    probs = [c for c in together if c.startswith("p_")]
    assert np.allclose(together[probs], one_by_one[probs], atol=1e-4)


def test_reading_ahead_in_threads_keeps_order_and_raises_where_the_item_is():
    from faceattr.inference.predictor import read_ahead

    for workers in (0, 1, 3):
        assert list(read_ahead(lambda x: x * x, list(range(10)), workers)) == [x * x for x in range(10)]

    def fails_on_three(x):
        if x == 3:
            raise ValueError("three")
        return x

    seen = []
    with pytest.raises(ValueError, match="three"):
        for value in read_ahead(fails_on_three, list(range(6)), 2):
            seen.append(value)
    assert seen == [0, 1, 2]  # everything before the failing item arrived, in order


def test_decoding_in_worker_threads_gives_the_same_predictions_and_skips(trained_run, competition_root, tmp_path):
    from faceattr.inference.load import load_predictor

    photos = sorted(str(p) for p in (competition_root / "eval" / "images").glob("*.jpg"))[:9]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    paths = [*photos[:4], str(broken), *photos[4:]]
    predictor = load_predictor(trained_run.best_checkpoint)
    inline = predictor.predict_paths(paths, batch_size=3)
    threaded = predictor.predict_paths(paths, batch_size=3, num_workers=2)
    assert threaded.paths == inline.paths == photos
    assert [s[0] for s in threaded.skipped] == [s[0] for s in inline.skipped] == [str(broken)]
    for task in inline.probs:
        np.testing.assert_array_equal(threaded.probs[task], inline.probs[task])
