"""Robustness rows averaged over training seeds: one variant = the same recipe trained with different seeds.

Each run is a (results name, model label) pair from `benchmarks.robustness` (results/<name>.json). A row's cell
is the mean over the variant's seeds ± their standard deviation (half the range for two), so a difference between
variants can be read against the noise of retraining.

    python -m docs.experiments.robustness_seeds \
        "CPU preset=robustness_presets_tta:CPU preset + hflip" \
        "CPU preset=robustness_cpu_s7_tta:CPU preset, seed 7 + hflip" \
        "+ distribution+l1=robustness_cpu_l1_tta:CPU preset, distribution+l1 + hflip" ... --name robustness_seeds
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from benchmarks.common import STUDIES, mean_std, save, saved_file, saved_rows

METRICS = ("gender_acc", "age_mae", "age_bin_f1")


def runs(spec: str) -> tuple[str, list[dict]]:
    """'VARIANT=RESULTS:MODEL' -> (variant, that model's rows in results/RESULTS.json)."""
    variant, _, source = spec.partition("=")
    name, _, model = source.partition(":")
    path = saved_file(name)
    if not variant or not model or not path.is_file():
        raise SystemExit(f"{spec!r}: expected VARIANT=RESULTS_NAME:MODEL_LABEL with {path} present")
    rows = [r for r in saved_rows(name) if r["model"] == model]
    if not rows:
        raise SystemExit(f"{path} has no rows for model {model!r}")
    return variant, rows


def summarize(specs: list[str]) -> list[dict]:
    """One output row per (variant, robustness row): seeds, and mean and spread of each metric."""
    cells: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for spec in specs:
        variant, rows = runs(spec)
        for row in rows:
            cells[(variant, row["row"])].append(row)
    out = []
    for (variant, row), seen in cells.items():
        entry = {"variant": variant, "row": row, "n": seen[0]["n"], "seeds": len(seen)}
        for metric in METRICS:
            entry[metric] = mean_std([s[metric] for s in seen], 2 if metric == "age_mae" else 3)
        out.append(entry)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="VARIANT=RESULTS_NAME:MODEL_LABEL (one per trained seed)")
    parser.add_argument("--name", default="robustness_seeds")
    args = parser.parse_args()
    rows = summarize(args.runs)
    columns = ["variant", "row", "n", "seeds", *METRICS]
    save(args.name, rows, columns, {"runs": args.runs, "cell": "mean ± std over seeds"}, folder=STUDIES)


if __name__ == "__main__":
    main()
