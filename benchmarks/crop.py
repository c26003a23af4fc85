"""Crop throughput and detection rate on competition-sized photos (384x512), on this machine.

UTKFace face crops (../shared/data/utkface, read in place) are pasted at random places onto 384x512 canvases
written to a temp folder; `crop_manifest` then detects and crops them with MTCNN. Reported: images/s for the
first (detecting) run and for the second (cached) run, the detection rate, and the share of boxes whose centre
lies within 40 px of where the face was pasted.

    python benchmarks/crop.py --n 300
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from benchmarks.common import SHARED_UTKFACE, save
from faceattr.config import FacesConfig
from faceattr.faces.crop import crop_manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_UTKFACE)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="faceattr-crop-bench-"))
    rng = np.random.default_rng(0)
    files = sorted(args.data.glob("*.jpg"))
    files = [files[i] for i in rng.choice(len(files), size=min(args.n, len(files)), replace=False)]
    rows, centres = [], {}
    for i, f in enumerate(files):
        x, y = int(rng.integers(0, 184)), int(rng.integers(0, 312))
        canvas = Image.new("RGB", (384, 512), tuple(int(v) for v in rng.integers(60, 200, 3)))
        canvas.paste(Image.open(f).convert("RGB"), (x, y))
        path = work / "photos" / f"{i:05d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        canvas.save(path, quality=92)
        centres[str(path.resolve())] = (x + 100, y + 100)
        rows.append(
            {
                "path": str(path),
                "person_id": str(i),
                "mask": 2,
                "gender": 0,
                "age": 30.0,
                "age_bin": 1,
                "label18": 13,
                "source": "bench",
            }
        )
    df = pd.DataFrame(rows)
    results = []
    for run in ("first run (detect)", "second run (cached)"):
        start = time.perf_counter()
        result = crop_manifest(df, work / "cache", FacesConfig(), batch_size=args.batch_size, progress=False)
        seconds = time.perf_counter() - start
        out = result.manifest
        near = [
            abs((r.crop_x1 + r.crop_x2) / 2 - centres[r.source_path][0]) < 40 for r in out.itertuples() if r.face_found
        ]
        results.append(
            {
                "run": run,
                "images": len(out),
                "images_per_s": round(len(out) / seconds, 1),
                "detection_rate": round(float(out["face_found"].mean()), 4),
                "box_centre_ok": round(float(np.mean(near)) if near else 0.0, 4),
                "detector_calls": result.detected_now,
            }
        )
        print(results[-1], flush=True)
    save(
        "crop",
        results,
        ["run", "images", "images_per_s", "detection_rate", "box_centre_ok", "detector_calls"],
        {"n": len(files), "canvas": "384x512", "batch_size": args.batch_size, "threads": torch.get_num_threads()},
    )


if __name__ == "__main__":
    main()
