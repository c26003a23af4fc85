"""The server's micro-batcher: concurrent requests share a model call, each gets its own answer, and one bad photo
fails only its own request."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from faceattr.serve.batching import MicroBatcher


def test_requests_that_arrive_while_a_batch_runs_form_the_next_batch_and_get_their_own_results():
    gate, started, calls = threading.Event(), threading.Event(), []

    def run(items):
        calls.append(list(items))
        if len(calls) == 1:
            started.set()
            gate.wait(5)  # hold the first batch so the others queue up behind it
        return [item * 10 for item in items]

    batcher = MicroBatcher(run, window_s=0.0)
    first = batcher.submit(1)
    assert started.wait(5)
    rest = [batcher.submit(k) for k in range(2, 7)]
    gate.set()
    assert first.result(5) == 10
    assert [f.result(5) for f in rest] == [20, 30, 40, 50, 60]
    assert calls == [[1], [2, 3, 4, 5, 6]]
    batcher.close()


def test_a_lone_request_runs_at_once_in_a_batch_of_one():
    batcher = MicroBatcher(lambda items: [len(items)] * len(items), window_s=1.0)
    assert batcher.submit("photo").result(0.5) == 1  # the 1 s window is not waited: nothing else is queued
    batcher.close()


def test_one_failing_photo_fails_only_its_own_request():
    def run(items):
        if "bad" in items:
            raise ValueError("cannot read bad")
        return [item.upper() for item in items]

    batcher = MicroBatcher(run, window_s=0.05)
    with ThreadPoolExecutor(4) as pool:
        futures = list(pool.map(batcher.submit, ["a", "bad", "c", "d"]))
    assert [f.result(5) for f in futures if f is not futures[1]] == ["A", "C", "D"]
    with pytest.raises(ValueError, match="cannot read bad"):
        futures[1].result(5)
    batcher.close()


def test_the_server_answers_concurrent_uploads_each_with_its_own_photo(client_factory):
    """The first batch is held for a second, so the other uploads queue up and go through the model together."""
    import time

    from tests.test_serve import NoFaces

    class HeldFirst(NoFaces):
        held = False

        def detect(self, images):
            if not HeldFirst.held:
                HeldFirst.held = True
                time.sleep(1.0)
            return super().detect(images)

    client, app = client_factory(HeldFirst())
    sizes = [(100 + 20 * k, 140 + 10 * k) for k in range(8)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda s: client.post("/predict", files={"file": ("p.jpg", _jpeg(s))}).json(), sizes))
    assert [(a["width"], a["height"]) for a in answers] == sizes
    assert all(len(a["faces"]) == 1 for a in answers)
    assert sum(app.state.batcher.batch_sizes) == 8 and max(app.state.batcher.batch_sizes) > 1


def _jpeg(size) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", size, (150, 120, 100)).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def client_factory(trained_run):
    pytest.importorskip("fastapi", reason="serving needs pip install 'faceattr[serve]'")
    from fastapi.testclient import TestClient

    from faceattr.inference.checkpoint_predictor import Predictor
    from faceattr.serve.app import create_app
    from tests.test_serve import NoFaces

    def make(detector=None):
        app = create_app(Predictor(trained_run.best_checkpoint), detector=detector or NoFaces())
        return TestClient(app), app

    return make


def test_the_json_of_a_face_carries_the_fields_of_its_predict_csv_row(client_factory, trained_run, tmp_path):
    """`flat_row(face)` of the server's answer is the row `faceattr predict` writes for the same photo."""
    from PIL import Image

    from faceattr.inference.faces_in_photos import flat_row, predict_faces
    from faceattr.inference.load import load_predictor
    from tests.test_serve import NoFaces

    photo = tmp_path / "p.jpg"  # textured and larger than a face crop, so the framed crop is a part of it
    noise = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    Image.fromarray(noise).save(photo, quality=95)
    client, _ = client_factory()
    face = client.post("/predict", files={"file": ("p.jpg", photo.read_bytes())}).json()["faces"][0]
    predictor = load_predictor(trained_run.best_checkpoint)
    row = predict_faces(predictor, [str(photo)], NoFaces()).iloc[0].to_dict()
    served = flat_row(str(photo), face)
    assert set(served) == set(row)
    for key, value in row.items():
        assert served[key] == value or (value != value and served[key] != served[key]), key  # NaN == NaN
    # and not only the same function twice: the model itself, on the crop the served box names, gives those answers
    from faceattr.data.images import load_rgb

    x1, y1, x2, y2 = face["box"]
    direct = predictor.predict_crops([load_rgb(photo)[y1:y2, x1:x2]])
    for task, probabilities in direct.items():
        if task in face:
            assert face[task]["probs"] == pytest.approx(probabilities[0].tolist(), abs=1e-4), task
            assert face[task]["label"] == int(np.argmax(probabilities[0])) or task == "age_bin", task
