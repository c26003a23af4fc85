"""APPA-REAL: `gt_avg_{train,valid,test}.csv` (file_name, apparent_age_avg, real_age, ...) beside the image
folders `train/`, `valid/`, `test/`. The dataset's own face crops (`<file_name>_face.jpg`) are used when present.
Gender comes from `allcategories_<split>.csv` when that file is there; masks are unknown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.data.manifest import UNKNOWN, derive_labels
from faceattr.errors import DatasetError
from faceattr.labels import DEFAULT_OLD_THRESHOLD

SPLITS = ("train", "valid", "test")
COLUMNS = ("file_name", "apparent_age_avg", "real_age")


def _gender_of(root: Path, split: str) -> dict[str, int]:
    path = root / f"allcategories_{split}.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path)
    if "file" not in table or "gender" not in table:
        return {}
    words = {"male": 0, "female": 1}
    return {str(f): words.get(str(g).lower(), UNKNOWN) for f, g in zip(table["file"], table["gender"], strict=True)}


def read_appa_real(
    root: str | Path, old_threshold: int = DEFAULT_OLD_THRESHOLD, prefer_face_crops: bool = True
) -> pd.DataFrame:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found; pass the APPA-REAL root holding gt_avg_train.csv")
    frames = []
    for split in SPLITS:
        csv_path = root / f"gt_avg_{split}.csv"
        if not csv_path.is_file():
            continue
        table = pd.read_csv(csv_path)
        missing = [c for c in COLUMNS if c not in table.columns]
        if missing:
            raise DatasetError(
                f"{csv_path}: missing column(s) {', '.join(missing)} (found {', '.join(table.columns)}); "
                f"APPA-REAL's gt_avg files have {', '.join(COLUMNS)}"
            )
        genders = _gender_of(root, split)
        paths = []
        for name in table["file_name"].astype(str):
            image = root / split / name
            face = image.with_name(image.name + "_face.jpg")
            paths.append(face if prefer_face_crops and face.is_file() else image)
        absent = [p for p in paths if not p.is_file()]
        if absent:
            raise DatasetError(
                f"{csv_path}: {len(absent)} image(s) missing, first: {absent[0]}; check the {split}/ folder"
            )
        frames.append(
            pd.DataFrame(
                {
                    "path": [str(p.resolve()) for p in paths],
                    "person_id": [f"appa_{split}_{Path(n).stem}" for n in table["file_name"]],
                    "mask": UNKNOWN,
                    "gender": [genders.get(str(n), UNKNOWN) for n in table["file_name"]],
                    "age": table["real_age"].astype(float),
                    "apparent_age": table["apparent_age_avg"].astype(float),
                    "age_bin": UNKNOWN,
                    "split": split,
                    "source": "appa-real",
                }
            )
        )
    if not frames:
        raise DatasetError(f"{root}: none of gt_avg_train.csv, gt_avg_valid.csv, gt_avg_test.csv found")
    df = pd.concat(frames, ignore_index=True)
    df["age"] = np.clip(df["age"], 0, None)
    return derive_labels(df, old_threshold)
