"""Person-level stratified k-fold: every image of a person lands in the same fold.

Folds are stratified on the 18-class label (StratifiedGroupKFold) and saved next to the manifest as
`<manifest>.folds-k<K>-seed<S>.csv` (person_id, fold), so every run on that manifest sees the same split.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pandas as pd
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from faceattr.atomic import write_csv
from faceattr.errors import ManifestError

log = logging.getLogger(__name__)


def make_folds(df: pd.DataFrame, k: int = 5, seed: int = 42) -> pd.DataFrame:
    """A (person_id, fold) table; persons with several labels are stratified by their images' labels."""
    persons = df["person_id"].astype(str).nunique()
    if persons < k:
        raise ManifestError(
            f"only {persons} person(s) in the manifest; cannot make {k} folds (ask for fewer: --folds in prepare "
            "and check, data.folds in training)"
        )
    fold_of: dict[str, int] = {}
    groups = df["person_id"].astype(str).to_numpy()
    strata = df["label18"].to_numpy()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "least populated class has only N members": said below
            parts = list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(df, strata, groups))
    except ValueError as e:  # a table too small or sparse to stratify: split by person alone
        log.warning(
            "the classes are too sparse to stratify %d folds (%s): folds keep persons together, unstratified", k, e
        )
        parts = list(GroupKFold(n_splits=k, shuffle=True, random_state=seed).split(df, strata, groups))
    rare = pd.Series(strata).value_counts()
    if (rare < k).any():
        log.warning(
            "%d class(es) have fewer than %d images (e.g. label18=%s: %d): some folds will lack them",
            int((rare < k).sum()),
            k,
            rare.idxmin(),
            int(rare.min()),
        )
    for fold, (_, val_idx) in enumerate(parts):
        for person in set(groups[val_idx]):
            fold_of[person] = fold
    return pd.DataFrame({"person_id": list(fold_of), "fold": list(fold_of.values())}).sort_values("person_id")


def folds_path(manifest_path: str | Path, k: int, seed: int) -> Path:
    p = Path(manifest_path)
    return p.with_name(f"{p.name}.folds-k{k}-seed{seed}.csv")


def saved_folds(manifest_path: str | Path, k: int, seed: int) -> pd.DataFrame | None:
    """The (person_id, fold) table saved beside a manifest, or None where there is none yet."""
    path = folds_path(manifest_path, k, seed)
    return pd.read_csv(path, dtype={"person_id": str}) if path.is_file() else None


def save_folds(table: pd.DataFrame, manifest_path: str | Path, k: int, seed: int) -> Path:
    """Write a split beside its manifest, atomically (a unique temp name: DDP ranks may both make it)."""
    path = folds_path(manifest_path, k, seed)
    return write_csv(table, path)


def load_or_make_folds(df: pd.DataFrame, manifest_path: str | Path, k: int, seed: int) -> pd.Series:
    """Fold number per manifest row, from the saved split (made and saved on first use)."""
    path = folds_path(manifest_path, k, seed)
    table = saved_folds(manifest_path, k, seed)
    if table is None:
        table = make_folds(df, k, seed)
        save_folds(table, manifest_path, k, seed)
    fold_of = dict(zip(table["person_id"].astype(str), table["fold"].astype(int), strict=True))
    folds = df["person_id"].astype(str).map(fold_of)
    if folds.isna().any():
        unknown = df.loc[folds.isna(), "person_id"].iloc[0]
        raise ManifestError(
            f"person '{unknown}' is in the manifest but not in the saved split {path}; "
            "the manifest changed since the split was made: delete the split file to make a new one"
        )
    return folds.astype(int)
