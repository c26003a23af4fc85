"""`model_card.md`: what a model predicts, what it was trained on, how, how well, where it is weaker, and what it is
for. Written by every `evaluate` from the checkpoint's config, the run folder and the evaluation itself, so it is
true by construction (nothing in it is typed by hand)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from faceattr.atomic import write_text
from faceattr.data.manifest import read_manifest
from faceattr.errors import FaceAttrError
from faceattr.labels import GENDER_NAMES, MASK_NAMES, MAX_AGE, age_bin_names
from faceattr.reports.groups import markdown

# what each source reader's data may be used for (the manifest's `source` column)
SOURCE_LICENCES = {
    "utkface": "UTKFace: non-commercial research use only",
    "competition": "mask-competition data: the competition's rules",
    "competition-eval": "mask-competition data: the competition's rules",
    "imdb-wiki": "IMDB-WIKI: academic research only",
    "appa-real": "ChaLearn APPA-REAL: research use",
    "image-folder": "an image-folder set: see its own licence",
    "csv": "a user's CSV: see its own licence",
}
GAP_WORTH_NOTING = {"gender_acc": 0.05, "age_mae": 2.0, "age_cs5": 0.1, "age_bin_f1": 0.1, "mask_f1": 0.1}


def _counts(frame: pd.DataFrame, old_threshold: int) -> list[str]:
    lines = []
    for column, names in (("mask", MASK_NAMES), ("gender", GENDER_NAMES), ("age_bin", age_bin_names(old_threshold))):
        counts = frame[column].value_counts()
        parts = [f"{names[i]} {int(counts.get(i, 0))}" for i in range(len(names))]
        if counts.get(-1):
            parts.append(f"unknown {int(counts[-1])}")
        lines.append(f"- {column}: " + ", ".join(parts))
    for column in ("source", "race"):
        if column in frame:
            counts = frame[column].astype(str).value_counts()
            lines.append(f"- {column}: " + ", ".join(f"{k} {int(v)}" for k, v in counts.items()))
    return lines


def write_model_card(predictor, eval_frame: pd.DataFrame, summary: dict, path: Path) -> Path:
    """Write the card for `predictor`'s model evaluated on `eval_frame` (`summary` = metrics.json's content)."""
    cfg, info = predictor.cfg, predictor.describe()
    lines = [
        f"# Model card: {Path(predictor.source).name}",
        "",
        *_what_it_predicts(cfg, info["heads"]),
        *_training_data(cfg, Path(predictor.source).parent.parent),
        *_recipe(cfg, info),
        *_held_out(summary),
        *_known_limits(cfg.faces, summary),
        *INTENDED_USE,
    ]
    return write_text(path, "\n".join(lines))


INTENDED_USE = [
    "",
    "## Intended use",
    "",
    "Research, prototypes and competitions: estimating mask wear, gender presentation and age from face photos "
    "in aggregate. Not for decisions about individual people (access, eligibility, policing), and not for "
    "inferring identity; a person's gender identity is not something a photo shows.",
    "",
]


def _what_it_predicts(cfg, heads: list[str]) -> list[str]:
    names = {"mask": MASK_NAMES, "gender": GENDER_NAMES, "age_bin": age_bin_names(cfg.data.old_threshold)}
    lines = ["## What it predicts", ""]
    for task in heads:  # an ensemble of per-task models lists every member's heads
        what = (
            ", ".join(names[task]) if task in names else f"age in years (0-{MAX_AGE}, the distribution's expectation)"
        )
        lines.append(f"- {task}: {what}")
    return lines


def _training_data(cfg, run_dir: Path) -> list[str]:
    """The manifest's size, counts and licences, and the run's training summary when the run folder has one."""
    lines = ["", "## Data it was trained on", ""]
    try:
        train = read_manifest(cfg.data.manifest, cfg.data.old_threshold)
        lines.append(
            f"Manifest `{Path(cfg.data.manifest).name}`: {len(train)} images of {train['person_id'].nunique()} "
            f"people (training and held-out folds together; fold {cfg.data.fold} of {cfg.data.folds} held out)."
        )
        lines += _counts(train, cfg.data.old_threshold)
        sources = sorted(set(train["source"].astype(str)))
        lines += ["", "Licences: " + "; ".join(SOURCE_LICENCES.get(s, f"{s}: unknown") for s in sources) + "."]
    except (FaceAttrError, OSError):
        lines.append(f"The training manifest ({cfg.data.manifest}) is not readable here; see the run folder.")
    summary_file = run_dir / "train_summary.json"
    if summary_file.is_file():
        trained = json.loads(summary_file.read_text())
        lines.append(
            f"Training rows {trained.get('train_size')}, validation rows {trained.get('val_size')}, "
            f"best epoch {trained.get('best_epoch')} by {trained.get('monitor')}."
        )
    return lines


def _recipe(cfg, info: dict) -> list[str]:
    """Backbone, weights, size, schedule, heads, augmentation and class shares; an ensemble names its members."""
    from faceattr.models.backbones import get_spec

    spec = get_spec(cfg.model.backbone)
    augment = {k: v for k, v in asdict(cfg.augment).items() if isinstance(v, float) and v > 0}
    members = info.get("members", [])
    lines = ["", "## Recipe", ""]
    if members:
        lines.append(
            f"An ensemble of {len(members)} models ({info.get('voting')} voting): "
            + "; ".join(f"{m['source']} ({', '.join(m['heads'])})" for m in members)
            + ". Each head is voted on by the members that have it; the recipe below is the first's."
        )
    lines += [
        f"- backbone: {cfg.model.backbone}; pretrained weights: {cfg.model.pretrained}"
        + (f" ({spec.weights_source})" if spec.weights_source else ""),
        f"- image size {cfg.data.image_size} px, {cfg.train.epochs} epochs, batch {cfg.data.batch_size}, "
        f"{cfg.optim.name} lr {cfg.optim.lr}, {cfg.scheduler.name} schedule, loss {cfg.loss.name}",
        f"- heads {', '.join(cfg.model.heads)}; exact-age target smoothing σ {cfg.model.age_sigma} years",
        "- augmentation: " + ", ".join(f"{k} {v:g}" for k, v in augment.items()),
    ]
    if cfg.distill.peer:
        lines.append(
            f"- taught by {cfg.distill.peer} (distill.peer): its probabilities on the training faces make "
            f"{cfg.distill.weight:g} of the target"
        )
    if cfg.faces.align:
        lines.append(
            f"- faces aligned by their 5 landmarks (faces.align, template {cfg.faces.align_template}, "
            f"padding {cfg.faces.align_padding:g})"
        )
    lines += [
        f"- predictions moved from the training set's class shares to {head} {target} (priors.target; "
        "the results below include it)"
        for head, target in cfg.priors.target.items()
    ]
    return lines


def _held_out(summary: dict) -> list[str]:
    """The metrics table and each per-group report."""
    lines = [
        "",
        "## Held-out results",
        "",
        f"{summary['n_images']} images ({summary['skipped_images']} unreadable, skipped).",
        "",
        "| task | n | macro F1 | accuracy | MAE | CS@5 |",
        "|---|---|---|---|---|---|",
    ]
    for task, m in summary["metrics"].items():
        cells = [f"{m[k]:.3f}" if k in m else "" for k in ("f1", "accuracy", "mae", "cs5")]
        lines.append(f"| {task} | {m.get('n', '')} | " + " | ".join(cells) + " |")
    lines.append("")
    for report in summary.get("groups", []):
        lines.append(markdown(report))
    return lines


def _known_limits(faces, summary: dict) -> list[str]:
    """Groups too small to judge, gaps worth noting, and the framing (detector and margins) the model expects."""
    from faceattr.faces.detect import detector_family

    lines = ["## Known limits", ""]
    for report in summary.get("groups", []):
        small = [r["group"] for r in report["table"] if r["small"]]
        if small:
            lines.append(
                f"- by {report['by']}: too few held-out faces to judge {', '.join(small)} "
                f"(fewer than {report['min_n']})"
            )
        for metric, gap in report["gaps"].items():
            if gap["gap"] >= GAP_WORTH_NOTING.get(metric, 0.1):
                lines.append(
                    f"- by {report['by']}: {metric} is worst for {gap['worst']} and best for "
                    f"{gap['best']} (gap {gap['gap']:.3f})"
                )
    lines.append(
        f"- expects faces found by {detector_family(faces.detector)} and cropped like its training images: margins "
        f"{faces.margins} ({faces.margin_unit}); `faceattr predict` crops photos that way"
        + ("" if faces.trained_on_crops else " only with --faces (it was trained on whole images)")
    )
    if not summary.get("groups"):
        lines.append("- no per-group evaluation was run (`faceattr evaluate CKPT --by race,gender,age_decade`)")
    return lines
