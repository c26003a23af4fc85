"""Real masks the way crowd photos show them: masks-real's face crops made small or blurred, scored by trained mask
checkpoints (no retraining).

masks-real's crops are mostly web portraits (median crop side 137 px); users' crowd photos give faces of about
60 px, blurred and JPEG-compressed. Each view degrades every crop the same way before the model's own resize:
  as cropped          the crops `faceattr crop` made
  64 px / 40 px       shrunk so the crop's side is 64 or 40 px, then back up (the recipe's crop is about the face
                      box, so faces of about that size: crowd photos' 60 px, and smaller)
  JPEG 20 + blur      Gaussian blur (radius 1.5) and JPEG quality 20, as benchmarks.robustness does to UTKFace
The same degradations as the age-gender robustness rows (benchmarks/robustness.py), on real masks.

    python -m benchmarks.real_masks_degraded --crops /tmp/rm/real.8ff33c8b.crops.csv \
        --checkpoint /tmp/rm/runs/rm_zoom_s42-drawn-new-renderer/checkpoints/best.ckpt [--checkpoint ...]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.common import save
from benchmarks.real_masks import score
from benchmarks.robustness import jpeg_blur, low_resolution

VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "64 px": partial(low_resolution, side=64),
    "40 px": partial(low_resolution, side=40),
    "JPEG 20 + blur": jpeg_blur,
}


def degraded(crops: pd.DataFrame, view: str, out: Path) -> pd.DataFrame:
    """The crops manifest with every crop degraded by `view` (written once to `out`, then reused)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for path in crops["path"]:
        target = out / Path(path).with_suffix(".png").name  # PNG: no second JPEG loss on top of the view's
        if not target.exists():
            Image.fromarray(VIEWS[view](np.asarray(Image.open(path).convert("RGB")))).save(target)
        paths.append(str(target))
    return crops.assign(path=paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--crops", type=Path, required=True, help="masks-real's crops manifest from benchmarks.real_masks"
    )
    parser.add_argument("--checkpoint", type=Path, action="append", required=True, help="a mask model (repeat)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-real-masks-degraded"))
    parser.add_argument("--name", default="real_masks_degraded")
    args = parser.parse_args()
    crops = pd.read_csv(args.crops)
    manifests = {"as cropped": crops}
    for view in VIEWS:  # one cache folder per view, named after it and the crops it was made from
        manifests[view] = degraded(crops, view, args.work / f"{args.crops.stem}-{view.replace(' ', '-')}")
    rows = []
    for view, manifest in manifests.items():
        for checkpoint in args.checkpoint:
            rows.append({"view": view, "checkpoint": checkpoint.parent.parent.name, **score(checkpoint, manifest)})
            print(rows[-1], flush=True)
    columns = ["view", "checkpoint", "macro_f1", "f1_dev", "f1_test", "worn_called_incorrect"]
    columns += ["worn_called_not_worn", "bare_called_worn"]
    save(args.name, rows, columns, {"crops": args.crops.name, "views": list(manifests)})


if __name__ == "__main__":
    main()
