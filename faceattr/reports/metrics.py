"""Classification metrics (scikit-learn) and confusion-matrix pictures (matplotlib)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from faceattr.atomic import save_figure


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
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def age_metrics(true_age: np.ndarray, predicted: np.ndarray, apparent: np.ndarray | None = None) -> dict[str, float]:
    """MAE against the real age, CS@5 (share within 5 years), and MAE against the apparent age where given."""
    known = ~np.isnan(true_age)
    error = np.abs(predicted[known] - true_age[known])
    out = {
        "mae": float(error.mean()) if known.any() else float("nan"),
        "cs5": float((error <= 5).mean()) if known.any() else float("nan"),
        "n": int(known.sum()),
    }
    if apparent is not None:
        has = ~np.isnan(apparent)
        if has.any():
            out["mae_apparent"] = float(np.abs(predicted[has] - apparent[has]).mean())
    return out


def error_by_decade(true_age: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Per decade of true age: count, MAE and mean signed error (positive = predicted too old)."""
    known = ~np.isnan(true_age)
    t, p = true_age[known], predicted[known]
    decade = (np.minimum(t, 99) // 10 * 10).astype(int)
    frame = pd.DataFrame({"decade": decade, "abs": np.abs(p - t), "signed": p - t})
    table = frame.groupby("decade").agg(n=("abs", "size"), mae=("abs", "mean"), bias=("signed", "mean")).reset_index()
    table["decade"] = [f"{d}-{d + 9}" for d in table["decade"]]
    return table


def plot_error_by_decade(table: pd.DataFrame, path: str | Path, title: str = "age error by decade") -> Path:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(table["decade"], table["mae"], color="#4477aa", label="MAE")
    ax.plot(table["decade"], table["bias"], "o-", color="#cc6677", label="bias (pred - true)")
    ax.axhline(0, color="grey", lw=0.8)
    for x, (n, mae) in enumerate(zip(table["n"], table["mae"], strict=True)):
        ax.text(x, mae, f"n={n}", ha="center", va="bottom", fontsize=7)
    ax.set_xlabel("true age")
    ax.set_ylabel("years")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path
