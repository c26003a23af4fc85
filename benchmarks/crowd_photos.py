"""Mask models on whole crowd photos, as `faceattr predict PHOTOS --faces` runs them: find every face, crop it the
model's way, label it; then scored against the boxed faces.

`benchmarks.real_masks --crowd` scores a model on faces cropped from their annotated boxes, which tells the model
apart from the detector. What a user gets is both at once: a face the detector misses has no label, and a face it
frames differently is cropped differently. Here each boxed face of masks-crowd (`../shared/data/masks-crowd`,
halves by a hash of the photo's name, as everywhere) is matched to the face the detector found over it (IoU >= 0.4,
greedy by detection score, `benchmarks.detection.match`), and per model and half, for faces >= 32 px wide:

- `found`: the share of boxed faces the detector found (the model's config picks the detector, as predict does);
- `macro_f1_3class`, `recall_incorrect`: the three classes on the faces found;
- `found_and_right`: the share of all boxed faces found and labelled right, and per class (`.._worn` etc.): what
  a user counting masks in a crowd gets;
- `other_faces_per_photo`: detections over no boxed face (some faces in these photos are not boxed, so an upper
  bound on false ones) and `s_per_photo`, detection and model together on this machine.

    python -m benchmarks.crowd_photos --checkpoint runs/mask_drawn/checkpoints/best.ckpt \
        --checkpoint runs/mask_real/checkpoints/best.ckpt [--half test] [--limit 100]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from benchmarks.common import save
from benchmarks.detection import CLASSES, CROWD, match_pairs
from benchmarks.real_masks import model_name
from faceattr.data.sources.boxes import photo_half
from faceattr.inference.faces_in_photos import FACE_BOX_COLUMNS, predict_faces
from faceattr.inference.load import load_predictor

MASK_CLASSES = {name: label for label, name in enumerate(CLASSES)}  # faces.csv's names -> the mask labels
MIN_WIDTH = 32
IOU = 0.4  # the first measurement of the detector; annotated boxes are drawn looser or tighter than any
# detector's
COLUMNS = [
    "model",
    "half",
    "photos",
    "faces",
    "found",
    "macro_f1_3class",
    "recall_incorrect",
    "found_and_right",
    "found_and_right_worn",
    "found_and_right_incorrect",
    "found_and_right_not_worn",
    "other_faces_per_photo",
    "s_per_photo",
]


def boxed_faces(half: str, limit: int = 0) -> pd.DataFrame:
    """masks-crowd's boxed faces of one half (`limit`: its first photos by name), a mask label each."""
    faces = pd.read_csv(CROWD / "faces.csv")
    faces = faces[faces["photo"].map(photo_half) == half]
    if limit:
        faces = faces[faces["photo"].isin(sorted(faces["photo"].unique())[:limit])]
    return faces.assign(label=faces["mask"].map(MASK_CLASSES))


def label_photos(checkpoint: Path, faces: pd.DataFrame) -> tuple[pd.DataFrame, int, float]:
    """Every boxed face with `predicted` (-1: not found); the detections over no boxed face; seconds per photo.
    The photos go through `predict_faces`, what `faceattr predict --faces` runs, whose rows carry each face's
    detector box."""
    predictor = load_predictor(checkpoint)
    photos = sorted(faces["photo"].unique())
    start = time.perf_counter()
    rows = predict_faces(predictor, [str(CROWD / name) for name in photos], predictor.face_detector())
    seconds = (time.perf_counter() - start) / len(photos)
    rows = rows[rows["face_found"]]  # a photo where no face was found gets one fallback crop: no boxed face
    detections = dict(tuple(rows.groupby(rows["path"].map(lambda p: Path(p).name))))
    scored, others = [], 0
    for name in photos:
        truth = faces[faces["photo"] == name]
        found = detections.get(Path(name).name, rows.iloc[:0])
        detected = list(zip(found[list(FACE_BOX_COLUMNS)].to_numpy(np.float32), found["face_score"], strict=True))
        pairs = match_pairs(truth[["x1", "y1", "x2", "y2"]].to_numpy(np.float32), detected, IOU)
        predicted = np.full(len(truth), -1)
        for k, j in enumerate(pairs):
            if j >= 0:
                predicted[j] = found["mask"].iloc[k]
        others += pairs.count(-1)
        scored.append(truth.assign(predicted=predicted))
    return pd.concat(scored), others, seconds


def summary(model: str, half: str, table: pd.DataFrame, others: int, seconds: float) -> dict:
    """The row of one model on one half (faces >= MIN_WIDTH px)."""
    photos = table["photo"].nunique()
    table = table[(table["x2"] - table["x1"]) >= MIN_WIDTH]
    found = table[table["predicted"] >= 0]
    right = table["predicted"] == table["label"]
    row = {
        "model": model,
        "half": half,
        "photos": photos,
        "faces": len(table),
        "found": round(float(len(found) / len(table)), 3),
        "macro_f1_3class": round(float(f1_score(found["label"], found["predicted"], average="macro")), 4),
        "recall_incorrect": round(float((found.loc[found["label"] == 1, "predicted"] == 1).mean()), 3),
        "found_and_right": round(float(right.mean()), 3),
        **{f"found_and_right_{c}": round(float(right[table["label"] == k].mean()), 3) for c, k in MASK_CLASSES.items()},
        "other_faces_per_photo": round(others / photos, 2),
        "s_per_photo": round(seconds, 2),
    }
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, action="append", required=True, help="a mask model (repeat)")
    parser.add_argument("--half", default="test", help="test, dev, or both (dev,test)")
    parser.add_argument("--limit", type=int, default=0, help="photos per half (0: all)")
    parser.add_argument("--name", default="crowd_photos")
    args = parser.parse_args()
    rows = []
    for half in args.half.split(","):
        faces = boxed_faces(half, args.limit)
        for checkpoint in args.checkpoint:
            table, others, seconds = label_photos(checkpoint, faces)
            rows.append(summary(model_name(checkpoint), half, table, others, seconds))
    settings = {"data": "shared/data/masks-crowd, halves by photo name", "iou": IOU, "min_width": MIN_WIDTH}
    save(args.name, rows, COLUMNS, {**settings, "limit": args.limit})


if __name__ == "__main__":
    main()
