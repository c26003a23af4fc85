"""Serving: the HTTP API and its bad requests, the page in a real browser, ONNX export and parity."""

import io
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi", reason="serving needs pip install 'faceattr[serve]'")
from fastapi.testclient import TestClient

from faceattr.config import FacesConfig
from faceattr.faces.detect import FaceDetector
from faceattr.faces.detectors import Face
from faceattr.inference.checkpoint_predictor import Predictor
from faceattr.serve.app import create_app
from tests.conftest import public_face, served_on_loopback


class NoFaces(FaceDetector):
    """A detector stand-in that finds nothing, so the server takes its fallback crop (fast, deterministic)."""

    calls = 0

    def __init__(self) -> None:
        self.cfg = FacesConfig(second_pass=False, whole_image_max_side=0)

    def detect(self, images):
        return [[] for _ in images]


class ACrowd(NoFaces):
    """A detector stand-in that finds 30 faces in every photo, largest first, as the real detectors give them."""

    def detect(self, images):
        return [
            [Face((0, 0, 60.0 - k, 60.0 - k), 0.9, np.zeros((5, 2), np.float32)) for k in range(30)] for _ in images
        ]


def _jpeg(size=(120, 160), color=(150, 120, 100)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(trained_run):
    app = create_app(
        Predictor(trained_run.best_checkpoint), detector=NoFaces(), max_upload_bytes=200_000, max_pixels=1_000_000
    )
    return TestClient(app)


def test_health_and_model(client):
    assert client.get("/health").json() == {"status": "ok"}
    model = client.get("/model").json()
    assert model["backbone"] == "test_efficientnet" and model["heads"] == ["mask", "gender", "age_bin"]
    assert model["classes"]["mask"] == ["wear", "incorrect", "not_wear"]
    assert "val/f1_18" in model["training_metrics"]
    assert set(model["class_shares"]["trained"]) == {"mask", "gender", "age_bin"}  # what predictions could move from


def test_page_has_the_upload_form(client):
    page = client.get("/")
    assert page.status_code == 200 and 'type="file"' in page.text and "predict" in page.text
    # a guessed face is worded by the server (Found.guess), not by a copy of the words in the page
    assert ".guess" in page.text and "centre crop" not in page.text


def test_predict_returns_every_face_with_labels_and_probabilities(client):
    response = client.post("/predict", files={"file": ("photo.jpg", _jpeg(), "image/jpeg")})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["width"], body["height"]) == (120, 160) and len(body["faces"]) == 1 and body["faces_left_out"] == 0
    face = body["faces"][0]
    assert face["face_found"] is False and face["detection"] == "none" and len(face["box"]) == 4
    assert face["guess"] == "no face found, centre crop"  # the words the page shows beside the count
    for task, n in (("mask", 3), ("gender", 2), ("age_bin", 3)):
        assert len(face[task]["probs"]) == n and abs(sum(face[task]["probs"]) - 1) < 1e-3
    assert face["label18"] == face["mask"]["label"] * 6 + face["gender"]["label"] * 3 + face["age_bin"]["label"]


def test_a_crowd_costs_no_more_than_max_faces_and_the_rest_are_counted(trained_run):
    app = create_app(Predictor(trained_run.best_checkpoint), detector=ACrowd(), max_faces=4)
    body = TestClient(app).post("/predict", files={"file": ("crowd.jpg", _jpeg(), "image/jpeg")}).json()
    assert len(body["faces"]) == 4 and body["faces_left_out"] == 26
    assert [face["face_box"][2] for face in body["faces"]] == [60.0, 59.0, 58.0, 57.0]  # the largest kept


@pytest.mark.parametrize(
    "payload, status, words",
    [
        (b"just some text", 400, "not an image"),
        (_jpeg()[:400], 400, "truncated"),
        (_jpeg()[:30] + b"\x00" * 500, 400, "not an image"),
        (b"", 400, "empty"),
        (b"\xff" * 250_000, 413, "limit"),
        (_jpeg(size=(1200, 1000)), 413, "pixels"),
    ],
    ids=["not-an-image", "truncated", "header-then-zeros", "empty", "too-big", "too-many-pixels"],
)
def test_bad_requests_get_a_clear_4xx_and_the_server_keeps_serving(client, payload, status, words, tmp_path):
    import tempfile

    def named_evil() -> list[Path]:  # the upload's own name, wherever a careless server would have stored it
        return [*Path.cwd().glob("**/evil*.jpg"), *Path(tempfile.gettempdir()).glob("evil*.jpg")]

    before = named_evil()
    response = client.post("/predict", files={"file": ("../../etc/evil.jpg", payload, "image/jpeg")})
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]
    assert client.post("/predict", files={"file": ("ok.jpg", _jpeg(), "image/jpeg")}).status_code == 200
    assert named_evil() == before  # uploads are decoded from memory and never stored under their name


def test_missing_file_field_is_422(client):
    assert client.post("/predict").status_code == 422


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="needs pip install 'faceattr[serve]'")
    from faceattr.inference.export import export_onnx
    from faceattr.models.checkpoints import read_checkpoint

    # a model framed on MTCNN's box (as every model was before CenterFace became the default): MTCNN's networks
    # travel with it
    folder = tmp_path_factory.mktemp("onnx")
    ckpt = read_checkpoint(trained_run.best_checkpoint)
    ckpt["hyper_parameters"]["config"]["faces"]["detector"] = "auto"
    torch.save(ckpt, folder / "mtcnn.ckpt")
    return export_onnx(folder / "mtcnn.ckpt", folder / "model.onnx")


def test_onnx_matches_torch_within_1e4_on_a_batch(trained_run, exported):
    from faceattr.inference.onnx_predictor import OnnxPredictor

    model_path, sidecar = exported
    meta = json.loads(sidecar.read_text())
    assert meta["input_size"] == 64 and meta["heads"] == ["mask", "gender", "age_bin"] and meta["mean"]
    assert sorted(p.name for p in (model_path.parent / meta["detector"]).iterdir()) == [
        "onet.onnx",
        "pnet.onnx",
        "rnet.onnx",
    ]  # MTCNN's networks travel with the model
    assert OnnxPredictor(model_path).detector_dir == model_path.parent / "model.mtcnn"
    torch_model, onnx_model = Predictor(trained_run.best_checkpoint, "cpu"), OnnxPredictor(model_path)
    batch = np.random.default_rng(0).normal(size=(5, 3, 64, 64)).astype(np.float32)  # dynamic batch axis
    expected, got = torch_model.predict_array(batch), onnx_model.predict_array(batch)
    for task in expected:
        np.testing.assert_allclose(got[task], expected[task], atol=1e-4)


def test_predict_command_runs_the_onnx_model(exported, trained_run, competition_root, tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    images = competition_root / "eval" / "images"
    out_onnx, out_torch = tmp_path / "onnx.csv", tmp_path / "torch.csv"
    r1 = CliRunner().invoke(app, ["predict", "--onnx", str(exported[0]), str(images), "--out", str(out_onnx)])
    r2 = CliRunner().invoke(app, ["predict", str(trained_run.best_checkpoint), str(images), "--out", str(out_torch)])
    assert r1.exit_code == 0 and r2.exit_code == 0, r1.output + r2.output
    a, b = pd.read_csv(out_onnx), pd.read_csv(out_torch)
    assert (a["label18"] == b["label18"]).all()
    np.testing.assert_allclose(a["p_mask_0"], b["p_mask_0"], atol=1e-4)


def _chromium() -> tuple[str, str] | None:
    """Chromium and its driver, when the developer set them up (README: "Browser test", a dev step)."""
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_browser_uploads_a_photo_and_sees_the_labels(trained_run, tmp_path):
    pytest.importorskip("selenium", reason="needs pip install selenium")
    found = _chromium()
    if found is None:
        pytest.skip("no chromium + chromedriver on PATH: apt-get install chromium chromium-driver (README dev step)")
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port = _free_port()
    predictor = Predictor(trained_run.best_checkpoint)
    app = create_app(predictor, detector=predictor.face_detector())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    photo = tmp_path / "photo.jpg"
    canvas = Image.new("RGB", (384, 512), (90, 110, 140))
    canvas.paste(public_face(), (92, 120))
    canvas.save(photo)
    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(found[1]), options=options)
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.1)
        driver.get(f"http://127.0.0.1:{port}/")
        driver.find_element(By.ID, "file").send_keys(str(photo))
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "table.face .labels"))
        labels = driver.find_element(By.CSS_SELECTOR, "table.face .labels").text
        assert any(name in labels for name in ("wear", "incorrect", "not_wear"))
        assert any(name in labels for name in ("male", "female"))
        assert "face(s)" in driver.find_element(By.ID, "status").text
        shot = Path(__file__).parent / "artifacts"
        shot.mkdir(exist_ok=True)
        driver.save_screenshot(str(shot / "serve_page.png"))
        driver.save_screenshot(str(tmp_path / "serve_page.png"))
        assert (tmp_path / "serve_page.png").stat().st_size > 5000
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(trained_run):
    """A real uvicorn on loopback (TestClient would buffer the whole body before the app sees it)."""
    pytest.importorskip("uvicorn", reason="serving needs pip install 'faceattr[serve]'")
    app = create_app(Predictor(trained_run.best_checkpoint), detector=NoFaces(), max_upload_bytes=1_000_000)
    with served_on_loopback(app) as port:
        yield port, app


def _chunked_upload(port: int, chunks: int, chunk: bytes) -> tuple[int, int]:
    """POST a multipart body in chunked transfer encoding; returns (status, bytes sent before the answer)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    head = b'--B\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    conn.putrequest("POST", "/predict")
    conn.putheader("Content-Type", "multipart/form-data; boundary=B")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    sent = 0
    try:
        for i in range(chunks):
            part = head + chunk if i == 0 else chunk
            conn.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            sent += len(part)
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed: it stopped reading
    status = conn.getresponse().status
    conn.close()
    return status, sent


def test_a_large_chunked_upload_is_cut_off_at_the_limit(live_server):
    """200 MB offered in 64 KiB chunks: refused with 413 once the limit (+64 KiB framing) plus one chunk is read."""
    port, _ = live_server
    status, sent = _chunked_upload(port, chunks=3200, chunk=b"\xff" * 65536)
    assert status == 413
    assert sent < 200 * 1024 * 1024  # the client was stopped long before sending it all


def test_declared_oversize_is_refused_before_reading_and_model_hides_paths(live_server):
    import http.client

    port, _ = live_server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/predict")
    conn.putheader("Content-Type", "multipart/form-data; boundary=B")
    conn.putheader("Content-Length", str(500 * 1024 * 1024))
    conn.endheaders()  # no body at all: the answer must come from the header alone
    assert conn.getresponse().status == 413
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/model")
    info = json.loads(conn.getresponse().read())
    assert not str(info["source"]).startswith("/") and "/" not in str(info["source"])


def test_requests_beyond_the_in_flight_bound_get_503():
    import asyncio

    from faceattr.serve.app import UploadLimits

    async def slow_app(scope, receive, send):
        await receive()  # the body first, as FastAPI reads it before the endpoint runs
        await asyncio.sleep(0.2)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limits = UploadLimits(slow_app, max_body=1000, max_in_flight=2)
    statuses = []

    async def call():
        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await limits({"type": "http", "method": "POST", "headers": []}, receive, send)

    async def main():
        await asyncio.gather(*(call() for _ in range(5)))

    asyncio.run(main())
    assert sorted(statuses) == [200, 200, 503, 503, 503]
