"""Which real worn masks a mask model calls "incorrect", by how dark the mask is: a lead for the drawn palette.

For every masks-real photo labelled with_mask, the brightness of its crop's lower middle (the mouth region, where a
worn mask is: rows 69-91 %, columns 31-69 % of a 64 px grey copy) is binned into quintiles; each row gives the share
of those photos each model calls "worn incorrectly", and the mean over the models (seeds of one recipe, say).

    python -m docs.experiments.real_masks_by_colour /tmp/rm/rm_lownose_s{42,1,2}-drawn-new-renderer.predictions.csv \
        --name real_masks_by_colour
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.common import STUDIES, save
from faceattr.labels import MASK_NAMES

WORN, INCORRECT = MASK_NAMES.index("wear"), MASK_NAMES.index("incorrect")


def mouth_brightness(path: str) -> float:
    """Mean grey level (0-255) of the crop's lower middle, where a worn mask covers the mouth."""
    grey = np.asarray(Image.open(path).convert("L").resize((64, 64)), dtype=np.float64)
    return float(grey[44:58, 20:44].mean())


def by_brightness(predictions: dict[str, pd.DataFrame], bins: int = 5) -> list[dict]:
    """One row per brightness quintile of the real worn masks: n, its grey range, each model's "incorrect" share."""
    first = next(iter(predictions.values()))
    worn = first[first["mask"] == WORN].reset_index(drop=True)
    brightness = pd.Series([mouth_brightness(p) for p in worn["path"]])
    quintile = pd.qcut(brightness, bins, labels=False)
    called = {}
    for name, frame in predictions.items():
        calls = worn[["path"]].merge(frame[["path", "predicted"]].drop_duplicates("path"), on="path", how="left")
        if calls["predicted"].isna().any():
            raise SystemExit(f"{name} does not score every photo of the first file: give runs on the same crops")
        called[name] = calls["predicted"].to_numpy() == INCORRECT
    rows = []
    for q in range(bins):
        inside = (quintile == q).to_numpy()
        shares = {name: round(float(c[inside].mean()), 3) for name, c in called.items()}
        rows.append(
            {
                "mouth brightness": f"{brightness[inside].min():.0f}-{brightness[inside].max():.0f}",
                "n": int(inside.sum()),
                **shares,
                "mean": round(float(np.mean(list(shares.values()))), 3),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path, nargs="+", help="*.predictions.csv from benchmarks.real_masks")
    parser.add_argument("--name", default="real_masks_by_colour")
    args = parser.parse_args()
    frames = {p.name.removesuffix(".predictions.csv"): pd.read_csv(p) for p in args.predictions}
    rows = by_brightness(frames)
    columns = ["mouth brightness", "n", *frames, "mean"]
    save(
        args.name,
        rows,
        columns,
        {"predictions": list(frames), "region": "rows 44-57, columns 20-43 of 64x64 grey"},
        folder=STUDIES,
    )


if __name__ == "__main__":
    main()
