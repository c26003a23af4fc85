"""UTKFace: labels in file names, `<age>_<gender>_<race>_<datetime>.jpg[.chip.jpg]`.

gender 0 = male, 1 = female (the same coding as ours); race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others.
UTKFace has no person id, so each file is its own person; nobody wears a mask (mask = 2, not worn).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from faceattr.data.images import text_named
from faceattr.data.manifest import UNKNOWN, derive_labels
from faceattr.errors import DatasetError
from faceattr.labels import DEFAULT_OLD_THRESHOLD

NAME_PATTERN = re.compile(r"^(?P<age>\d{1,3})_(?P<gender>[01])_(?P<race>[0-4])_(?P<stamp>\d+)\.jpg", re.IGNORECASE)
RACES = ("White", "Black", "Asian", "Indian", "Others")


def parse_utkface_name(name: str) -> dict:
    """'25_1_2_20170116174525125.jpg.chip.jpg' -> {'age': 25, 'gender': 1, 'race': 'Asian'}."""
    m = NAME_PATTERN.match(name)
    if not m:
        raise DatasetError(
            f"'{name}' is not a UTKFace name <age>_<gender 0|1>_<race 0-4>_<datetime>.jpg; "
            "rename or remove it, or pass --skip-bad-names"
        )
    return {"age": int(m["age"]), "gender": int(m["gender"]), "race": RACES[int(m["race"])]}


def read_utkface(
    root: str | Path, old_threshold: int = DEFAULT_OLD_THRESHOLD, skip_bad_names: bool = False
) -> pd.DataFrame:
    """Every .jpg under `root` (recursively); malformed names stop the read unless skip_bad_names."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found; pass the folder holding the UTKFace .jpg files")
    rows = []
    for file in text_named(sorted(root.rglob("*.jpg")), root):
        if file.name.startswith("."):
            continue
        try:
            label = parse_utkface_name(file.name)
        except DatasetError:
            if skip_bad_names:
                continue
            raise DatasetError(
                f"{file}: name is not <age>_<gender 0|1>_<race 0-4>_<datetime>.jpg; "
                "rename or remove it, or pass --skip-bad-names"
            ) from None
        rows.append(
            {
                "path": str(file.resolve()),
                "person_id": file.name.split(".")[0],
                "mask": 2,
                "gender": label["gender"],
                "age": float(label["age"]),
                "age_bin": UNKNOWN,
                "race": label["race"],
                "source": "utkface",
            }
        )
    if not rows:
        raise DatasetError(f"{root}: no UTKFace .jpg files found")
    return derive_labels(pd.DataFrame(rows), old_threshold)
