"""The mask competition layout.

    <root>/train/images/<id>_<gender>_<race>_<age>/{mask1..mask5,incorrect_mask,normal}.{jpg,jpeg,png}
    <root>/eval/info.csv   (ImageID, ans)
    <root>/eval/images/<ImageID>

Each folder is one person photographed 7 times. Hidden files and macOS `._` files are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from faceattr.data.images import text_named
from faceattr.data.manifest import UNKNOWN, derive_labels
from faceattr.data.text_tables import read_text_table
from faceattr.errors import DatasetError
from faceattr.labels import DEFAULT_OLD_THRESHOLD, MASK_FILE_STEMS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
FOLDER_PATTERN = re.compile(r"^(?P<id>[^_]+)_(?P<gender>[A-Za-z]+)_(?P<race>[^_]+)_(?P<age>\d{1,3})$")
GENDERS = {"male": 0, "female": 1}


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and not path.name.startswith("._")


def _images_dir(root: Path) -> Path:
    """Accept the dataset root, its train/ folder, or train/images/ itself."""
    for candidate in (root / "train" / "images", root / "images", root):
        if candidate.is_dir() and any(FOLDER_PATTERN.match(p.name) for p in candidate.iterdir() if p.is_dir()):
            return candidate
    if not root.exists():
        raise DatasetError(f"{root}: folder not found; pass the dataset root that holds train/images/")
    raise DatasetError(
        f"{root}: no person folders found; expected {root}/train/images/<id>_<gender>_<race>_<age>/ "
        "(e.g. 000001_female_Asian_45/mask1.jpg)"
    )


def parse_person_folder(name: str) -> dict:
    """'000001_female_Asian_45' -> {'id', 'gender', 'race', 'age'}; DatasetError on a malformed name."""
    m = FOLDER_PATTERN.match(name)
    if not m:
        raise DatasetError(
            f"person folder '{name}' does not match <id>_<gender>_<race>_<age> (e.g. 000001_female_Asian_45); "
            "rename it or move it out of the images folder"
        )
    gender = m["gender"].lower()
    if gender not in GENDERS:
        raise DatasetError(f"person folder '{name}': unknown gender '{m['gender']}'; use male or female")
    return {"id": m["id"], "gender": GENDERS[gender], "race": m["race"], "age": int(m["age"])}


def _folder_rows(folder: Path) -> tuple[list[dict], list[str]]:
    """Rows of one person folder, or the problems that keep it from being read (each with its fix)."""
    try:
        person = parse_person_folder(folder.name)
    except DatasetError as e:
        return [], [str(e)]
    problems: list[str] = []
    found: dict[str, Path] = {}
    for file in text_named(sorted(f for f in folder.iterdir() if f.is_file() and _visible(f)), folder):
        stem, ext = file.stem, file.suffix.lower()
        if ext not in IMAGE_EXTENSIONS:
            problems.append(f"{file}: unexpected file type '{file.suffix}'; images must be .jpg, .jpeg or .png")
        elif stem not in MASK_FILE_STEMS:
            problems.append(f"{file}: unknown label '{stem}'; files must be named {', '.join(MASK_FILE_STEMS)}")
        elif stem in found:
            problems.append(f"{folder}: two files for '{stem}' ({found[stem].name}, {file.name}); keep one")
        else:
            found[stem] = file
    missing = [s for s in MASK_FILE_STEMS if s not in found]
    if missing:
        problems.append(
            f"{folder}: missing {', '.join(missing)} (holds {len(found)} of 7 images); "
            "add the files or move the folder out"
        )
    if problems:
        return [], problems
    rows = [
        {
            "path": str(file.resolve()),
            "person_id": folder.name,
            "mask": MASK_FILE_STEMS[stem],
            "gender": person["gender"],
            "age": float(person["age"]),
            "age_bin": UNKNOWN,
            "race": person["race"],
            "source": "competition",
        }
        for stem, file in found.items()
    ]
    return rows, []


def read_competition(
    root: str | Path,
    old_threshold: int = DEFAULT_OLD_THRESHOLD,
    skip_bad_folders: bool = False,
    problems: list[str] | None = None,
) -> pd.DataFrame:
    """The training side: one row per image, person_id = the folder name.

    Every folder is checked before anything stops, so one error lists all the problems; with skip_bad_folders
    the bad folders are left out instead and their problems appended to `problems`.
    """
    images_dir = _images_dir(Path(root))
    rows: list[dict] = []
    found_problems: list[str] = []
    for folder in sorted(p for p in images_dir.iterdir() if p.is_dir() and _visible(p)):
        folder_rows, folder_problems = _folder_rows(folder)
        rows += folder_rows
        found_problems += folder_problems
    if problems is not None:
        problems += found_problems
    if found_problems and not skip_bad_folders:
        shown = "\n  ".join(found_problems[:20])
        more = f"\n  ... and {len(found_problems) - 20} more" if len(found_problems) > 20 else ""
        raise DatasetError(
            f"{len(found_problems)} problem(s) in {images_dir} (fix them, or pass --skip-bad-folders):\n  {shown}{more}"
        )
    if not rows:
        raise DatasetError(f"{images_dir}: no readable person folder")
    return derive_labels(pd.DataFrame(rows), old_threshold)


def read_competition_eval(root: str | Path, **_: object) -> pd.DataFrame:
    """The test side: rows of eval/info.csv with paths into eval/images; labels unknown (-1)."""
    root = Path(root)
    eval_dir = root / "eval" if (root / "eval" / "info.csv").is_file() else root
    info = eval_dir / "info.csv"
    if not info.is_file():
        raise DatasetError(f"{info}: not found; the eval side needs eval/info.csv (ImageID, ans) and eval/images/")
    table = read_text_table(info)
    if "ImageID" not in table.columns:
        raise DatasetError(
            f"{info}: no 'ImageID' column (found: {', '.join(table.columns)}); the header is ImageID,ans"
        )
    images = eval_dir / "images"
    paths = [images / str(name) for name in table["ImageID"]]
    absent = [p for p in paths if not p.is_file()]
    if absent:
        raise DatasetError(
            f"{len(absent)} image(s) listed in {info} are missing, first: {absent[0]}; "
            "copy them into eval/images/ or remove their rows"
        )
    n = len(table)
    return pd.DataFrame(
        {
            "path": [str(p.resolve()) for p in paths],
            "person_id": [f"eval_{i}" for i in range(n)],
            "mask": UNKNOWN,
            "gender": UNKNOWN,
            "age": float("nan"),
            "age_bin": UNKNOWN,
            "label18": UNKNOWN,
            "source": "competition-eval",
            "image_id": table["ImageID"].astype(str),
        }
    )
