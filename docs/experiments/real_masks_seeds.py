"""Mean +- std over training seeds of `benchmarks.real_masks` runs, one row per recipe variant.

Each variant is a results-name prefix whose runs differ only in --seed (e.g. rm_frac_s42, rm_frac_s1, rm_frac_s2).
Decisions between variants are made on the masks-real "dev" half (f1_dev); the "test" half is reported beside it.

    python -m docs.experiments.real_masks_seeds rm_base:"px margins" rm_frac:"fraction margins" --name real_masks_seeds
"""

from __future__ import annotations

import argparse

import numpy as np

from benchmarks.common import RESULTS, STUDIES, mean_std, save, saved_rows

METRICS = ("macro_f1", "f1_dev", "f1_test", "worn_called_incorrect", "worn_called_not_worn", "bare_called_worn")


def summarize(prefix: str, label: str) -> dict:
    runs = sorted({p.stem: p for folder in (STUDIES, RESULTS) for p in folder.glob(f"{prefix}_s*.json")}.values())
    if not runs:
        raise SystemExit(f"no {prefix}_s*.json in {RESULTS} or {STUDIES}: run benchmarks.real_masks --name")
    rows = [saved_rows(r.stem) for r in runs]
    real = [next(x for x in r if x["scored_on"] == "masks-real") for r in rows]
    drawn = [next(x for x in r if x["scored_on"].startswith("drawn")) for r in rows]
    out = {"variant": label, "seeds": ", ".join(r.stem.rsplit("_s", 1)[1] for r in runs)}
    for key in METRICS:
        out[key] = mean_std([r[key] for r in real])
    out["drawn_f1"] = f"{np.mean([d['macro_f1'] for d in drawn]):.3f}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", help="PREFIX:LABEL, e.g. rm_frac:'fraction margins'")
    parser.add_argument("--name", default="real_masks_seeds")
    args = parser.parse_args()
    rows = [summarize(*(v.split(":", 1) if ":" in v else (v, v))) for v in args.variants]
    save(args.name, rows, ["variant", "seeds", *METRICS, "drawn_f1"], {"variants": args.variants}, folder=STUDIES)


if __name__ == "__main__":
    main()
