"""`faceattr evaluate`: a checkpoint on its validation fold (or any labelled manifest) -> metrics and pictures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.atomic import refuse_file_as_folder, write_csv, write_json, write_text
from faceattr.data.images import SkipReport
from faceattr.data.landmarks import parse_points
from faceattr.data.manifest import read_manifest, unlabelled_heads
from faceattr.data.split import load_or_make_folds
from faceattr.errors import FaceAttrError, ManifestError
from faceattr.inference.load import load_predictor
from faceattr.inference.predictor import BasePredictor
from faceattr.labels import CLASSIFICATION_TASKS, GENDER_NAMES, MASK_NAMES, NUM_CLASSES, age_bin_names, class_name
from faceattr.reports.gallery import mistake_gallery
from faceattr.reports.groups import group_report, markdown, plot_groups
from faceattr.reports.metrics import (
    age_metrics,
    error_by_decade,
    per_class_report,
    plot_confusion,
    plot_error_by_decade,
    task_metrics,
)
from faceattr.reports.model_card import write_model_card


@dataclass
class EvalResult:
    out_dir: Path
    metrics: dict[str, dict[str, float]]
    predictions: pd.DataFrame


def evaluation_rows(
    predictor: BasePredictor, manifest: str | None, fold: int | None, split: str | None = None
) -> pd.DataFrame:
    """The rows to score: the checkpoint's own validation rows unless another manifest, fold or split is given."""
    d = predictor.cfg.data
    path = manifest or d.manifest
    frame = read_manifest(path, d.old_threshold)
    frame = frame[frame["source"] != "competition-eval"].reset_index(drop=True)
    if split is None and manifest is None and fold is None and d.use_split_column:
        split = "valid"
    if split is not None:
        if "split" not in frame:
            raise ManifestError(f"{path}: no 'split' column to select '{split}' from")
        values = sorted(frame["split"].dropna().astype(str).unique())
        if split not in values:
            raise ManifestError(f"{path}: no row has split '{split}'; its splits: {', '.join(values) or 'none'}")
        frame = frame[frame["split"] == split].reset_index(drop=True)
    elif manifest is None or fold is not None:
        if fold is not None and not 0 <= fold < d.folds:
            raise ManifestError(f"--fold {fold}: the model's split has folds 0..{d.folds - 1}")
        folds = load_or_make_folds(frame, path, d.folds, d.split_seed)
        frame = frame[folds == (d.fold if fold is None else fold)].reset_index(drop=True)
    if frame.empty:
        raise ManifestError(f"{path}: no labelled rows to evaluate")
    if len(unlabelled_heads(frame, predictor.tasks)) == len(predictor.tasks):  # no truth to score against
        raise ManifestError(
            f"{path}: no row has a label for the model's heads ({', '.join(predictor.tasks)}): evaluate scores "
            "predictions against the truth; `faceattr predict` labels faces that have none"
        )
    return frame


# every file an evaluation writes (per task where a name has *): a folder holding any of them holds a report
REPORT_FILES = (
    "metrics.json",
    "predictions.csv",
    "model_card.md",
    "per_class.csv",
    "skipped.csv",
    "groups.md",
    "groups_*.png",
    "confusion_*.png",
    "mistakes_*.png",
    "age_error_by_decade.*",
)


def check_report_folder(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an --out that is a file or already holds an evaluation report (unless `overwrite`)."""
    refuse_file_as_folder(out, "--out")
    existing = [found for pattern in REPORT_FILES for found in sorted(out.glob(pattern))] if out.is_dir() else []
    if existing and not overwrite:
        raise FaceAttrError(
            f"{existing[0]} already exists: {out} holds a report; pick another --out or pass --overwrite to replace it"
        )


def evaluate(
    checkpoint: str | Path | list,
    manifest: str | None = None,
    fold: int | None = None,
    out_dir: str | Path | None = None,
    batch_size: int = 64,
    split: str | None = None,
    voting: str = "soft",
    tta: list[str] | None = None,
    by: list[str] | None = None,
    min_group: int = 30,
    priors: dict[str, list[float]] | None = None,
    peers: bool = True,
    overwrite: bool = False,
) -> EvalResult:
    """Score one model, or an ensemble when `checkpoint` is a list (the first one's fold is scored).

    The report goes to `out_dir`, or the run's own eval/ folder (replaced on every evaluation); a folder the user
    names that already holds a report is refused unless `overwrite`."""
    first = Path(checkpoint[0] if isinstance(checkpoint, list | tuple) else checkpoint)
    out = Path(out_dir) if out_dir else first.parent.parent / "eval"
    check_report_folder(out, overwrite or not out_dir)
    predictor = load_predictor(checkpoint, voting=voting, tta=tta, priors=priors, peers=peers)
    frame = evaluation_rows(predictor, manifest, fold, split)
    frame, preds = predict_rows(predictor, frame, out, batch_size)
    labels, old = preds.labels(), predictor.cfg.data.old_threshold
    metrics = classification_reports(frame, labels, preds.probs, old, out)
    if "age_years" in labels:
        metrics["age"] = age_report(frame, labels["age_years"], out)
    table = predictions_table(frame, labels, preds.probs)
    write_csv(table, out / "predictions.csv")
    groups = group_reports(frame, labels, by or [], min_group, old, out)
    summary = {
        "checkpoint": [str(c) for c in checkpoint] if isinstance(checkpoint, list | tuple) else str(checkpoint),
        "n_images": len(frame),
        "skipped_images": len(preds.skipped),
        "metrics": metrics,
        "groups": groups,
    }
    write_json(summary, out / "metrics.json")
    write_model_card(predictor, frame, summary, out / "model_card.md")
    return EvalResult(out, metrics, table)


def predict_rows(predictor: BasePredictor, frame: pd.DataFrame, out: Path, batch_size: int):
    """The model's answers for the rows it could read (the others listed in the report's skipped.csv), and those
    rows."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "skipped.csv").unlink(missing_ok=True)  # this evaluation's own report, not appended to an old one
    skips = SkipReport(out / "skipped.csv")
    # a model trained aligned sees each crop aligned by the manifest's landmarks, as in training
    points = [parse_points(p, 5) for p in frame["landmarks"]] if "landmarks" in frame else None
    preds = predictor.predict_paths(frame["path"].tolist(), batch_size=batch_size, skips=skips, landmarks=points)
    if not preds.paths:
        raise FaceAttrError(
            f"none of the {len(frame)} images to evaluate could be read; the reasons are in {skips.csv_path} "
            "(moved or deleted images? re-run `faceattr prepare`/`crop` where the data now lives)"
        )
    return frame.iloc[preds.indices].reset_index(drop=True), preds


def classification_reports(
    frame: pd.DataFrame, labels: dict, probs: dict, old_threshold: int, out: Path
) -> dict[str, dict[str, float]]:
    """Per classification task (and the 18 classes): metrics, per-class rows (per_class.csv), the confusion
    picture and, where the head has probabilities, the gallery of its most confident mistakes."""
    names = {
        "mask": list(MASK_NAMES),
        "gender": list(GENDER_NAMES),
        "age_bin": list(age_bin_names(old_threshold)),
        "label18": [class_name(c, old_threshold) for c in range(NUM_CLASSES)],
    }
    metrics: dict[str, dict[str, float]] = {}
    reports = []
    for task in [t for t in (*CLASSIFICATION_TASKS, "label18") if t in labels]:
        y_true, y_pred = frame[task].to_numpy(), labels[task]
        metrics[task] = task_metrics(y_true, y_pred)
        if not metrics[task]["n"]:  # e.g. gender on a set labelled for masks only: scored as n = 0, nothing drawn
            continue
        report = per_class_report(y_true, y_pred, names[task])
        report.insert(0, "task", task)
        reports.append(report)
        title = f"{task}: macro F1 {metrics[task]['f1']:.3f}, accuracy {metrics[task]['accuracy']:.3f}"
        plot_confusion(y_true, y_pred, names[task], title, out / f"confusion_{task}.png")
        if task in probs:  # the per-task heads have probabilities; label18 is their combination
            gallery_title = f"{task}: most confident mistakes per true class"
            paths = frame["path"].tolist()
            mistake_gallery(paths, y_true, probs[task], names[task], gallery_title, out / f"mistakes_{task}.png")
    write_csv(pd.concat(reports), out / "per_class.csv")
    return metrics


def age_report(frame: pd.DataFrame, predicted_age: np.ndarray, out: Path) -> dict[str, float]:
    """Age metrics (real and, where the manifest has it, apparent age) and the error by decade, table and picture."""
    true_age = frame["age"].to_numpy(float)
    apparent = frame["apparent_age"].to_numpy(float) if "apparent_age" in frame else None
    metrics = age_metrics(true_age, predicted_age, apparent)
    if metrics["n"]:
        decades = error_by_decade(true_age, predicted_age)
        write_csv(decades, out / "age_error_by_decade.csv")
        title = f"age MAE {metrics['mae']:.2f} years, CS@5 {metrics['cs5']:.2f}"
        plot_error_by_decade(decades, out / "age_error_by_decade.png", title)
    return metrics


def predictions_table(frame: pd.DataFrame, labels: dict, probs: dict) -> pd.DataFrame:
    """One row per image: its labels, the predictions and the class probabilities (for stacking out-of-fold
    predictions)."""
    table = frame[["path", "person_id", *[t for t in (*CLASSIFICATION_TASKS, "label18") if t in frame]]].copy()
    if "age" in frame:
        table["age"] = frame["age"]
    for task, values in labels.items():
        table[f"pred_{task}"] = np.round(values, 2) if task == "age_years" else values
    for task, p in probs.items():
        if task != "age":
            for c in range(p.shape[1]):
                table[f"p_{task}_{c}"] = np.round(p[:, c], 5)
    return table


def group_reports(
    frame: pd.DataFrame, labels: dict, specs: list[str], min_group: int, old_threshold: int, out: Path
) -> list[dict]:
    """One report per `--by` spec, each with its pictures; all of them in groups.md."""
    groups = []
    for spec in specs:
        report = group_report(frame, labels, spec, min_group, old_threshold)
        plot_groups(report, out)
        groups.append(report)
    if groups:
        write_text(out / "groups.md", "# Accuracy per group\n\n" + "\n".join(markdown(g) for g in groups))
    return groups
