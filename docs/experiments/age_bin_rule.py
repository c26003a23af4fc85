"""The age bin from the age-bin head, or from the exact-age head's 101-way distribution?

Why: the preset has both heads; `decide` takes the bin from the age-bin head's argmax. The exact-age head's
distribution gives a bin too (its expectation's bin, or the bin holding most of its mass), and the two heads could
be averaged. No training: each model's probabilities on a held-out fold, every rule scored on the same faces.

    python -m docs.experiments.age_bin_rule --manifest M.framed.csv --fold 1 \\
        --checkpoint /tmp/rec/runs/preset/checkpoints/best.ckpt --checkpoint /tmp/rec/runs/preset-seed-2/...
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from benchmarks.common import STUDIES, save
from faceattr.inference.load import load_predictor
from faceattr.labels import age_to_bin, expected_age
from faceattr.reports.evaluate import evaluation_rows, predict_rows


def bin_mass(age_probs: np.ndarray, old_threshold: int) -> np.ndarray:
    """Each face's probability of <30, 30..old-1 and >= old years, summed from the exact-age distribution."""
    ages = np.arange(age_probs.shape[1])
    edges = [ages < 30, (ages >= 30) & (ages < old_threshold), ages >= old_threshold]
    return np.stack([age_probs[:, inside].sum(1) for inside in edges], 1)


def rules(probs: dict[str, np.ndarray], old_threshold: int) -> dict[str, np.ndarray]:
    mass = bin_mass(probs["age"], old_threshold)
    return {
        "age-bin head (now)": probs["age_bin"].argmax(1),
        "expected age's bin": np.asarray(age_to_bin(expected_age(probs["age"]), old_threshold)).reshape(-1),
        "bin of most age mass": mass.argmax(1),
        "head + age mass": (probs["age_bin"] + mass).argmax(1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", required=True, help="repeat for several models")
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--fold", type=int, default=1, help="the held-out fold scored (1 = the dev fold)")
    parser.add_argument("--name", default="age_bin_rule")
    args = parser.parse_args()
    rows = []
    for checkpoint in args.checkpoint:
        predictor = load_predictor(checkpoint, peers=False)
        frame = evaluation_rows(predictor, args.manifest, args.fold, None)
        with tempfile.TemporaryDirectory() as scratch:
            frame, preds = predict_rows(predictor, frame, Path(scratch), 64)
        truth, known = frame["age_bin"].to_numpy(), frame["age_bin"].to_numpy() >= 0
        row = {"checkpoint": checkpoint, "faces": int(known.sum())}
        for name, pred in rules(preds.probs, predictor.cfg.data.old_threshold).items():
            row[name] = round(float(f1_score(truth[known], pred[known], average="macro")), 4)
        rows.append(row)
    columns = list(rows[0])
    save(args.name, rows, columns, {"manifest": args.manifest, "fold": args.fold}, folder=STUDIES)


if __name__ == "__main__":
    main()
