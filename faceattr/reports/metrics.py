"""Classification metrics (scikit-learn) and confusion-matrix pictures (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def task_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Macro F1 and accuracy over samples whose label is known (>= 0)."""
    known = y_true >= 0
    if not known.any():
        return {"f1": float("nan"), "accuracy": float("nan"), "n": 0}
    t, p = y_true[known], y_pred[known]
    return {
        "f1": float(f1_score(t, p, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(t, p)),
        "n": int(known.sum()),
    }


def per_class_report(y_true: np.ndarray, y_pred: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support for every class (including classes absent from the data)."""
    known = y_true >= 0
    labels = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true[known], y_pred[known], labels=labels, zero_division=0
    )
    return pd.DataFrame(
        {
            "class": labels,
            "name": names,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
        }
    )


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, names: list[str], title: str, path: str | Path) -> Path:
    """Row-normalised confusion matrix with counts, saved as PNG."""
    known = y_true >= 0
    cm = confusion_matrix(y_true[known], y_pred[known], labels=list(range(len(names))))
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0)
    n = len(names)
    side = max(4.0, 0.55 * n + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), names, rotation=60 if n > 4 else 0, ha="right" if n > 4 else "center", fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    str(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
