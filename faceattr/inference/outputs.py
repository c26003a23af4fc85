"""Prediction tables: the predictions CSV and the competition submission."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.atomic import refuse_to_replace, write_csv
from faceattr.data.images import SkipReport, fresh_skip_file, readable_path
from faceattr.data.text_tables import read_text_table
from faceattr.errors import DatasetError, FaceAttrError
from faceattr.inference.predictor import BasePredictor, Predictions
from faceattr.labels import CLASS_NAMES as NAMES
from faceattr.labels import CLASSIFICATION_TASKS


def predictions_table(preds: Predictions) -> pd.DataFrame:
    """One row per image: path, labels (index and name), label18, and every class probability."""
    table = pd.DataFrame({"path": [readable_path(p) for p in preds.paths]})
    labels = preds.labels()
    for task, values in labels.items():
        table[task] = np.round(values, 1) if task == "age_years" else values
        if task in NAMES:
            table[f"{task}_name"] = [NAMES[task][v] for v in values]
    for task, p in preds.probs.items():
        if task == "age":
            continue  # 101 columns would bury the table; age_years is their expectation
        for c in range(p.shape[1]):
            table[f"p_{task}_{c}"] = np.round(p[:, c], 5)
    return table


def video_outputs(out: Path) -> tuple[Path, Path]:
    """Where `predict` writes what it finds in videos, beside `out`: a row per frame and face, a row per track."""
    return out.with_name(out.stem + ".frames.csv"), out.with_name(out.stem + ".tracks.csv")


def fresh_skip_report(out: Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> SkipReport:
    """The skipped-images report of output `out`: `<out stem>.skipped.csv`, named after its output so no other file
    (a training run's own skipped.csv, say) is touched. An `out` that is one of the command's `inputs` is refused even
    with `overwrite`, an existing one without it, and so is a file at the report's name that is not a report of
    ours (`fresh_skip_file`)."""
    inputs = list(inputs)
    refuse_to_replace([out, *video_outputs(out)], overwrite, inputs)
    return SkipReport(fresh_skip_file(out, overwrite, inputs))


def eval_image_paths(eval_dir: Path, image_ids: pd.Series) -> list[str]:
    """Each ImageID as a path under eval/images/; an ID that leads outside it (`../x.jpg`, an absolute path) is
    refused, so a crafted info.csv cannot make submit read other files."""
    images = (eval_dir / "images").resolve()
    paths, outside = [], []
    for name in image_ids.astype(str):
        path = eval_dir / "images" / name
        if not path.resolve().is_relative_to(images):
            outside.append(name)
        paths.append(str(path))
    if outside:
        raise DatasetError(
            f"{eval_dir / 'info.csv'}: {len(outside)} ImageID(s) lead outside {eval_dir / 'images'} "
            f"(first: {outside[0]!r}); an ImageID is a file name inside images/"
        )
    return paths


def submission(
    predictor: BasePredictor,
    eval_dir: str | Path,
    out: str | Path,
    batch_size: int = 64,
    crop_faces: bool | None = None,
    overwrite: bool = False,
    fill_missing: bool = False,
) -> tuple[pd.DataFrame, int]:
    """Fill the `ans` column of eval/info.csv with 18-class codes, written to `out` (info.csv is not touched; an
    existing `out` is replaced only with `overwrite`). Returns the table and how many rows had no prediction.

    With crop_faces (default: whether the model trained on `faceattr crop` crops) each photo is cropped around
    its largest face, as the training images were.

    A test image that is missing or unreadable is listed in `<out>.skipped.csv`, and the submission is refused
    (nothing written) unless `fill_missing`: then its row gets the most frequent predicted class, so the file keeps
    the competition's row count, and the count is returned for the caller to say.
    """
    eval_dir = Path(eval_dir)
    info_path = eval_dir / "info.csv"
    if not info_path.is_file():
        raise DatasetError(f"{info_path}: not found; pass the competition's eval/ folder (info.csv + images/)")
    info = read_text_table(info_path)
    if "ImageID" not in info.columns:
        raise DatasetError(f"{info_path}: no 'ImageID' column (found {', '.join(info.columns)})")
    out = Path(out)
    paths = eval_image_paths(eval_dir, info["ImageID"])
    skips = fresh_skip_report(out, overwrite, inputs=[info_path, predictor.source, *paths])
    if not all(t in predictor.tasks for t in CLASSIFICATION_TASKS):
        raise DatasetError("the checkpoint lacks one of the mask, gender and age_bin heads; it cannot fill 18 classes")
    if crop_faces if crop_faces is not None else predictor.cfg.faces.trained_on_crops:
        from faceattr.inference.faces_in_photos import predict_faces

        faces = predict_faces(predictor, paths, predictor.face_detector(), skips)
        largest = faces[faces["face"] == 0] if len(faces) else faces
        by_path = dict(zip(largest["path"], largest["label18"], strict=True)) if len(largest) else {}
    else:
        preds = predictor.predict_paths(paths, batch_size=batch_size, skips=skips)
        by_path = dict(zip(preds.paths, preds.labels()["label18"], strict=True))
    missing = [p for p in paths if p not in by_path]
    if missing and not fill_missing:
        raise FaceAttrError(
            f"{len(missing)} of {len(paths)} test image(s) could not be predicted (first: {missing[0]}; reasons in "
            f"{skips.csv_path}); no submission written. Fix those files, or pass --fill-missing to give them the "
            "most frequent predicted class"
        )
    codes = np.array(list(by_path.values()), dtype=np.int64)
    fallback = int(np.bincount(codes, minlength=18).argmax()) if len(codes) else 0
    info["ans"] = [int(by_path.get(p, fallback)) for p in paths]
    write_csv(info, out)
    return info, len(missing)
