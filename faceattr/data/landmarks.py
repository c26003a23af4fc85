"""The landmark codec of the manifest: face boxes and 5-point landmarks stored as 'x y x y ...' text columns.

`faceattr crop` and `faceattr framing --landmarks` write them (`face_box`, `landmarks`); the synthetic-mask
augmentation reads them. It lives beside the manifest so that every stage reads it from below.
"""

from __future__ import annotations

import numpy as np


def parse_points(text, count: int) -> np.ndarray | None:
    """'x y x y ...' -> (count, 2) array, or None when empty or malformed (no face was found)."""
    try:
        values = np.array(str(text).split(), dtype=np.float64)
    except ValueError:
        return None
    return values.reshape(count, 2) if values.size == 2 * count else None


def format_points(points) -> str:
    """(N, 2) points (or a flat box) -> 'x y x y ...' with one decimal, the text `parse_points` reads."""
    return " ".join(f"{v:.1f}" for v in np.asarray(points, dtype=np.float64).ravel())
