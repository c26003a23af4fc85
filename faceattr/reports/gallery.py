"""Error analysis: a gallery of the most confident mistakes per true class, one PNG per task."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from faceattr.atomic import save_figure
from faceattr.data.images import load_rgb
from faceattr.errors import ImageLoadError


def confident_mistakes(
    y_true: np.ndarray, probs: np.ndarray, per_class: int
) -> dict[int, list[tuple[int, int, float]]]:
    """True class -> up to `per_class` (row, predicted class, its probability), most confident first."""
    pred = probs.argmax(1)
    confidence = probs[np.arange(len(probs)), pred]
    out: dict[int, list[tuple[int, int, float]]] = {}
    for cls in range(probs.shape[1]):
        wrong = np.flatnonzero((y_true == cls) & (pred != cls))
        ranked = wrong[np.argsort(-confidence[wrong], kind="stable")][:per_class]
        out[cls] = [(int(i), int(pred[i]), float(confidence[i])) for i in ranked]
    return out


def mistake_gallery(
    paths: list[str],
    y_true: np.ndarray,
    probs: np.ndarray,
    names: list[str],
    title: str,
    path: Path,
    per_class: int = 6,
    thumb: int = 96,
) -> Path:
    """Rows = true classes, columns = their most confident mistakes, each titled 'pred name p'."""
    return gallery(paths, confident_mistakes(y_true, probs, per_class), names, title, path, per_class, thumb)


def gallery(
    paths: list[str],
    mistakes: dict[int, list[tuple[int, int, float]]],
    names: list[str],
    title: str,
    path: Path,
    per_class: int = 6,
    thumb: int = 96,
) -> Path:
    """The sheet: one row per true class, its `mistakes` (row, predicted class, probability) left to right."""
    rows = len(names)
    fig, axes = plt.subplots(rows, per_class + 1, figsize=(1.3 * (per_class + 1), 1.45 * rows), squeeze=False)
    for cls, row_axes in enumerate(axes):
        row_axes[0].text(
            0.5, 0.5, f"true\n{names[cls]}\n({len(mistakes[cls])} shown)", ha="center", va="center", fontsize=7
        )
        for ax in row_axes:
            ax.axis("off")
        for col, (i, pred, p) in enumerate(mistakes[cls], start=1):
            try:
                image = Image.fromarray(load_rgb(paths[i])).resize((thumb, thumb))
            except ImageLoadError:
                continue
            row_axes[col].imshow(image)
            row_axes[col].set_title(f"{names[pred]} {p:.2f}", fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path
