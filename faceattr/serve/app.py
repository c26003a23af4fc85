"""`faceattr serve`: POST /predict (an image upload -> every face with its labels), GET / (a page for people),
GET /health, GET /model.

The model loads once; endpoints are plain `def`, so FastAPI runs them in its thread pool, off the event loop.
Uploads are decoded from memory and never written to disk. Bad requests get a 4xx with a reason.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse

from faceattr.data.images import decode_rgb
from faceattr.errors import ImageLoadError
from faceattr.inference.in_the_wild import predict_faces_in_image
from faceattr.inference.predictor import BasePredictor

PAGE = Path(__file__).with_name("page.html")
BAD_IMAGE_STATUS = {"too_many_pixels": 413}


def training_metrics(predictor: BasePredictor) -> dict:
    """The run's train_summary.json when the checkpoint still sits in its run folder."""
    summary = Path(predictor.source).parent.parent / "train_summary.json"
    if summary.is_file():
        data = json.loads(summary.read_text())
        return {"best_score": data.get("best_score"), "monitor": data.get("monitor"), **data.get("last_metrics", {})}
    return {}


def create_app(
    predictor: BasePredictor,
    detector=None,
    max_upload_bytes: int = 10 * 1024 * 1024,
    max_pixels: int = 40_000_000,
) -> FastAPI:
    """The FastAPI app around one loaded model (and one face detector, made here unless given)."""
    if detector is None:
        from faceattr.faces.detect import FaceDetector

        detector = FaceDetector(predictor.cfg.faces)
    app = FastAPI(title="faceattr", description="mask, gender and age from a photo")
    lock = threading.Lock()  # one inference at a time: the model and MTCNN are shared
    model_info = {**predictor.describe(), "training_metrics": training_metrics(predictor)}

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
        with lock:
            faces = predict_faces_in_image(predictor, image, detector)
        return {"width": int(image.shape[1]), "height": int(image.shape[0]), "faces": faces}

    return app
