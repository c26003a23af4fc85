"""Real masks the way crowd photos show them: masks-real's face crops made small or blurred, scored by trained mask
checkpoints (no retraining).

masks-real's crops are mostly web portraits (median crop side 137 px); users' crowd photos give faces of about
60 px, blurred and JPEG-compressed. Each view degrades every crop the same way before the model's own resize:
  as cropped          the crops `faceattr crop` made
  64 px / 40 px       shrunk so the crop's side is 64 or 40 px, then back up (the recipe's crop is about the face
                      box, so faces of about that size: crowd photos' 60 px, and smaller)
  JPEG 20 + blur      Gaussian blur (radius 1.5) and JPEG quality 20, as benchmarks.robustness does to UTKFace
The same degradations as the age-gender robustness rows (benchmarks/robustness.py), on real masks.

    python -m docs.experiments.real_masks_degraded --crops /tmp/rm/real.8ff33c8b.crops.csv \
        --checkpoint /tmp/rm/runs/rm_zoom_s42-drawn-new-renderer/checkpoints/best.ckpt [--checkpoint ...]
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.common import STUDIES, save
from benchmarks.real_masks import SCORE_COLUMNS, checkpoints_parser, score_versions
from benchmarks.robustness import jpeg_blur, low_resolution
from faceattr.inference.tta import VIEWS_HELP, parse_views

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
    parser = checkpoints_parser(__doc__, "/tmp/faceattr-real-masks-degraded", "real_masks_degraded")
    parser.add_argument("--ensemble", action="store_true", help="also score all the checkpoints as one soft vote")
    parser.add_argument("--tta", default=None, help=VIEWS_HELP)
    args = parser.parse_args()
    crops = pd.read_csv(args.crops)
    manifests = {"as cropped": crops}
    for view in VIEWS:  # one cache folder per view, named after it and the crops it was made from
        manifests[view] = degraded(crops, view, args.work / f"{args.crops.stem}-{view.replace(' ', '-')}")
    models: dict[str, Path | list[Path]] = {c.parent.parent.name: c for c in args.checkpoint}
    if args.ensemble:
        models[f"ensemble of {len(args.checkpoint)}"] = list(args.checkpoint)
    rows = score_versions(manifests, models, "view", parse_views(args.tta), args.priors)
    rows = [{**row, "tta": args.tta or "the model's", "priors": args.priors or "the model's"} for row in rows]
    settings = {"crops": args.crops.name, "views": list(manifests)}
    save(args.name, rows, ["view", "checkpoint", "tta", "priors", *SCORE_COLUMNS], settings, folder=STUDIES)


if __name__ == "__main__":
    main()
