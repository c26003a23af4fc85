"""The manifest: one table every stage downstream of a source reader reads.

Columns: path, person_id, mask, gender, age, age_bin, label18, source (+ optional extras such as race,
image_id, apparent_age, face_found). Integer labels use -1 for "unknown"; `age` is years (float, NaN when
unknown). `age_bin` and `label18` are derived from `age` with the old-age threshold, so changing the threshold
needs no new manifest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.atomic import atomic_path
from faceattr.errors import ManifestError
from faceattr.labels import DEFAULT_OLD_THRESHOLD, UNKNOWN, age_to_bin, known_code18

REQUIRED = ("path", "person_id", "mask", "gender", "age", "age_bin", "label18", "source")
LABEL_RANGES = {"mask": 3, "gender": 2, "age_bin": 3, "label18": 18}


def derive_labels(df: pd.DataFrame, old_threshold: int | None = DEFAULT_OLD_THRESHOLD) -> pd.DataFrame:
    """Recompute age_bin where age is known (unless old_threshold is None) and label18 where all parts are."""
    df = df.copy()
    age = pd.to_numeric(df["age"], errors="coerce")
    df["age"] = age.astype(float)
    known_age = age.notna()
    bins = df["age_bin"].astype("Int64").fillna(UNKNOWN).astype(np.int64) if "age_bin" in df else UNKNOWN
    df["age_bin"] = bins
    if old_threshold is not None and known_age.any():
        df.loc[known_age, "age_bin"] = age_to_bin(age[known_age].to_numpy(), old_threshold)
    for col in ("mask", "gender"):
        df[col] = df[col].astype("Int64").fillna(UNKNOWN).astype(np.int64)
    df["label18"] = known_code18(df["mask"].to_numpy(), df["gender"].to_numpy(), df["age_bin"].to_numpy())
    df["person_id"] = df["person_id"].astype(str)
    df["path"] = df["path"].astype(str)
    return df


def validate(df: pd.DataFrame, origin: str = "manifest") -> pd.DataFrame:
    """Check columns and label ranges; raise ManifestError naming the column, the row and the fix."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ManifestError(
            f"{origin}: missing column(s) {', '.join(missing)}; a manifest needs {', '.join(REQUIRED)}. "
            "Write one with `faceattr prepare`."
        )
    if df.empty:
        raise ManifestError(f"{origin}: has no rows")
    if df["path"].isna().any() or (df["path"].astype(str).str.len() == 0).any():
        row = int(np.flatnonzero(df["path"].isna() | (df["path"].astype(str).str.len() == 0))[0])
        raise ManifestError(f"{origin}: row {row} has an empty path")
    for col, n in LABEL_RANGES.items():
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() | (values < UNKNOWN) | (values >= n) | (values != values.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            value = df[col].iloc[row]
            raise ManifestError(
                f"{origin}: column '{col}' row {row} has value {plain(value)!r}; "
                f"expected an integer in 0..{n - 1}, or -1 for unknown"
            )
    return df


def plain(value) -> object:
    """7 rather than np.int64(7) in messages."""
    return value.item() if isinstance(value, np.generic) else value


def unlabelled_heads(frame: pd.DataFrame, heads: list[str]) -> list[str]:
    """The heads no row of `frame` has a label for (each head reads its own column; unknown is -1, or NaN for age)."""
    return [head for head in heads if head not in frame or not (frame[head] >= 0).any()]


MANIFEST_SUFFIXES = (".csv", ".parquet")  # what write_manifest writes and read_manifest reads


def write_manifest(df: pd.DataFrame, path: str | Path) -> Path:
    """Write as Parquet (.parquet) or CSV, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
    return path


def read_manifest(path: str | Path, old_threshold: int | None = None) -> pd.DataFrame:
    """Read and validate a manifest; with `old_threshold`, re-derive age bins for that threshold."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} not found; create it with `faceattr prepare ... --out {path}`")
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"person_id": str})
    except Exception as e:
        raise ManifestError(
            f"{path}: cannot be read as a {'Parquet' if path.suffix == '.parquet' else 'CSV'} "
            f"table ({type(e).__name__}: {e})"
        ) from None
    validate(df, str(path))
    return derive_labels(df, old_threshold)
