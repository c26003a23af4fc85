"""Age and gender on real faces: the README's recipe trained on the UTKFace union, scored on held-out people.

Data: ../shared/data/utkface + utkface-extra (research-only, read in place), byte-identical duplicates dropped.
Held-out rule (new since the union, 2026-11-24): person-level stratified 5-fold split with split_seed 42 over the
union; fold 0 (about 4,280 faces) is held out and scored in full, the rest trains. The manifest carries UTKFace's
framing (so the checkpoint crops photos alike) and every face's landmarks (for the synthetic-mask augmentation).
Then benchmarks/robustness.py scores the checkpoint on the robustness rows.

    python -m benchmarks.utkface                                  # configs/utkface_age_gender.yaml, ~1 h on 2 cores
    python -m benchmarks.utkface --name old_default -- model.backbone=tf_efficientnet_lite0 ...   # any overrides
    python -m benchmarks.utkface --leave-out-race Asian --name asian_left_out   # robustness.py --left-out scores it
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.common import HELD_OUT_RULE, manifest_with_landmarks, save
from faceattr.config import load_config
from faceattr.data.manifest import read_manifest, write_manifest
from faceattr.reports.evaluate import evaluate
from faceattr.training import train

# the recipe shipped before 2026-11-24 (lite0 144 px, 10 epochs, best by validation loss, no robustness aug)
OLD_DEFAULT = [
    "data.image_size=144",
    "train.monitor=val/loss",
    "train.monitor_mode=min",
    "model.backbone=tf_efficientnet_lite0",
    "augment.framing_jitter=0",
    "augment.low_resolution=0",
    "augment.blur=0",
    "augment.jpeg=0",
    "augment.color=0",
    "augment.grayscale=0",
    "augment.occlusion=0",
    "augment.synthetic_mask_p=0",
    "train.epochs=10",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/utkface_age_gender.yaml"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-recipe"), help="working folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --work from its last.ckpt")
    parser.add_argument("--old-default", action="store_true", help="train the recipe shipped before the union")
    parser.add_argument("--name", default="utkface", help="results file name and run name")
    parser.add_argument("--leave-out-race", default="", help="train without this race's faces (e.g. Asian)")
    parser.add_argument("overrides", nargs="*", help="extra config overrides, e.g. train.epochs=3")
    args = parser.parse_args()
    manifest = manifest_with_landmarks(args.work)
    if args.leave_out_race:  # a population the training set lacks; its faces are scored by robustness.py --left-out
        frame = read_manifest(manifest)
        manifest = args.work / f"{manifest.stem}.without-{args.leave_out_race}.csv"
        write_manifest(frame[frame["race"] != args.leave_out_race], manifest)
    cfg = load_config(
        args.config,
        [
            f"data.manifest={manifest}",
            "train.progress_bar=false",
            f"run.dir={args.work / 'runs'}",
            f"run.name={args.name}",
            "run.trackers=[]",
            *(OLD_DEFAULT if args.old_default else []),
            *args.overrides,
        ],
    )
    start = time.time()
    result = train(cfg, resume=args.resume, overwrite=not args.resume)
    train_s = time.time() - start
    scores = evaluate(result.best_checkpoint, out_dir=args.work / f"eval-{args.name}").metrics
    rows = [
        {
            "model": f"faceattr {cfg.model.backbone} {cfg.data.image_size}px ({args.name})",
            "gender_acc": round(scores["gender"]["accuracy"], 4),
            "age_mae": round(scores["age"]["mae"], 3),
            "age_cs5": round(scores["age"]["cs5"], 4),
            "age_bin_f1": round(scores["age_bin"]["f1"], 4),
            "train_min": round(train_s / 60, 1),
            "best_epoch": result.best_epoch,
            "held_out": scores["gender"]["n"],
        }
    ]
    print(f"checkpoint: {result.best_checkpoint}\nevaluation folder: {args.work / f'eval-{args.name}'}")
    save(
        args.name,
        rows,
        list(rows[0]),
        {**vars(args), "config": str(args.config), "held_out_rule": HELD_OUT_RULE, "overrides": args.overrides},
    )


if __name__ == "__main__":
    main()
