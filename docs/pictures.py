"""The README's pictures, generated (never drawn by hand): a `stats` plot and a confusion matrix on
../shared/data/utkface, and a Grad-CAM sheet of the UTKFace-trained model.

UTKFace is research-only, so nothing showing its photos is committed: the stats plot and the confusion matrix
are counts, and the Grad-CAM sheet explains scikit-image's public-domain `astronaut` photo (NASA) instead.

    python -m docs.pictures --checkpoint /tmp/faceattr-utkface-*/runs/utkface/checkpoints/best.ckpt
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import SHARED_UTKFACE
from faceattr.data.sources import read_utkface
from faceattr.faces.detect import FaceDetector, crop_face
from faceattr.inference.checkpoint_predictor import Predictor
from faceattr.reports.cam import cam_sheets
from faceattr.reports.evaluate import evaluate
from faceattr.reports.stats import dataset_stats

DOCS = Path(__file__).resolve().parents[1] / "docs" / "images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_UTKFACE)
    parser.add_argument("--checkpoint", type=Path, required=True, help="a model trained by benchmarks/utkface.py")
    args = parser.parse_args()
    DOCS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="faceattr-docs-"))

    stats = dataset_stats(read_utkface(args.data), work / "stats", max_images=500, progress=False)
    shutil.copy(stats.out_dir / "age_by_gender.png", DOCS / "utkface_age_by_gender.png")
    shutil.copy(stats.out_dir / "counts.png", DOCS / "utkface_counts.png")

    scored = evaluate(args.checkpoint, out_dir=work / "eval")  # the run's held-out fold
    shutil.copy(scored.out_dir / "confusion_age_bin.png", DOCS / "utkface_confusion_age_bin.png")

    from skimage import data as skdata

    photo = skdata.astronaut()
    face = FaceDetector().detect([photo])[0][0]
    cfg = Predictor(args.checkpoint, device="cpu").cfg
    crop, _ = crop_face(photo, face, cfg.faces)
    path = work / "astronaut_face.png"
    Image.fromarray(np.ascontiguousarray(crop)).save(path)
    sheet = cam_sheets(args.checkpoint, [str(path)], out_dir=work / "cam")[0].sheet
    shutil.copy(sheet, DOCS / "gradcam_astronaut.png")
    print(f"wrote {sorted(p.name for p in DOCS.iterdir())} to {DOCS}")


if __name__ == "__main__":
    main()
