"""Accuracy per group of people: the numbers users of age/gender tools ask about (women, children, Asian faces).

`faceattr evaluate CKPT --by race,gender,age_bin` (any manifest column, or a combination `race+gender`; `age_decade`
is derived from the true age) scores each group on the same metrics as the whole: n, gender accuracy, age MAE,
CS@5, age-bin and mask macro F1 (over the classes the group's truth holds: a group of children holds one age bin,
and each bin it lacks would only add a zero). Each metric's gap between the best and the worst group is
reported; groups under `min_n` faces are shown but flagged (their numbers are noise), and left out of the gaps.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from faceattr.atomic import save_figure
from faceattr.errors import ConfigError
from faceattr.labels import DEFAULT_OLD_THRESHOLD, GENDER_NAMES, age_bin_names

METRICS = ("gender_acc", "age_mae", "age_cs5", "age_bin_f1", "mask_f1")
LOWER_IS_BETTER = {"age_mae"}


def group_keys(frame: pd.DataFrame, spec: str, old_threshold: int = DEFAULT_OLD_THRESHOLD) -> pd.Series:
    """Each row's group for `spec` ('race', 'race+gender', 'age_decade'), with readable names."""
    parts = []
    for column in (c.strip() for c in spec.split("+")):
        if column == "age_decade":
            values = (np.floor(frame["age"] / 10) * 10).map(
                lambda d: "unknown" if np.isnan(d) else f"{int(d)}-{int(d) + 9}"
            )
        elif column not in frame:
            raise ConfigError(
                f"--by {spec}: no column '{column}' in the manifest (columns: {', '.join(frame.columns)})"
            )
        elif column == "gender":
            values = frame[column].map(lambda g: GENDER_NAMES[g] if g in (0, 1) else "unknown")
        elif column == "age_bin":
            names = age_bin_names(old_threshold)
            values = frame[column].map(lambda b, names=names: names[b] if b in (0, 1, 2) else "unknown")
        else:
            values = frame[column].astype(str)
        parts.append(values.astype(str))
    keys = parts[0]
    for more in parts[1:]:
        keys = keys + " / " + more
    return keys


def scores(truth: pd.DataFrame, labels: dict[str, np.ndarray]) -> dict[str, float]:
    """n, gender accuracy, age MAE and CS@5, age-bin and mask macro F1 (over the classes the truth holds), on the
    rows whose label is known."""
    out: dict[str, float] = {"n": len(truth)}
    if "gender" in labels and (truth["gender"] >= 0).any():
        known = (truth["gender"] >= 0).to_numpy()
        out["gender_acc"] = float((labels["gender"][known] == truth["gender"].to_numpy()[known]).mean())
    if "age_years" in labels and truth["age"].notna().any():
        known = truth["age"].notna().to_numpy()
        error = np.abs(labels["age_years"][known] - truth["age"].to_numpy()[known])
        out["age_mae"], out["age_cs5"] = float(error.mean()), float((error <= 5).mean())
    for task, key in (("age_bin", "age_bin_f1"), ("mask", "mask_f1")):
        if task in labels and (truth[task] >= 0).any():
            known = (truth[task] >= 0).to_numpy()
            true = truth[task].to_numpy()[known]
            out[key] = float(f1_score(true, labels[task][known], labels=np.unique(true), average="macro"))
    return out


def _natural(key: str) -> tuple:
    """'9-' < '10-' < '100-': numbers inside group names sort as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key))


def group_report(
    frame: pd.DataFrame,
    labels: dict[str, np.ndarray],
    spec: str,
    min_n: int = 30,
    old_threshold: int = DEFAULT_OLD_THRESHOLD,
) -> dict:
    """{'table': [{group, n, metrics..., small}], 'gaps': {metric: {best, worst, gap}}} for one `--by` spec."""
    keys = group_keys(frame, spec, old_threshold).to_numpy()
    rows = []
    for key in sorted(set(keys), key=_natural):
        pick = keys == key
        row = {"group": key, **scores(frame[pick], {k: v[pick] for k, v in labels.items()})}
        row["small"] = row["n"] < min_n
        rows.append(row)
    gaps = {}
    for metric in METRICS:
        valid = [r for r in rows if metric in r and not r["small"]]
        if len(valid) < 2:
            continue
        ordered = sorted(valid, key=lambda r: r[metric], reverse=metric not in LOWER_IS_BETTER)
        best, worst = ordered[0], ordered[-1]
        gaps[metric] = {"best": best["group"], "worst": worst["group"], "gap": abs(best[metric] - worst[metric])}
    return {"by": spec, "min_n": min_n, "table": rows, "gaps": gaps}


def markdown(report: dict) -> str:
    """The report as a Markdown table plus one line per gap."""
    columns = ["group", "n", *[m for m in METRICS if any(m in r for r in report["table"])]]
    lines = [f"### by {report['by']}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in report["table"]:
        cells = [f"{row[c]:.3f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        if row["small"]:
            cells[0] += f" (n < {report['min_n']})"
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for metric, gap in report["gaps"].items():
        lines.append(f"- {metric}: best {gap['best']}, worst {gap['worst']}, gap {gap['gap']:.3f}")
    return "\n".join(lines) + "\n"


def plot_groups(report: dict, out_dir: Path) -> list[Path]:
    """One bar chart per metric; small groups hatched."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    slug = report["by"].replace("+", "_")
    for metric in METRICS:
        rows = [r for r in report["table"] if metric in r]
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(rows) + 2), 3.6))
        bars = ax.bar([r["group"] for r in rows], [r[metric] for r in rows], color="#4a7bb7")
        for bar, row in zip(bars, rows, strict=True):
            if row["small"]:
                bar.set_hatch("//")
                bar.set_alpha(0.5)
            ax.annotate(
                f"n={row['n']}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
            )
        ax.set_title(f"{metric} by {report['by']}" + (" (lower is better)" if metric in LOWER_IS_BETTER else ""))
        ax.tick_params(axis="x", rotation=45)
        fig.tight_layout()
        path = out_dir / f"groups_{slug}_{metric}.png"
        save_figure(fig, path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths
