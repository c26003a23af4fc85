"""Manifests as a source: `faceattr prepare manifest A.csv B.csv` joins manifests that `prepare` or `crop` wrote."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from faceattr.data.manifest import read_manifest


def read_manifests(root: str | Path, old_threshold: int | None = None) -> pd.DataFrame:
    """A manifest `faceattr prepare` or `crop` wrote, as a source: `prepare manifest A.csv B.csv` joins several
    (drawn crops and real boxed crops, say) into one manifest with one split; one alone is re-split or corrected
    (`--corrections`) with its person ids as they are."""
    return read_manifest(root, old_threshold)
