"""k-fold cross-validation: train and score every fold, mean +- std, out-of-fold predictions."""

from __future__ import annotations

import copy
import statistics
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from faceattr.atomic import write_csv, write_json
from faceattr.config import Config
from faceattr.errors import ConfigError
from faceattr.reports.evaluate import evaluate
from faceattr.training.fit import train_or_keep

SCORES = ("label18", "mask", "gender", "age_bin")


@dataclass
class CVResult:
    folds: pd.DataFrame  # one row per fold: scores and best epoch
    summary: dict
    out_dir: Path


CV_FILES = ("folds.csv", "oof_predictions.csv", "cv_summary.json")


def cross_validate(
    cfg: Config,
    folds: list[int] | None = None,
    overwrite: bool = False,
    full_data: bool = False,
    resume: bool = False,
) -> CVResult:
    """Train and score every fold (or the chosen ones); write per-fold scores, mean +- std, best epochs and
    out-of-fold predictions; optionally retrain on all data for the median best epoch. With `resume`, folds that
    finished are kept and scored again, the others resumed or started."""
    chosen = folds if folds is not None else list(range(cfg.data.folds))
    out_dir = Path(cfg.run.dir) / f"{cfg.run.name}-cv"
    if not (overwrite or resume) and (done := [n for n in CV_FILES if (out_dir / n).exists()]):
        raise ConfigError(
            f"{out_dir} already holds a cross-validation ({done[0]}); pass --resume to keep its finished folds and "
            "train the rest, --overwrite to train every fold again, or pick another run.name"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, oof = [], []
    for fold in chosen:
        fold_cfg = copy.deepcopy(cfg)
        fold_cfg.data.fold = fold
        fold_cfg.run.name = f"{cfg.run.name}-fold{fold}"
        result = train_or_keep(fold_cfg, overwrite, resume)
        scored = evaluate(result.best_checkpoint)
        row = {"fold": fold, "best_epoch": result.best_epoch, "checkpoint": str(result.best_checkpoint)}
        for task in SCORES:
            if task in scored.metrics:
                row[f"f1_{task}"] = scored.metrics[task]["f1"]
                row[f"acc_{task}"] = scored.metrics[task]["accuracy"]
        if "age" in scored.metrics:
            row["age_mae"] = scored.metrics["age"]["mae"]
        rows.append(row)
        oof.append(scored.predictions.assign(fold=fold))
    table = pd.DataFrame(rows)
    write_csv(table, out_dir / "folds.csv")
    write_csv(pd.concat(oof, ignore_index=True), out_dir / "oof_predictions.csv")
    metrics = [c for c in table.columns if c.startswith(("f1_", "acc_", "age_mae"))]
    summary = {
        "folds": chosen,
        "mean": {m: float(table[m].mean()) for m in metrics},
        "std": {m: float(table[m].std(ddof=0)) for m in metrics},
        "best_epochs": table["best_epoch"].tolist(),
        "median_best_epoch": int(statistics.median(table["best_epoch"])),
    }
    if full_data:
        full = copy.deepcopy(cfg)
        full.train.full_data = True
        full.train.epochs = summary["median_best_epoch"] + 1  # epochs are counted from 0
        full.run.name = f"{cfg.run.name}-full"
        summary["full_data_checkpoint"] = str(train_or_keep(full, overwrite, resume).last_checkpoint)
    write_json(summary, out_dir / "cv_summary.json")
    return CVResult(table, summary, out_dir)
