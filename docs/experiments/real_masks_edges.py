"""Real masks whose margin box runs past the photo's edge: what to do there, scored by trained mask checkpoints.

`faceattr crop` clips the margin box to the photo, so a face near the bottom edge gives a crop that ends at the
chin and is stretched to a square by the resize; 72 % of the real worn masks the recipe calls "incorrect" (dev half)
are such crops. Other ways to make the same crop, no retraining:
  clip (as shipped)   the crops `faceattr crop` made
  pad: edge pixels    the box kept whole, the missing part filled by repeating the photo's edge rows
  pad: mean colour    the same, filled with the photo's mean colour
  move inside         the box kept its size and moved back inside the photo (nothing stretched, nothing invented)
Photos where no face was found keep their fallback crop in every row.

    python -m docs.experiments.real_masks_edges --crops /tmp/rm/real.8ff33c8b.crops.csv \
        --checkpoint /tmp/rm/runs/rm_zoom_s42-drawn-new-renderer/checkpoints/best.ckpt [--checkpoint ...]
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.common import STUDIES, save
from benchmarks.real_masks import SCORE_COLUMNS, checkpoints_parser, recipe_faces, score_versions
from faceattr.config import FacesConfig
from faceattr.data.landmarks import parse_points
from faceattr.faces.detect import grow_box

Box = tuple[int, int, int, int]


def whole_box(face_box: np.ndarray, cfg: FacesConfig) -> Box:
    """The margin box in whole pixels before clipping (it may run past the photo's edge)."""
    x1, y1, x2, y2 = grow_box(face_box, cfg)
    return int(np.floor(x1)), int(np.floor(y1)), int(np.ceil(x2)), int(np.ceil(y2))


def pad_crop(image: np.ndarray, box: Box, mode: str) -> np.ndarray:
    """The crop `box`, the part outside the photo filled by `mode`: 'edge' pixels or the 'mean' colour."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = box
    pads = ((max(0, -y1), max(0, y2 - h)), (max(0, -x1), max(0, x2 - w)), (0, 0))
    if mode == "edge":
        big = np.pad(image, pads, mode="edge")
    else:
        big = np.pad(image, pads, mode="constant")
        inside = np.zeros(big.shape[:2], bool)
        inside[pads[0][0] : pads[0][0] + h, pads[1][0] : pads[1][0] + w] = True
        big[~inside] = image.reshape(-1, 3).mean(0).astype(np.uint8)
    return big[y1 + pads[0][0] : y2 + pads[0][0], x1 + pads[1][0] : x2 + pads[1][0]]


def moved_inside(image: np.ndarray, box: Box) -> np.ndarray:
    """The crop of `box`'s size moved back inside the photo (clipped only where it is larger than the photo)."""
    h, w = image.shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    x1 = min(max(box[0], 0), max(w - bw, 0))
    y1 = min(max(box[1], 0), max(h - bh, 0))
    return image[y1 : y1 + bh, x1 : x1 + bw]


WAYS: dict[str, Callable[[np.ndarray, Box], np.ndarray]] = {
    "pad: edge pixels": lambda image, box: pad_crop(image, box, "edge"),
    "pad: mean colour": lambda image, box: pad_crop(image, box, "mean"),
    "move inside": moved_inside,
}


def recrop(crops: pd.DataFrame, way: str, out: Path, cfg: FacesConfig) -> pd.DataFrame:
    """The crops manifest with every detected face re-cropped from its source photo the given way (cached in out)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for row in crops.itertuples():
        corners = parse_points(row.face_box, 2)
        if corners is None:
            paths.append(row.path)  # no face found: the fallback crop, the same in every row
            continue
        target = out / Path(row.path).name
        if not target.exists():
            image = np.asarray(Image.open(row.source_path).convert("RGB"))
            face = (corners + np.array([row.crop_x1, row.crop_y1])).ravel()  # crop -> photo coordinates
            Image.fromarray(WAYS[way](image, whole_box(face, cfg))).save(target, quality=95)
        paths.append(str(target))
    return crops.assign(path=paths)


def main() -> None:
    args = checkpoints_parser(__doc__, "/tmp/faceattr-real-masks-edges", "real_masks_edges").parse_args()
    crops = pd.read_csv(args.crops)
    cfg = recipe_faces()
    manifests = {"clip (as shipped)": crops}
    for way in WAYS:  # one cache folder per way, named after it (and after the crops it was made from)
        folder = args.work / f"{args.crops.stem}-{way.replace(':', '').replace(' ', '-')}"
        manifests[way] = recrop(crops, way, folder, cfg)
    models: dict[str, Path | list[Path]] = {c.parent.parent.name: c for c in args.checkpoint}
    rows = score_versions(manifests, models, "crop at the edge")
    columns = ["crop at the edge", "checkpoint", *SCORE_COLUMNS]
    save(args.name, rows, columns, {"crops": args.crops.name, "faces": "configs/mask_drawn.yaml"}, folder=STUDIES)


if __name__ == "__main__":
    main()
