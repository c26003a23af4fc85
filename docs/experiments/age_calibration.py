"""Age calibration after training: does mapping the predicted age onto the true age lower the error?

Why: the DEX expectation pulls ages toward the middle (the over-70s come out years too young, children too old),
and a monotone map from predicted to true age, fitted on labelled faces, is the cheap remedy to try before
retraining. Measured honestly by cross-fitting: the held-out fold's people split in two halves at random, a map
fitted on one half is scored on the other and the other way round, five random splits; no face scores a map it
helped fit. Maps: isotonic regression (sklearn) and a straight line (least squares).

    python -m docs.experiments.age_calibration --checkpoint runs/utkface_age_gender/checkpoints/best.ckpt --tta hflip
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import f1_score

from benchmarks.common import HELD_OUT_RULE, STUDIES, predict, save, utkface_union
from faceattr.inference.load import load_predictor
from faceattr.inference.tta import VIEWS_HELP, parse_views
from faceattr.labels import age_to_bin

GROUPS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "all": lambda age: np.ones(len(age), dtype=bool),
    "children (<13)": lambda age: age < 13,
    "13-29": lambda age: (age >= 13) & (age < 30),
    "30-59": lambda age: (age >= 30) & (age < 60),
    "60-70": lambda age: (age >= 60) & (age <= 70),
    "over 70": lambda age: age > 70,
}


def isotonic(fit_pred: np.ndarray, fit_true: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return IsotonicRegression(out_of_bounds="clip").fit(fit_pred, fit_true).predict


def straight_line(fit_pred: np.ndarray, fit_true: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    slope, intercept = np.polyfit(fit_pred, fit_true, 1)
    return lambda pred: slope * pred + intercept


MAPS = {"isotonic": isotonic, "straight line": straight_line}


def cross_fitted(pred: np.ndarray, true: np.ndarray, persons: np.ndarray, fit, seed: int) -> np.ndarray:
    """Each face's calibrated age from a map fitted on the other half of the people."""
    rng = np.random.default_rng(seed)
    people = np.unique(persons)
    first = np.isin(persons, rng.choice(people, len(people) // 2, replace=False))
    out = np.empty_like(pred)
    for fit_on in (first, ~first):
        out[~fit_on] = fit(pred[fit_on], true[fit_on])(pred[~fit_on])
    return out


def rows_for(name: str, pred: np.ndarray, true: np.ndarray) -> list[dict]:
    """MAE per age group, and the age-bin macro F1 of the ages binned (<30 / 30-59 / 60+)."""
    bins_f1 = f1_score(age_to_bin(true), age_to_bin(np.clip(pred, 0, 100)), average="macro")
    return [
        {
            "ages": name,
            "group": group,
            "n": int(pick(true).sum()),
            "age_mae": round(float(np.abs(pred - true)[pick(true)].mean()), 3),
            "mean_error": round(float((pred - true)[pick(true)].mean()), 2),
            "age_bin_f1_binned": round(float(bins_f1), 4) if group == "all" else "",
        }
        for group, pick in GROUPS.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--tta", default=None, help=VIEWS_HELP)
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-robustness"))
    parser.add_argument("--repeats", type=int, default=5, help="random halvings of the people")
    parser.add_argument("--name", default="age_calibration")
    args = parser.parse_args()
    _, frame = utkface_union(args.work)
    test = frame[frame["fold"] == 0].reset_index(drop=True)
    model = load_predictor(args.checkpoint, tta=parse_views(args.tta), peers=False)
    images = [np.asarray(Image.open(p).convert("RGB")) for p in test["path"]]
    pred = predict(model, images, batch=128)["age_years"].astype(np.float64)
    true, persons = test["age"].to_numpy(np.float64), test["person_id"].astype(str).to_numpy()
    rows = rows_for("as predicted", pred, true)
    for name, fit in MAPS.items():
        runs = [rows_for(name, cross_fitted(pred, true, persons, fit, seed), true) for seed in range(args.repeats)]
        for parts in zip(*runs, strict=True):  # the same group across the repeats: their mean
            rows.append(
                {
                    **parts[0],
                    **{
                        k: round(float(np.mean([p[k] for p in parts])), 3 if k == "age_mae" else 4)
                        for k in ("age_mae", "mean_error", "age_bin_f1_binned")
                        if parts[0][k] != ""
                    },
                }
            )
    settings = {"checkpoint": str(args.checkpoint), "tta": args.tta, "held_out": HELD_OUT_RULE, "repeats": args.repeats}
    save(
        args.name, rows, ["ages", "group", "n", "age_mae", "mean_error", "age_bin_f1_binned"], settings, folder=STUDIES
    )


if __name__ == "__main__":
    main()
