"""What offline ImageNet weights buy on real faces: scratch vs each shipped EfficientNet-Lite, same budget.

Data: ../shared/data/utkface (research-only; read in place, never copied into the project).
Held-out rule: person-level stratified 5-fold split with split_seed 42 (every UTKFace file is its own person);
fold 0 (20 %) is held out and scored in full, training draws `--max-train` images from the other folds (seed 42).

    python docs/experiments/pretrained.py --epochs 4 --image-size 128 --max-train 3000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import SHARED_UTKFACE, STUDIES, save
from faceattr.config import load_config
from faceattr.data.manifest import write_manifest
from faceattr.data.sources import read_utkface
from faceattr.reports.evaluate import evaluate
from faceattr.training import train

CANDIDATES = {
    "scratch lite0": ("tf_efficientnet_lite0", "none"),
    "lite0 (package)": ("tf_efficientnet_lite0", "package"),
    "lite1 (package)": ("tf_efficientnet_lite1", "package"),
    "lite2 (package)": ("tf_efficientnet_lite2", "package"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_UTKFACE)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--max-train", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--only", nargs="*", default=list(CANDIDATES), choices=list(CANDIDATES))
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"UTKFace not found at {args.data}; pass --data")

    work = Path(tempfile.mkdtemp(prefix="faceattr-pretrained-"))
    manifest = write_manifest(read_utkface(args.data), work / "utkface.csv")
    rows = []
    for label in args.only:
        backbone, pretrained = CANDIDATES[label]
        cfg = load_config(
            None,
            [
                f"data.manifest={manifest}",
                f"data.image_size={args.image_size}",
                f"data.max_train_samples={args.max_train}",
                "data.num_workers=1",
                f"model.backbone={backbone}",
                f"model.pretrained={pretrained}",
                "model.heads=[gender,age_bin,age]",
                "model.age_sigma=2.0",
                f"train.epochs={args.epochs}",
                "train.monitor=val/f1_age_bin",
                "train.progress_bar=false",
                f"optim.lr={args.lr}",
                "trainer.accelerator=cpu",
                f"run.dir={work / 'runs'}",
                f"run.name={backbone}-{pretrained}",
            ],
        )
        start = time.time()
        result = train(cfg)
        train_s = time.time() - start
        scores = evaluate(result.last_checkpoint).metrics  # last epoch: same budget for every candidate
        rows.append(
            {
                "model": label,
                "gender_acc": round(scores["gender"]["accuracy"], 4),
                "age_bin_f1": round(scores["age_bin"]["f1"], 4),
                "age_bin_acc": round(scores["age_bin"]["accuracy"], 4),
                "age_mae": round(scores["age"]["mae"], 2),
                "train_s": round(train_s, 1),
                "held_out": scores["gender"]["n"],
            }
        )
        print(rows[-1], flush=True)
    save(
        "pretrained",
        rows,
        ["model", "gender_acc", "age_bin_f1", "age_bin_acc", "age_mae", "train_s", "held_out"],
        {
            "epochs": args.epochs,
            "image_size": args.image_size,
            "max_train": args.max_train,
            "lr": args.lr,
            "optimizer": "adamw",
            "scheduler": "cosine",
            "held_out_rule": "person-level 5-fold, split_seed 42, fold 0",
        },
        folder=STUDIES,
    )


if __name__ == "__main__":
    main()
