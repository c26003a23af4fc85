"""Synthetic masks on real faces: build a competition-layout dataset from UTKFace, then train the mask head.

Data: ../shared/data/utkface (research-only: read in place; the dataset and its preview are written to --work,
outside the repository, never committed). Held-out rule: person-level stratified 5-fold split, split_seed 42,
fold 0 scored (each person's 7 images stay on one side).

    python -m docs.experiments.synth_masks --persons 500 --epochs 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import SHARED_UTKFACE, STUDIES, save
from faceattr.config import load_config
from faceattr.data.manifest import write_manifest
from faceattr.data.sources import read_competition, read_utkface
from faceattr.reports.evaluate import evaluate
from faceattr.synth.dataset import contact_sheet, synthesize_dataset
from faceattr.training import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_UTKFACE)
    parser.add_argument("--persons", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--work", type=Path, default=None, help="output folder (default: a new temporary one)")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"UTKFace not found at {args.data}; pass --data")
    work = args.work or Path(tempfile.mkdtemp(prefix="faceattr-synth-"))
    start = time.time()
    synth = synthesize_dataset(read_utkface(args.data), work / "synth", args.persons, seed=0, overwrite=True)
    build_s = time.time() - start
    dataset = read_competition(work / "synth")
    preview = contact_sheet(dataset, work / "synth" / "preview.png", 24)
    manifest = write_manifest(dataset, work / "synth.csv")
    cfg = load_config(
        None,
        [
            f"data.manifest={manifest}",
            f"data.image_size={args.image_size}",
            "data.num_workers=1",
            f"model.backbone={args.backbone}",
            "model.pretrained=package",
            "model.heads=[mask]",
            f"train.epochs={args.epochs}",
            "train.monitor=val/f1_mask",
            "train.progress_bar=false",
            "optim.lr=2e-3",
            f"run.dir={work / 'runs'}",
            "run.name=synth_mask",
        ],
    )
    start = time.time()
    result = train(cfg, overwrite=True)
    train_s = time.time() - start
    scores = evaluate(result.best_checkpoint, out_dir=work / "eval").metrics["mask"]
    rows = [
        {
            "persons": synth.persons,
            "images": len(dataset),
            "no_face_skipped": synth.skipped,
            "build_s": round(build_s, 1),
            "images_per_s": round(len(dataset) / build_s, 1),
            "mask_f1": round(scores["f1"], 4),
            "mask_acc": round(scores["accuracy"], 4),
            "held_out_images": scores["n"],
            "train_min": round(train_s / 60, 1),
        }
    ]
    print(f"preview: {preview}\nevaluation: {work / 'eval'}")
    save(
        "synth_masks",
        rows,
        list(rows[0]),
        {**vars(args), "data": "shared/data/utkface", "held_out_rule": "person-level 5-fold, split_seed 42, fold 0"},
        folder=STUDIES,
    )


if __name__ == "__main__":
    main()
