"""Label corrections applied at prepare time: a CSV of (path, field, value) rows, with a log of what changed.

`path` matches a manifest row by its full path, by a path suffix (e.g. `000001_female_Asian_45/mask1.jpg`), or
a whole person by its person_id (e.g. `000001_female_Asian_45`, for a wrong gender or age). `field` is one of
mask, gender, age, person_id; values take the same words as the CSV reader (wear/incorrect/not_wear,
male/female).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from faceattr.data.manifest import derive_labels
from faceattr.data.sources.csv_table import GENDER_WORDS, MASK_WORDS
from faceattr.data.text_tables import read_text_table
from faceattr.errors import DatasetError

FIELDS = ("mask", "gender", "age", "person_id")


def _value(field: str, raw: str, where: str):
    text = str(raw).strip()
    if field == "person_id":
        return text
    if field == "age":
        try:
            age = float(text)
        except ValueError:
            raise DatasetError(f"{where}: age '{raw}' is not a number") from None
        if not 0 <= age <= 120:
            raise DatasetError(f"{where}: age {age} is outside 0..120")
        return age
    words = MASK_WORDS if field == "mask" else GENDER_WORDS
    limit = 3 if field == "mask" else 2
    if text.lower() in words:
        return words[text.lower()]
    if text.isdigit() and int(text) < limit:
        return int(text)
    raise DatasetError(f"{where}: {field} '{raw}' is not 0..{limit - 1} or one of {', '.join(words)}")


def apply_corrections(
    df: pd.DataFrame, corrections: str | Path, old_threshold: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The corrected manifest and a log (path, field, old, new, rows); unmatched entries are an error."""
    corrections = Path(corrections)
    if not corrections.is_file():
        raise DatasetError(f"{corrections}: corrections file not found")
    table = read_text_table(corrections, dtype=str)
    missing = [c for c in ("path", "field", "value") if c not in table.columns]
    if missing:
        raise DatasetError(f"{corrections}: missing column(s) {', '.join(missing)}; the header is path,field,value")
    df = df.copy()
    paths = df["path"].astype(str)
    log = []
    for i, row in table.iterrows():
        where = f"{corrections} row {i + 2}"
        field = str(row["field"]).strip()
        if field not in FIELDS:
            raise DatasetError(f"{where}: field '{field}' is not one of {', '.join(FIELDS)}")
        key = str(row["path"]).strip()
        match = (paths == key) | paths.str.endswith("/" + key.lstrip("/")) | (df["person_id"].astype(str) == key)
        if not match.any():
            raise DatasetError(f"{where}: '{key}' matches no image path or person_id in the manifest")
        new = _value(field, row["value"], where)
        old = sorted(set(df.loc[match, field].tolist()), key=str)
        df.loc[match, field] = new
        log.append({"path": key, "field": field, "old": "|".join(map(str, old)), "new": new, "rows": int(match.sum())})
    return derive_labels(df, old_threshold), pd.DataFrame(log)
