"""`faceattr cam`: Grad-CAM heatmaps (the `grad-cam` package) per head, for chosen images or the worst-classified
validation images, saved as side-by-side PNGs: the photo, then one overlay per head titled with its prediction.

The target layer is the backbone's last convolution (for EfficientNets, `conv_head`); a classification head is
explained for its predicted class, the exact-age head for its expected age.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from faceattr.atomic import save_figure
from faceattr.data.images import SkipReport, load_rgb
from faceattr.errors import ConfigError, FaceAttrError, ImageLoadError
from faceattr.inference.checkpoint_predictor import Predictor
from faceattr.labels import CLASS_NAMES, CLASSIFICATION_TASKS


@dataclass
class CamResult:
    image: str
    heatmaps: dict[str, np.ndarray]  # head -> HxW in [0, 1], the size of the original image
    labels: dict[str, str]
    sheet: Path


class _Head(nn.Module):
    """The model seen through one head, as Grad-CAM expects: images -> that head's logits."""

    def __init__(self, module: nn.Module, head: str) -> None:
        super().__init__()
        self.module, self.head = module, head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.module(images)[self.head]


class _ExpectedAge:
    """Grad-CAM target for the 101-way age head: the expectation of the softmax, i.e. the predicted age."""

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(output, dim=-1)
        return (probs * torch.arange(probs.shape[-1], device=probs.device)).sum(-1)


def last_conv(module: nn.Module) -> nn.Module:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ConfigError("the backbone has no Conv2d layer for Grad-CAM to explain")
    return convs[-1]


def explain(predictor: Predictor, image: np.ndarray, heads: list[str]) -> tuple[dict, dict]:
    """Heatmaps (at the image's own size) and the predicted label per head."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    module = predictor.module
    tensor = torch.from_numpy(predictor.transform(image=image)["image"])[None].to(predictor.device)
    with torch.no_grad():
        probs = {k: v[0].cpu().numpy() for k, v in module.predict_probs(tensor).items()}
    heatmaps, labels = {}, {}
    for head in heads:
        if head == "age":
            expected = float((probs["age"] * np.arange(len(probs["age"]))).sum())
            target, labels[head] = _ExpectedAge(), f"age {expected:.0f} y"
        else:
            cls = int(probs[head].argmax())
            target = ClassifierOutputTarget(cls)
            labels[head] = f"{head}: {CLASS_NAMES[head][cls]} {probs[head][cls]:.2f}"
        with GradCAM(model=_Head(module, head), target_layers=[last_conv(module.backbone)]) as cam:
            grayscale = cam(input_tensor=tensor, targets=[target])[0]
        heatmaps[head] = cv2.resize(grayscale, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_LINEAR)
    return heatmaps, labels


def overlay(image: np.ndarray, heatmap: np.ndarray, weight: float = 0.45) -> np.ndarray:
    colored = cv2.applyColorMap(np.uint8(255 * np.clip(heatmap, 0, 1)), cv2.COLORMAP_JET)[..., ::-1]
    return np.uint8((1 - weight) * image + weight * colored)


def save_sheet(image: np.ndarray, heatmaps: dict, labels: dict, title: str, path: Path) -> Path:
    panels = len(heatmaps) + 1
    fig, axes = plt.subplots(1, panels, figsize=(2.6 * panels, 3.0))
    axes[0].imshow(image)
    axes[0].set_title(title, fontsize=8)
    for ax, head in zip(axes[1:], heatmaps, strict=True):
        ax.imshow(overlay(image, heatmaps[head]))
        ax.set_title(labels[head], fontsize=8)
    for ax in axes:
        ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def worst_validation_images(predictor: Predictor, count: int) -> pd.DataFrame:
    """The run's validation rows the model gets most wrong: lowest mean probability of the true class."""
    from faceattr.reports.evaluate import evaluation_rows

    frame = evaluation_rows(predictor, None, None)
    preds = predictor.predict_paths(frame["path"].tolist())
    frame = frame.iloc[preds.indices].reset_index(drop=True)
    true_probs = []
    for head in [h for h in CLASSIFICATION_TASKS if h in preds.probs]:
        truth = frame[head].to_numpy()
        known = truth >= 0
        p = np.ones(len(frame))
        p[known] = preds.probs[head][np.flatnonzero(known), truth[known]]
        true_probs.append(p)
    frame["p_true"] = np.mean(true_probs, axis=0) if true_probs else 1.0
    return frame.nsmallest(count, "p_true")


def cam_sheets(
    checkpoint: str | Path,
    images: list[str] | None = None,
    worst: int = 0,
    out_dir: str | Path = "cam",
    heads: list[str] | None = None,
    skips: SkipReport | None = None,
) -> list[CamResult]:
    """One side-by-side PNG per image (given ones, then the `worst` validation images). An image that cannot be read
    is passed over and added to `skips`; none readable is an error."""
    predictor = Predictor(checkpoint, device="cpu")
    chosen = heads or list(predictor.tasks)
    unknown = [h for h in chosen if h not in predictor.tasks]
    if unknown:
        raise ConfigError(f"--heads {','.join(unknown)}: this model has heads {', '.join(predictor.tasks)}")
    todo = [(str(p), Path(p).name) for p in images or []]
    if worst:
        for _, row in worst_validation_images(predictor, worst).iterrows():
            todo.append((row["path"], f"worst p_true={row['p_true']:.2f} {Path(row['path']).name}"))
    if not todo:
        raise ConfigError("no images: give image paths and/or --worst N")
    out = Path(out_dir)
    results, skips = [], skips if skips is not None else SkipReport()
    before = len(skips)
    for k, (path, title) in enumerate(todo):
        try:
            image = load_rgb(path)
        except ImageLoadError as e:
            skips.add(e)
            continue
        out.mkdir(parents=True, exist_ok=True)
        heatmaps, labels = explain(predictor, image, chosen)
        sheet = save_sheet(image, heatmaps, labels, title, out / f"cam_{k:03d}_{Path(path).stem}.png")
        results.append(CamResult(path, heatmaps, labels, sheet))
    if not results:
        first = skips.rows[before]
        raise FaceAttrError(
            f"none of the {len(todo)} image(s) could be read (first: {first['path']}: {first['reason']})"
        )
    return results
