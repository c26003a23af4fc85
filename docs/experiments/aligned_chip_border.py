"""How much of an aligned training chip lies outside the photo it is cut from, by template and `faces.align_padding`,
and where a set's own crops put the five landmarks (the median, as shares of the crop: the `utkface` template).

`faces.align` warps each face so its five landmarks sit on a template; where the chip reaches past the photo, its
edge is replicated. On UTKFace's tight crops that is most of ArcFace's chip, which is why models aligned by it lose
on re-framed photos (docs/age-gender.md); the `utkface` template is UTKFace's own layout, measured here on every
face with landmarks. Reads a manifest with landmarks (`faceattr framing --landmarks`).

    python -m docs.experiments.aligned_chip_border data/utkface.framed.csv --faces 500
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.common import STUDIES, save
from faceattr.config.choices import AlignTemplate
from faceattr.data.align import CHIP_SIDE, similarity, template
from faceattr.data.images import load_rgb
from faceattr.data.landmarks import parse_points
from faceattr.data.manifest import read_manifest

CHIPS = [(AlignTemplate.ARCFACE, p) for p in (0.25, 0.15, 0.1, 0.05, 0.0)] + [(AlignTemplate.UTKFACE, 0.0)]


def outside_share(points: np.ndarray, size: tuple[int, int], padding: float, name: str, step: int = 4) -> float:
    """The share of the chip's pixels (a grid every `step` px) that map outside a `size` (width, height) photo."""
    inverse = cv2.invertAffineTransform(similarity(points, template(CHIP_SIDE, padding, name)))
    grid = np.stack(np.meshgrid(np.arange(0, CHIP_SIDE, step), np.arange(0, CHIP_SIDE, step)), -1).reshape(-1, 2)
    source = grid @ inverse[:, :2].T + inverse[:, 2]
    inside = (source >= 0).all(1) & (source[:, 0] <= size[0] - 1) & (source[:, 1] <= size[1] - 1)
    return float(1 - inside.mean())


def layout(frame: pd.DataFrame) -> list:
    """The median of each landmark as a share of its crop's width and height (printed), made left-right symmetric
    (the mirror image of a face is a face: hflip augmentation and TTA keep it on the template)."""
    shares = []
    for path, points in zip(frame["path"], frame["points"], strict=True):
        with Image.open(path) as image:  # the header only
            width, height = image.size
        shares.append(points / [width, height])
    median = np.median(shares, axis=0)
    mirrored = median[[1, 0, 2, 4, 3]] * [-1, 1] + [1, 0]
    print(f"median of {len(shares)} faces:", np.round(median, 4).tolist())
    return np.round((median + mirrored) / 2, 4).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--faces", type=int, default=500)
    parser.add_argument("--name", default="aligned_chip_border")
    args = parser.parse_args()
    frame = read_manifest(args.manifest)
    frame = frame.assign(points=[parse_points(m, 5) for m in frame["landmarks"]])  # parsed once, None if absent
    frame = frame[frame["points"].notna()]
    symmetric = layout(frame)
    frame = frame.sample(args.faces, random_state=0)
    faces = []
    for path, points in zip(frame["path"], frame["points"], strict=True):
        height, width = load_rgb(path).shape[:2]
        faces.append((points, (width, height)))
    rows = []
    for name, padding in CHIPS:
        shares = [outside_share(points, size, padding, name) for points, size in faces]
        rows.append(
            {
                "align_template": name.value,
                "align_padding": padding,
                "faces": len(shares),
                "outside_mean": round(float(np.mean(shares)), 3),
                "outside_median": round(float(np.median(shares)), 3),
            }
        )
    settings = {"manifest": args.manifest.name, "faces": args.faces, "layout (symmetric median)": symmetric}
    save(args.name, rows, list(rows[0]), settings, folder=STUDIES)


if __name__ == "__main__":
    main()
