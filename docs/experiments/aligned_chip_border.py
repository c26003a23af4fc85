"""How much of an aligned training chip lies outside the photo it is cut from, by `faces.align_padding`.

`faces.align` warps each face so its five landmarks sit on ArcFace's template; where the chip reaches past the
photo, its edge is replicated. On UTKFace's tight crops that is most of the chip, which is why aligned models lose
on re-framed photos (docs/age-gender.md). Reads a manifest with landmarks (`faceattr framing --landmarks`).

    python -m docs.experiments.aligned_chip_border data/utkface.framed.csv --faces 500
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import STUDIES, save
from faceattr.data.align import CHIP_SIDE, similarity, template
from faceattr.data.images import load_rgb
from faceattr.data.manifest import read_manifest

PADDINGS = (0.25, 0.15, 0.1, 0.05, 0.0)


def outside_share(points: np.ndarray, size: tuple[int, int], padding: float, step: int = 4) -> float:
    """The share of the chip's pixels (a grid every `step` px) that map outside a `size` (width, height) photo."""
    inverse = cv2.invertAffineTransform(similarity(points, template(CHIP_SIDE, padding)))
    grid = np.stack(np.meshgrid(np.arange(0, CHIP_SIDE, step), np.arange(0, CHIP_SIDE, step)), -1).reshape(-1, 2)
    source = grid @ inverse[:, :2].T + inverse[:, 2]
    inside = (source >= 0).all(1) & (source[:, 0] <= size[0] - 1) & (source[:, 1] <= size[1] - 1)
    return float(1 - inside.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--faces", type=int, default=500)
    parser.add_argument("--name", default="aligned_chip_border")
    args = parser.parse_args()
    frame = read_manifest(args.manifest)
    frame = frame[frame["landmarks"].notna()].sample(args.faces, random_state=0)
    faces = []
    for path, marks in zip(frame["path"], frame["landmarks"], strict=True):
        height, width = load_rgb(path).shape[:2]
        faces.append((np.array([float(v) for v in str(marks).split()]).reshape(5, 2), (width, height)))
    rows = []
    for padding in PADDINGS:
        shares = [outside_share(points, size, padding) for points, size in faces]
        rows.append(
            {
                "align_padding": padding,
                "faces": len(shares),
                "outside_mean": round(float(np.mean(shares)), 3),
                "outside_median": round(float(np.median(shares)), 3),
            }
        )
    save(args.name, rows, list(rows[0]), {"manifest": args.manifest.name, "faces": args.faces}, folder=STUDIES)


if __name__ == "__main__":
    main()
