"""Prediction on arbitrary photos: find every face, crop it like the training crops, classify each one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from faceattr.atomic import save_image
from faceattr.data.images import SkipReport, load_rgb, readable_path
from faceattr.errors import FaceAttrError, ImageLoadError
from faceattr.faces.detect import Face, FaceDetector, Found, face_chip
from faceattr.inference.predictor import BasePredictor, read_ahead
from faceattr.inference.profile import StageClock
from faceattr.labels import CLASS_NAMES, CLASSIFICATION_TASKS, decide


def classify_photos(
    predictor: BasePredictor,
    images: list[np.ndarray],
    found: list[tuple[list[Face], str]],
    clock: StageClock | None = None,
) -> list[list[dict]]:
    """Per photo, per face (or one fallback crop when a photo has none): box, how the face was found, labels and
    probabilities. `found` is the detector's `detect_every` answer: each photo's faces and how they were found.
    Every face of every photo goes through the model in one batch (one call per photo was a third of predict's
    time)."""
    clock = clock or StageClock()
    if not images:  # a batch of video frames without a face: nothing to classify
        return []
    candidates: list[list[Face | None]] = [list(faces) or [None] for faces, _ in found]
    with clock.stage("crop"):
        crops = [
            [face_chip(image, face, predictor.cfg.faces) for face in faces]
            for image, faces in zip(images, candidates, strict=True)
        ]
    probs = predictor.predict_crops([crop for per_photo in crops for crop, _ in per_photo], clock)
    labels = decide(probs, predictor.cfg.data.old_threshold)
    out: list[list[dict]] = []
    row = 0
    for faces, (_, how), per_photo in zip(candidates, found, crops, strict=True):
        out.append([])
        for k, (face, (_, box)) in enumerate(zip(faces, per_photo, strict=True)):
            out[-1].append(face_result(k, face, how if face else Found.NONE, box, probs, labels, row))
            row += 1
    return out


def face_result(k: int, face: Face | None, how: Found, box, probs: dict, labels: dict, row: int) -> dict:
    """Face `k` of its photo as a nested result, with how it was found; `row` indexes the batch's probabilities and
    labels."""
    result: dict = {
        "face": k,
        "box": [int(v) for v in box],
        "face_found": face is not None,
        # a whole-image guess scores 0 and looks found: this says which step of the cascade gave the face
        "detection": how,
        "guess": how.guess,  # the words a caption gives a guessed face ("" when found): the web page shows them
        "face_score": round(face.score, 4) if face else None,
        # the detector's own box (the crop box above adds the model's margins): what a user matches to their boxes
        "face_box": [round(float(v), 1) for v in face.box] if face else None,
    }
    for task in CLASSIFICATION_TASKS:
        if task in labels:
            label = int(labels[task][row])
            entry: dict = {"label": label, "name": CLASS_NAMES[task][label]}
            if task in probs:
                entry["probs"] = [round(float(v), 5) for v in probs[task][row]]
            result[task] = entry
    if "age_years" in labels:
        result["age_years"] = round(float(labels["age_years"][row]), 1)
    if "label18" in labels:
        result["label18"] = int(labels["label18"][row])
    return result


def predict_faces_in_images(
    predictor: BasePredictor, images: list[np.ndarray], detector: FaceDetector, max_faces: int = 0
) -> list[tuple[list[dict], int]]:
    """Detect and classify the faces of decoded images (the web server's batch of requests): per image, its faces'
    results and how many were left out, the detector's faces beyond the `max_faces` largest (0 = none left out)."""
    found = detector.detect_every(images)
    left_out = [max(0, len(faces) - max_faces) if max_faces else 0 for faces, _ in found]
    if max_faces:
        found = [(faces[:max_faces], how) for faces, how in found]  # detectors give the largest first
    return list(zip(classify_photos(predictor, images, found), left_out, strict=True))


FACE_BOX_COLUMNS = ("face_x1", "face_y1", "face_x2", "face_y2")  # empty for a photo's fallback crop
# a face row's leading columns (labels and probabilities follow), in the order flat_row writes them
FACE_ROW_COLUMNS = ("path", "face", "face_found", "detection", "face_score", "x1", "y1", "x2", "y2", *FACE_BOX_COLUMNS)


def flat_row(path: str, result: dict) -> dict:
    """A nested face result -> one CSV row."""
    x1, y1, x2, y2 = result["box"]
    row = {
        "path": readable_path(path),
        "face": result["face"],
        "face_found": result["face_found"],
        "detection": result["detection"],
        "face_score": result["face_score"] if result["face_score"] is not None else np.nan,
        "x1": x1,
        "y1": y1,
        "x2": x2,
        "y2": y2,
    }
    face_box = result.get("face_box") or [np.nan] * 4
    row.update(zip(FACE_BOX_COLUMNS, face_box, strict=True))
    for task in CLASSIFICATION_TASKS:
        if task in result:
            row[task] = result[task]["label"]
            row[f"{task}_name"] = result[task]["name"]
    if "age_years" in result:
        row["age_years"] = result["age_years"]
    if "label18" in result:
        row["label18"] = result["label18"]
    for task in CLASSIFICATION_TASKS:
        for c, p in enumerate(result.get(task, {}).get("probs", [])):
            row[f"p_{task}_{c}"] = p
    return row


def predict_faces(
    predictor: BasePredictor,
    paths: list[str],
    detector: FaceDetector,
    skips: SkipReport | None = None,
    draw_dir: str | Path | None = None,
    batch_size: int = 16,
    clock: StageClock | None = None,
    overlap: bool = True,
    overwrite: bool = False,
    noted: Callable[[pd.DataFrame], None] | None = None,
) -> pd.DataFrame:
    """One row per face (box, labels, probabilities); a photo with no face gets one fallback-crop row. With
    `overlap`, a background thread decodes and detects the next `batch_size` photos while the model classifies
    these (MTCNN on onnxruntime keeps to one core; the model has the other). `noted(rows)` gets each batch's rows
    as it is done (predict's journal)."""
    skips = skips if skips is not None else SkipReport()
    clock = clock or StageClock()
    rows: list[dict] = []
    resolved = [str(Path(p).resolve()) for p in paths]
    root = Path(os.path.commonpath(resolved)) if resolved else Path.cwd()
    root = root.parent if root.is_file() or root.suffix else root
    chunks = [paths[start : start + batch_size] for start in range(0, len(paths), batch_size)]
    if draw_dir is not None and not overwrite:
        existing = [d for d in (drawn_path(Path(draw_dir), p, root) for p in paths) if d.exists()]
        if existing:
            raise FaceAttrError(
                f"{existing[0]} already exists ({len(existing)} drawn copies would be replaced); pick another --draw "
                "folder or pass --overwrite"
            )

    def detected(
        chunk: list[str],
    ) -> tuple[list[tuple[str, np.ndarray]], list[ImageLoadError], list[tuple[list[Face], str]]]:
        """Decoded photos, their load errors, and every face of each with how it was found (the cascade)."""
        loaded, errors = decode_all(chunk, predictor.cfg.faces.max_pixels, clock)
        with clock.stage("detect"):
            return loaded, errors, detector.detect_every([image for _, image in loaded]) if loaded else []

    for loaded, errors, found in read_ahead(detected, chunks, 1 if overlap else 0):
        for error in errors:
            skips.add(error)
        if not loaded:
            continue
        images = [image for _, image in loaded]
        batch: list[dict] = []
        for (path, image), results in zip(loaded, classify_photos(predictor, images, found, clock), strict=True):
            batch += [flat_row(path, r) for r in results]
            if draw_dir is not None:
                draw_faces(image, results, drawn_path(Path(draw_dir), path, root))
        if noted is not None:
            noted(pd.DataFrame(batch))
        rows += batch
    return pd.DataFrame(rows)


def decode_all(
    paths: list[str], max_pixels: int, clock: StageClock
) -> tuple[list[tuple[str, np.ndarray]], list[ImageLoadError]]:
    """Decoded RGB images of `paths`, and the load errors of those that could not be read."""
    loaded, errors = [], []
    with clock.stage("decode"):
        for path in paths:
            try:
                loaded.append((str(path), load_rgb(path, max_pixels)))
            except ImageLoadError as e:
                errors.append(e)
    return loaded, errors


def drawn_path(draw_dir: Path, path: str, root: Path) -> Path:
    """Where the drawn copy of `path` goes: its folder below the inputs' common root kept, its full name kept
    (`a/x.jpg` -> `DRAW/a/x.jpg_faces.jpg`), so `a/x.jpg`, `a/x.png` and `b/x.jpg` never overwrite each other."""
    source = Path(path).resolve()
    rel = source.relative_to(root) if source.is_relative_to(root) else Path(source.name)
    return draw_dir / rel.parent / f"{rel.name}_faces.jpg"


def face_caption(result: dict) -> str:
    parts = [result[t]["name"] for t in CLASSIFICATION_TASKS if t in result]
    if "age_years" in result:
        parts.append(f"{result['age_years']:.0f}y")
    return "/".join(parts) + (f" ({result['guess']})" if result["guess"] else "")


def draw_faces(image: np.ndarray, results: list[dict], out: Path) -> Path:
    """A copy of the photo with each face's box and labels drawn on it."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    width = max(2, canvas.width // 200)
    for result in results:
        color = (40, 200, 80) if result["face_found"] else (240, 160, 30)
        box = tuple(result["box"])
        draw.rectangle(box, outline=color, width=width)
        text = face_caption(result)
        tx, ty = box[0], max(0, box[1] - 12)
        draw.rectangle(draw.textbbox((tx, ty), text), fill=color)
        draw.text((tx, ty), text, fill=(0, 0, 0))
    return save_image(canvas, out, quality=92)
