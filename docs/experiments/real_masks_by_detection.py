"""What a mask model calls masks-real's photos, by how the face was found: where the errors left come from.

The crop cascade (README "Finding masked faces") frames each photo one way: MTCNN found the face ("detected"), the
second pass on an enlarged copy did ("second pass"), the photo is small and square enough to be taken as a face crop
already ("whole image"), or the centred fallback ("none"). A row per class and route: how many photos, and the
share each model calls each mask class.

    python -m docs.experiments.real_masks_by_detection /tmp/rm/RUN_{A,B}.predictions.csv \
        --crops /tmp/faceattr-real-masks/real.8ff33c8b.crops.csv --name real_masks_by_detection
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from benchmarks.common import STUDIES, save
from faceattr.labels import MASK_NAMES


def by_detection(crops: pd.DataFrame, predictions: dict[str, pd.DataFrame]) -> list[dict]:
    """One row per (true class, route, model): n and the shares called each class."""
    rows = []
    for model, frame in predictions.items():
        scored = crops[["path", "mask", "detection"]].merge(frame[["path", "predicted"]], on="path", how="inner")
        if len(scored) != len(frame):
            raise SystemExit(f"{model} scores photos the crops CSV does not list: give the crops it was scored on")
        for (truth, route), group in scored.groupby(["mask", "detection"], sort=True):
            shares = group["predicted"].value_counts(normalize=True)
            rows.append(
                {"class": MASK_NAMES[int(truth)], "route": route, "model": model, "n": len(group)}
                | {f"called {name}": round(float(shares.get(k, 0.0)), 3) for k, name in enumerate(MASK_NAMES)}
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("predictions", type=Path, nargs="+", help="*.predictions.csv (path, mask, predicted)")
    parser.add_argument("--crops", type=Path, required=True, help="the crops CSV they were scored on (`detection`)")
    parser.add_argument("--name", default="real_masks_by_detection")
    args = parser.parse_args()
    frames = {p.name.removesuffix(".predictions.csv"): pd.read_csv(p) for p in args.predictions}
    rows = by_detection(pd.read_csv(args.crops), frames)
    columns = ["class", "route", "model", "n", *(f"called {name}" for name in MASK_NAMES)]
    save(args.name, rows, columns, {"crops": args.crops.name, "predictions": list(frames)}, folder=STUDIES)


if __name__ == "__main__":
    main()
