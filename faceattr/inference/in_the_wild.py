"""Prediction on arbitrary photos: find every face, crop it like the training crops, classify each one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw

from faceattr.data.images import SkipReport, load_rgb
from faceattr.errors import ImageLoadError
from faceattr.faces.detect import FaceDetector, crop_face
from faceattr.inference.outputs import NAMES
from faceattr.inference.predictor import Predictor
from faceattr.labels import decide


def predict_faces(
    predictor: Predictor,
    paths: list[str],
    detector: FaceDetector,
    skips: SkipReport | None = None,
    draw_dir: str | Path | None = None,
    batch_size: int = 16,
) -> pd.DataFrame:
    """One row per face (box, labels, probabilities); a photo with no face gets one fallback-crop row."""
    cfg = predictor.cfg.faces
    skips = skips if skips is not None else SkipReport()
    rows: list[dict] = []
    for start in range(0, len(paths), batch_size):
        loaded = []
        for path in paths[start : start + batch_size]:
            try:
                loaded.append((str(path), load_rgb(path, cfg.max_pixels)))
            except ImageLoadError as e:
                skips.add(e)
        if not loaded:
            continue
        found = detector.detect([image for _, image in loaded])
        for (path, image), faces in zip(loaded, found, strict=True):
            candidates = faces or [None]
            crops = [crop_face(image, face, cfg) for face in candidates]
            batch = torch.stack([predictor.transform(image=crop)["image"] for crop, _ in crops])
            probs = predictor.predict_tensor(batch)
            labels = decide(probs, predictor.cfg.data.old_threshold)
            image_rows = []
            for k, (face, (_, box)) in enumerate(zip(candidates, crops, strict=True)):
                row = {
                    "path": path,
                    "face": k,
                    "face_found": face is not None,
                    "face_score": round(face.score, 4) if face else np.nan,
                    "x1": box[0],
                    "y1": box[1],
                    "x2": box[2],
                    "y2": box[3],
                }
                for task, values in labels.items():
                    row[task] = round(float(values[k]), 1) if task == "age_years" else int(values[k])
                    if task in NAMES:
                        row[f"{task}_name"] = NAMES[task][row[task]]
                for task, p in probs.items():
                    if task != "age":
                        for c in range(p.shape[1]):
                            row[f"p_{task}_{c}"] = round(float(p[k, c]), 5)
                image_rows.append(row)
            rows += image_rows
            if draw_dir is not None:
                draw_faces(image, image_rows, Path(draw_dir) / f"{Path(path).stem}_faces.jpg")
    return pd.DataFrame(rows)


def face_caption(row: dict) -> str:
    parts = [row[f"{t}_name"] for t in ("mask", "gender", "age_bin") if f"{t}_name" in row]
    if "age_years" in row:
        parts.append(f"{row['age_years']:.0f}y")
    return "/".join(parts) + ("" if row["face_found"] else " (no face found)")


def draw_faces(image: np.ndarray, rows: list[dict], out: Path) -> Path:
    """A copy of the photo with each face's box and labels drawn on it."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    width = max(2, canvas.width // 200)
    for row in rows:
        color = (40, 200, 80) if row["face_found"] else (240, 160, 30)
        box = (row["x1"], row["y1"], row["x2"], row["y2"])
        draw.rectangle(box, outline=color, width=width)
        text = face_caption(row)
        tx, ty = box[0], max(0, box[1] - 12)
        draw.rectangle(draw.textbbox((tx, ty), text), fill=color)
        draw.text((tx, ty), text, fill=(0, 0, 0))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out, quality=92)
    return out
