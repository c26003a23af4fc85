"""A plain CSV of your own.

Columns (header names exactly):
  path       required; absolute, or relative to the CSV's folder
  person_id  optional; default: each row is its own person
  mask       optional; 0/1/2 or wear/incorrect/not_wear (also: mask, incorrect_mask, normal); default unknown
  gender     optional; 0/1 or male/female (m/f); default unknown
  age        optional; years
  age_bin    optional; 0/1/2, used only where age is empty
Other columns are kept as extras.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.data.manifest import UNKNOWN, derive_labels, plain
from faceattr.data.text_tables import read_text_table
from faceattr.errors import DatasetError
from faceattr.labels import DEFAULT_OLD_THRESHOLD

log = logging.getLogger(__name__)
MASK_WORDS = {"wear": 0, "mask": 0, "worn": 0, "incorrect": 1, "incorrect_mask": 1, "not_wear": 2, "normal": 2}
GENDER_WORDS = {"male": 0, "m": 0, "female": 1, "f": 1}
RANGES = {"mask": 3, "gender": 2, "age_bin": 3}


def _parse_labels(values: pd.Series, column: str, words: dict[str, int], csv_path: Path) -> pd.Series:
    """Words or numbers -> label codes; every bad cell is listed in one error, not just the first."""
    out, bad = [], []
    for row, value in enumerate(values):
        if pd.isna(value) or str(value).strip() == "":
            out.append(UNKNOWN)
            continue
        text = str(value).strip().lower()
        if text in words:
            out.append(words[text])
            continue
        try:
            number = float(text)
        except ValueError:
            number = np.nan
        if not np.isnan(number) and number == int(number) and (0 <= number < RANGES[column] or number == UNKNOWN):
            out.append(int(number))
            continue
        bad.append(f"line {row + 2}: {plain(value)!r}")
        out.append(UNKNOWN)
    if bad:
        valid = f"0..{RANGES[column] - 1}" + (f" or {', '.join(words)}" if words else "")
        raise DatasetError(
            f"{csv_path}: {len(bad)} unknown label(s) in column '{column}' ("
            + "; ".join(bad[:20])
            + ("; ..." if len(bad) > 20 else "")
            + f"); use {valid}"
        )
    return pd.Series(out, index=values.index, dtype=np.int64)


def read_csv_table(root: str | Path, old_threshold: int = DEFAULT_OLD_THRESHOLD) -> pd.DataFrame:
    """Read the documented CSV; `root` is the CSV file."""
    csv_path = Path(root)
    if not csv_path.is_file():
        raise DatasetError(f"{csv_path}: CSV file not found")
    table = read_text_table(csv_path)
    if "path" not in table.columns:
        raise DatasetError(
            f"{csv_path}: no 'path' column (found: {', '.join(map(str, table.columns))}); "
            "the header needs at least: path"
        )
    empty = table["path"].isna() | (table["path"].astype("string").str.strip() == "")
    if empty.any():
        rows = [int(i) + 2 for i in np.flatnonzero(empty.to_numpy())]
        raise DatasetError(f"{csv_path}: empty 'path' on line(s) {', '.join(map(str, rows[:10]))}; fill or remove them")
    base = csv_path.parent
    paths = [Path(p) if Path(p).is_absolute() else (base / p) for p in table["path"].astype(str)]
    outside = [
        p
        for p, given in zip(paths, table["path"].astype(str), strict=True)
        if not Path(given).is_absolute() and not p.resolve().is_relative_to(base.resolve())
    ]
    if outside:  # `../../x.jpg`: allowed (a user's own layout), but never without a word
        log.warning(
            "%s: %d relative path(s) lead outside the CSV's folder (e.g. %s -> %s); they are used as given",
            csv_path,
            len(outside),
            table["path"].astype(str).iloc[paths.index(outside[0])],
            outside[0].resolve(),
        )
    absent = [p for p in paths if not p.is_file()]
    if absent:
        raise DatasetError(
            f"{csv_path}: {len(absent)} listed image(s) missing, first: {absent[0]}; fix the path or remove the row"
        )
    df = table.copy()
    df["path"] = [str(p.resolve()) for p in paths]
    df["person_id"] = table["person_id"].astype(str) if "person_id" in table else [Path(p).stem for p in df["path"]]
    df["mask"] = _parse_labels(table.get("mask", pd.Series([None] * len(df))), "mask", MASK_WORDS, csv_path)
    df["gender"] = _parse_labels(table.get("gender", pd.Series([None] * len(df))), "gender", GENDER_WORDS, csv_path)
    df["age_bin"] = _parse_labels(table.get("age_bin", pd.Series([None] * len(df))), "age_bin", {}, csv_path)
    if "age" in table:
        ages = pd.to_numeric(table["age"], errors="coerce")
        bad = ages.isna() & table["age"].notna() | (ages < 0) | (ages > 120)
        if bad.any():
            lines = [f"line {int(i) + 2}: {plain(table['age'].iloc[int(i)])}" for i in np.flatnonzero(bad.to_numpy())]
            raise DatasetError(
                f"{csv_path}: {len(lines)} value(s) in column 'age' are not ages (years, 0-120): "
                + "; ".join(lines[:20])
                + ("; ..." if len(lines) > 20 else "")
            )
        df["age"] = ages
    else:
        df["age"] = np.nan
    df["source"] = table["source"].astype(str) if "source" in table else "csv"
    labels = [c for c in ("mask", "gender", "age_bin", "age") if c in df]
    keyed = df[["path", "person_id", *labels]].astype(str)
    clash = keyed.duplicated(["path", "person_id"], keep=False) & ~keyed.duplicated(keep=False)
    if clash.any():  # the same image twice with different labels: which is right is the user's call, not ours
        lines = [int(i) + 2 for i in np.flatnonzero(clash.to_numpy())]
        raise DatasetError(
            f"{csv_path}: {len(lines)} row(s) list the same path and person_id with different labels (lines "
            f"{', '.join(map(str, lines[:20]))}{', ...' if len(lines) > 20 else ''}); keep one row per image"
        )
    repeated = df.duplicated(["path", "person_id"])
    if repeated.any():  # the same image listed twice for the same person: it would count twice in training
        log.warning("%s: %d repeated row(s) (same path and person_id) kept once", csv_path, int(repeated.sum()))
        df = df[~repeated].reset_index(drop=True)
    return derive_labels(df, old_threshold)
