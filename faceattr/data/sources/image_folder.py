"""Image folders per class: `<root>/<class>/*.jpg`, the layout most public mask sets use (Kaggle, torchvision's
ImageFolder).

The folder name is the mask label, through `MASK_FOLDER_NAMES` (with_mask -> worn, mask_weared_incorrect ->
incorrectly worn, without_mask -> not worn, ...) or a mapping the caller gives (`--classes name=label,...`).
Gender and age are unknown (they contribute no loss); each file is its own person (person_id = class/file).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.data.images import IMAGE_SUFFIXES, text_named
from faceattr.data.manifest import UNKNOWN, derive_labels
from faceattr.errors import DatasetError
from faceattr.labels import DEFAULT_OLD_THRESHOLD, MASK_NAMES

# usual class-folder names -> mask label (0 worn, 1 incorrectly worn, 2 not worn)
MASK_FOLDER_NAMES: dict[str, int] = {
    "with_mask": 0,
    "mask": 0,
    "masked": 0,
    "correct": 0,
    "mask_correct": 0,
    "wear": 0,
    "worn": 0,
    "incorrect_mask": 1,
    "mask_weared_incorrect": 1,
    "mask_worn_incorrectly": 1,
    "incorrect": 1,
    "without_mask": 2,
    "no_mask": 2,
    "nomask": 2,
    "none": 2,
    "unmasked": 2,
    "not_wear": 2,
    "not_worn": 2,
    "normal": 2,
}


def parse_class_map(text: str) -> dict[str, int]:
    """'with_mask=worn,bare=2' -> {'with_mask': 0, 'bare': 2}; labels by number or by name (wear/incorrect/...)."""
    out: dict[str, int] = {}
    names = {name: i for i, name in enumerate(MASK_NAMES)} | {"worn": 0, "not_worn": 2}
    for item in filter(None, (part.strip() for part in text.split(","))):
        folder, sep, label = item.partition("=")
        label = label.strip().lower()
        if not sep or not folder.strip() or (label not in names and label not in ("0", "1", "2")):
            raise DatasetError(
                f"--classes item '{item}' is not folder=label; label is 0/1/2 or one of {', '.join(names)}"
            )
        out[folder.strip()] = int(label) if label.isdigit() else names[label]
    return out


def read_image_folder(
    root: str | Path,
    old_threshold: int = DEFAULT_OLD_THRESHOLD,
    classes: dict[str, int] | None = None,
) -> pd.DataFrame:
    """Every image under `root/<class>/` (recursively) with the class folder's mask label."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: folder not found; pass the folder holding one sub-folder per class")
    mapping = {k.lower(): v for k, v in (classes or MASK_FOLDER_NAMES).items()}
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DatasetError(f"{root}: no class sub-folders; the layout is <root>/<class>/*.jpg")
    unknown = [f.name for f in folders if f.name.lower() not in mapping]
    if unknown:
        raise DatasetError(
            f"{root}: class folder(s) {', '.join(unknown)} have no mask label; valid names: "
            f"{', '.join(sorted(mapping))}; or map them: --classes {unknown[0]}=wear|incorrect|not_wear"
        )
    rows = []
    for folder in folders:
        label = mapping[folder.name.lower()]
        for file in text_named(sorted(folder.rglob("*")), folder):
            if file.suffix.lower() not in IMAGE_SUFFIXES or file.name.startswith(".") or not file.is_file():
                continue
            rows.append(
                {
                    "path": str(file.resolve()),
                    "person_id": f"{folder.name}/{file.relative_to(folder).with_suffix('').as_posix()}",
                    "mask": label,
                    "gender": UNKNOWN,
                    "age": np.nan,
                    "age_bin": UNKNOWN,
                    "source": "image-folder",
                    "class_folder": folder.name,
                }
            )
    if not rows:
        raise DatasetError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the class folders")
    return derive_labels(pd.DataFrame(rows), old_threshold)
