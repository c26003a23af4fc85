"""`faceattr serve`: POST /predict (an image upload -> every face with its labels), GET / (a page for people),
GET /health, GET /model.

The model loads once; endpoints are plain `def`, so FastAPI runs them in its thread pool, off the event loop, and
photos of concurrent requests are detected and classified together by one worker (`serve/batching.py`).
Uploads are bounded before they are stored (`UploadLimits`), decoded from memory, and never kept. Bad requests
get a 4xx with a reason; a full server a 503.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import NoReturn

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse

from faceattr.data.images import decode_rgb
from faceattr.errors import ImageLoadError
from faceattr.inference.faces_in_photos import predict_faces_in_images
from faceattr.inference.predictor import BasePredictor
from faceattr.serve.batching import MicroBatcher

PAGE = Path(__file__).with_name("page.html")
MAX_UPLOAD_PIXELS = 40_000_000  # stricter than faces.max_pixels: uploads come from strangers
MAX_FACES = 100  # faces classified per uploaded photo, the largest: a crowd costs no more than this
BAD_IMAGE_STATUS = {"too_many_pixels": 413}


def training_metrics(predictor: BasePredictor) -> dict:
    """The run's train_summary.json when the checkpoint still sits in its run folder."""
    summary = Path(predictor.source).parent.parent / "train_summary.json"
    if summary.is_file():
        data = json.loads(summary.read_text())
        return {"best_score": data.get("best_score"), "monitor": data.get("monitor"), **data.get("last_metrics", {})}
    return {}


class _Refused(Exception):
    """Raised inside the app's reads of the body: the middleware answers `status` with `detail` instead."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class UploadLimits:
    """ASGI middleware in front of every POST, so a stranger's upload costs bounded memory, time and slots:
    - a body declared over the limit is refused from its Content-Length before a byte is read; a chunked body is
      counted as it streams in and cut off at the limit (plus at most the chunk that crossed it), so nothing over
      the limit is ever spooled to disk;
    - a body that stalls (no bytes for `body_timeout_s`) or takes longer than `upload_time_s` in all is dropped
      with a 408, so slow clients cannot hold the server;
    - at most `max_receiving` uploads stream in at once, and at most `max_in_flight` complete requests are inside
      the app; others get a 503 at once instead of queueing without bound. Uploads still arriving do not count
      against the second limit, so held connections never lock real requests out."""

    def __init__(
        self,
        app,
        max_body: int,
        max_in_flight: int,
        max_receiving: int = 128,
        body_timeout_s: float = 10.0,
        upload_time_s: float = 60.0,
    ) -> None:
        self.app, self.max_body, self.max_in_flight, self.max_receiving = app, max_body, max_in_flight, max_receiving
        self.body_timeout_s, self.upload_time_s = body_timeout_s, upload_time_s
        self.in_flight = self.receiving = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal_at_the_door(scope)
        if refusal is not None:
            await _refuse(send, *refusal)
            return
        upload = _Upload(self, receive, send)
        try:
            await self.app(scope, upload.receive, upload.send)
        except _Refused as e:
            await upload.answer(e)
        finally:
            upload.release()

    def _refusal_at_the_door(self, scope) -> tuple[int, str] | None:
        """A body declared over the limit, or a full server: refused before a byte is read."""
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            return self.too_large()
        if self.receiving >= self.max_receiving or self.in_flight >= self.max_in_flight:
            return self.busy(max(self.receiving, self.in_flight))
        return None

    def too_large(self) -> tuple[int, str]:
        return 413, f"upload over the limit of {self.max_body} bytes"

    @staticmethod
    def busy(requests: int) -> tuple[int, str]:
        return 503, f"busy: {requests} requests in flight; try again in a moment"


class _Upload:
    """One POST as the app sees it: its body counted as it streams in (size, stall, total time), the request
    counted in flight once the body is whole, and a refusal mid-way answered in place of whatever the app sends."""

    def __init__(self, limits: UploadLimits, receive, send) -> None:
        self.limits, self._receive, self._send = limits, receive, send
        self.received, self.refused, self.answered = 0, None, False
        self.receiving, self.counted = True, False
        self.deadline = asyncio.get_running_loop().time() + limits.upload_time_s
        limits.receiving += 1

    def _stop(self, status: int, detail: str) -> NoReturn:
        """Stop the app mid-body; `send` then answers with this refusal in place of whatever the app says."""
        self.refused = _Refused(status, detail)
        raise self.refused from None

    async def receive(self):
        if not self.receiving:
            return await self._receive()  # after the body: a disconnect notice, say
        limits = self.limits
        wait = min(limits.body_timeout_s, self.deadline - asyncio.get_running_loop().time())
        try:
            message = await asyncio.wait_for(self._receive(), max(wait, 0.001))
        except TimeoutError:
            stalled = f"no data for {limits.body_timeout_s:g} s or not complete in {limits.upload_time_s:g} s"
            self._stop(408, f"upload stalled: {stalled}")
        self.received += len(message.get("body", b""))
        if self.received > limits.max_body:
            self._stop(*limits.too_large())
        if message["type"] != "http.request" or not message.get("more_body", False):
            self._body_done()
            if message["type"] == "http.request":
                if limits.in_flight >= limits.max_in_flight:
                    self._stop(*limits.busy(limits.in_flight))
                limits.in_flight += 1
                self.counted = True
        return message

    async def send(self, message) -> None:
        if self.refused is None:
            await self._send(message)
        elif message["type"] == "http.response.start":  # the app's "cannot parse" -> ours
            await self.answer(self.refused)

    async def answer(self, refused: _Refused) -> None:
        if not self.answered:
            self.answered = True
            await _refuse(self._send, refused.status, refused.detail)

    def _body_done(self) -> None:
        if self.receiving:
            self.receiving = False
            self.limits.receiving -= 1

    def release(self) -> None:
        self._body_done()
        if self.counted:
            self.limits.in_flight -= 1


async def _refuse(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def create_app(
    predictor: BasePredictor,
    detector=None,
    max_upload_bytes: int = 10 * 1024 * 1024,
    max_pixels: int | None = None,
    max_faces: int | None = None,
    max_in_flight: int = 32,
    batch_window_ms: float = 5.0,
    body_timeout_s: float = 10.0,
) -> FastAPI:
    """The FastAPI app around one loaded model (and one face detector, made here unless given); `max_pixels`
    defaults to MAX_UPLOAD_PIXELS; the `max_faces` (default MAX_FACES) largest faces of a photo are classified, so a
    crowd costs no more than that; an upload that sends nothing for `body_timeout_s` is dropped (408)."""
    max_pixels = MAX_UPLOAD_PIXELS if max_pixels is None else max_pixels
    max_faces = MAX_FACES if max_faces is None else max_faces
    if detector is None:
        detector = predictor.face_detector()
    app = FastAPI(title="faceattr", description="mask, gender and age from a photo")
    # one worker owns the model and the face detector; concurrent requests' photos go through them together
    batcher = MicroBatcher(
        lambda images: predict_faces_in_images(predictor, images, detector, max_faces),
        window_s=batch_window_ms / 1000,
    )
    model_info = {
        **predictor.describe(),
        "source": Path(predictor.source).name,  # never the server's absolute paths
        "training_metrics": training_metrics(predictor),
    }
    # multipart framing around the file adds a little; the limit applies to the whole body
    app.add_middleware(
        UploadLimits,
        max_body=max_upload_bytes + 64 * 1024,
        max_in_flight=max_in_flight,
        max_receiving=4 * max_in_flight,
        body_timeout_s=body_timeout_s,
    )

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/model")
    def model() -> dict:
        return model_info

    @app.post("/predict")
    def predict(request: Request, file: UploadFile = File(...)) -> dict:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_upload_bytes + 64 * 1024:
            raise HTTPException(413, f"upload over the limit of {max_upload_bytes} bytes")
        data = file.file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise HTTPException(413, f"upload over the limit of {max_upload_bytes} bytes")
        if not data:
            raise HTTPException(400, "empty upload: send an image file in the 'file' field")
        try:
            image = decode_rgb(data, "upload", max_pixels)
        except ImageLoadError as e:
            status = BAD_IMAGE_STATUS.get(e.reason, 400)
            raise HTTPException(status, f"{e.reason.replace('_', ' ')}: {e.detail or 'cannot decode'}") from None
        faces, left_out = batcher.submit(image).result()
        return {"width": int(image.shape[1]), "height": int(image.shape[0]), "faces": faces, "faces_left_out": left_out}

    app.state.batcher = batcher
    app.router.on_shutdown.append(batcher.close)
    return app
