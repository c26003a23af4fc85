"""IMDB-WIKI metadata (`imdb.mat` / `wiki.mat`, read with scipy).

Age = the age on July 1 of `photo_taken`, from the Matlab serial date of birth `dob`. Gender in the file is
1 = male, 0 = female (ours: 0 = male, 1 = female). No masks and no labels for them (mask = unknown). Default
filters, each configurable: face_score >= 1.0 (inf and -inf dropped), no second face (second_face_score NaN),
age 0..100, gender known; rows whose image file is missing are dropped and counted too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.data.manifest import UNKNOWN, derive_labels
from faceattr.errors import DatasetError
from faceattr.labels import DEFAULT_OLD_THRESHOLD

MATLAB_EPOCH_OFFSET = 366  # Matlab datenum 1 = 0000-01-01; Python ordinal 1 = 0001-01-01


@dataclass
class ImdbWikiFilters:
    min_face_score: float = 1.0
    drop_second_face: bool = True
    min_age: int = 0
    max_age: int = 100
    require_gender: bool = True
    require_file: bool = True


@dataclass
class FilterReport:
    total: int = 0
    removed: dict[str, int] = field(default_factory=dict)

    @property
    def kept(self) -> int:
        return self.total - sum(self.removed.values())


def matlab_datenum_to_date(datenum: float) -> date | None:
    """Matlab serial day number -> date; None when it is not a real date."""
    if not np.isfinite(datenum) or datenum < MATLAB_EPOCH_OFFSET + 1:
        return None
    try:
        return date.fromordinal(int(datenum)) - timedelta(days=MATLAB_EPOCH_OFFSET)
    except (ValueError, OverflowError):
        return None


def age_at_photo(dob: float, photo_taken: int) -> float:
    """Age in whole years on July 1 of the year the photo was taken; NaN when the birth date is invalid."""
    born = matlab_datenum_to_date(dob)
    if born is None:
        return float("nan")
    return float(photo_taken - born.year - (1 if (born.month, born.day) > (7, 1) else 0))


def _field(struct, name: str, mat_path: Path) -> np.ndarray:
    try:
        return np.asarray(struct[name][0, 0]).reshape(-1)
    except (KeyError, ValueError, IndexError):
        raise DatasetError(f"{mat_path}: no field '{name}'; is this IMDB-WIKI's imdb.mat or wiki.mat?") from None


def _text(value) -> str:
    arr = np.asarray(value).reshape(-1)
    return str(arr[0]) if arr.size else ""


def read_imdb_wiki(
    root: str | Path,
    old_threshold: int = DEFAULT_OLD_THRESHOLD,
    filters: ImdbWikiFilters | None = None,
    report: FilterReport | None = None,
) -> pd.DataFrame:
    """`root` is the .mat file, or the folder holding imdb.mat / wiki.mat and the images they list."""
    from scipy.io import loadmat

    filters = filters or ImdbWikiFilters()
    report = report if report is not None else FilterReport()
    root = Path(root)
    if root.is_dir():
        found = [root / n for n in ("imdb.mat", "wiki.mat") if (root / n).is_file()]
        if not found:
            raise DatasetError(f"{root}: no imdb.mat or wiki.mat; pass the .mat file or the folder that holds it")
        mat_path = found[0]
    else:
        mat_path = root
    if not mat_path.is_file():
        raise DatasetError(f"{mat_path}: file not found")
    try:
        mat = loadmat(mat_path)
    except Exception as e:
        raise DatasetError(f"{mat_path}: cannot be read as a Matlab file ({e})") from None
    key = next((k for k in ("imdb", "wiki") if k in mat), None)
    if key is None:
        raise DatasetError(f"{mat_path}: holds neither an 'imdb' nor a 'wiki' struct")
    s = mat[key]
    dob = _field(s, "dob", mat_path).astype(float)
    taken = _field(s, "photo_taken", mat_path).astype(int)
    paths = [_text(p) for p in _field(s, "full_path", mat_path)]
    gender = _field(s, "gender", mat_path).astype(float)
    face_score = _field(s, "face_score", mat_path).astype(float)
    second = _field(s, "second_face_score", mat_path).astype(float)
    names = [_text(n) for n in _field(s, "name", mat_path)] if "name" in s.dtype.names else paths
    celeb = _field(s, "celeb_id", mat_path).astype(int) if "celeb_id" in s.dtype.names else None
    ages = np.array([age_at_photo(d, t) for d, t in zip(dob, taken, strict=True)])
    base = mat_path.parent

    keep = np.ones(len(paths), dtype=bool)
    report.total = len(paths)

    def apply(name: str, ok: np.ndarray) -> None:
        report.removed[name] = int((keep & ~ok).sum())
        keep[:] = keep & ok

    apply(
        f"face_score < {filters.min_face_score} or inf/-inf",
        np.isfinite(face_score) & (face_score >= filters.min_face_score),
    )
    if filters.drop_second_face:
        apply("second face present", np.isnan(second))
    apply(f"age outside {filters.min_age}..{filters.max_age}", (ages >= filters.min_age) & (ages <= filters.max_age))
    if filters.require_gender:
        apply("gender unknown", np.isfinite(gender))
    if filters.require_file:
        exists = np.array([keep[i] and (base / paths[i]).is_file() for i in range(len(paths))])
        apply("image file missing", exists | ~keep)
    idx = np.flatnonzero(keep)
    person = [f"{key}_{celeb[i]}" if celeb is not None else f"{key}_{names[i]}" for i in idx]
    df = pd.DataFrame(
        {
            "path": [str((base / paths[i]).resolve()) for i in idx],
            "person_id": person,
            "mask": UNKNOWN,
            "gender": [int(1 - gender[i]) if np.isfinite(gender[i]) else UNKNOWN for i in idx],
            "age": ages[idx],
            "age_bin": UNKNOWN,
            "face_score": face_score[idx],
            "source": key,
        }
    )
    if df.empty:
        raise DatasetError(f"{mat_path}: every row was filtered out ({report.removed}); loosen the filters")
    return derive_labels(df, old_threshold)
