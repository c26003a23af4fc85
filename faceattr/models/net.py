"""The network itself, without the training machinery: a backbone and one head per task.

Prediction, evaluation, serving, export and Grad-CAM load a checkpoint's weights into this plain `nn.Module`, so
they never import Lightning or torchmetrics (seconds of start-up a user waits for on every `predict`). The
LightningModule (`module.py`) builds the same two parts under the same names, so one state dict fits both.
"""

from __future__ import annotations

import torch
from torch import nn

from faceattr.config import Config, from_dict
from faceattr.labels import YOUNG_THRESHOLD
from faceattr.models.backbones import create_backbone
from faceattr.models.heads import TaskHeads
from faceattr.models.losses import expected_age


def build_parts(cfg: Config, load_pretrained: bool = True) -> tuple[nn.Module, TaskHeads]:
    """The backbone (with its offline weights unless `load_pretrained` is off) and the task heads."""
    mcfg = cfg.model
    pretrained = mcfg.pretrained if load_pretrained else "none"
    backbone, features = create_backbone(mcfg.backbone, pretrained, mcfg.drop_path_rate)
    return backbone, TaskHeads(features, list(mcfg.heads), mcfg.dropout)


def run_parts(
    backbone: nn.Module, heads: TaskHeads, images: torch.Tensor, channels_last: bool
) -> dict[str, torch.Tensor]:
    """images -> {task: logits} through the two parts (channels_last when the model was built so)."""
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return heads(backbone(images))


def predict_labels(cfg: Config, tasks: list[str], logits: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Argmax per head; the age bin from the expected age when there is no age-bin head."""
    preds = {task: logits[task].argmax(1) for task in tasks if task != "age"}
    if "age" in tasks:
        preds["age_years"] = expected_age(logits["age"])
        if "age_bin" not in preds:
            years = preds["age_years"]
            preds["age_bin"] = (years >= YOUNG_THRESHOLD).long() + (years >= cfg.data.old_threshold).long()
    return preds


class FaceAttrNet(nn.Module):
    """Backbone + heads from a checkpoint's config: images -> {task: logits}."""

    def __init__(self, config: dict | Config, load_pretrained: bool = False) -> None:
        super().__init__()
        self.cfg: Config = from_dict(config) if isinstance(config, dict) else config
        self.tasks = list(self.cfg.model.heads)
        self.backbone, self.heads = build_parts(self.cfg, load_pretrained)
        if self.cfg.model.channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return run_parts(self.backbone, self.heads, images, self.cfg.model.channels_last)

    def predict_probs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Softmax probabilities per head."""
        return {task: logits.float().softmax(1) for task, logits in self(images).items()}

    def load_checkpoint_weights(self, state_dict: dict[str, torch.Tensor], source: str) -> None:
        """The LightningModule's weights, checked (see `load_parts`)."""
        load_parts(self.backbone, self.heads, self.cfg, state_dict, source)


def load_parts(
    backbone: nn.Module, heads: TaskHeads, cfg: Config, state_dict: dict[str, torch.Tensor], source: str
) -> None:
    """A checkpoint's weights into the two parts (this net's, or a training module's for model.init_from): every
    backbone and head tensor must be there (metric states are not), in the shapes the config describes, and finite
    (NaN weights would give labels with empty probabilities); subnormal floats are loaded as zero."""
    from faceattr.errors import ConfigError

    parts = nn.ModuleDict({"backbone": backbone, "heads": heads})  # the parts' own tensors, under the saved names
    own = {k: v for k, v in state_dict.items() if k.startswith(("backbone.", "heads."))}
    expected = parts.state_dict()
    missing = [k for k in expected if k not in own] or [k for k in own if k not in expected]
    if missing:
        raise ConfigError(
            f"{source}: weights do not fit the model its config describes ({', '.join(missing[:3])} ...); "
            "the file was changed after training or mixes two runs: use the checkpoint as `faceattr train` wrote it"
        )
    for key, value in own.items():
        if not isinstance(value, torch.Tensor) or value.shape != expected[key].shape:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ConfigError(
                f"{source}: {key} has shape {shape} where its config's model ({cfg.model.backbone}, "
                f"heads {list(cfg.model.heads)}, {cfg.data.image_size} px) needs {tuple(expected[key].shape)}; "
                "use the checkpoint as `faceattr train` wrote it"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ConfigError(
                f"{source}: {key} holds NaN or infinite weights; the run diverged, so "
                "pick an earlier checkpoint (runs/<name>/checkpoints) or train again"
            )
    parts.load_state_dict({k: without_subnormals(v) for k, v in own.items()}, strict=True)


def without_subnormals(weights: torch.Tensor) -> torch.Tensor:
    """`weights` with its subnormal floats (below 1.2e-38) as zero. A model trained with them kept (before
    2026-12-06, or elsewhere) holds thousands in its face branch, which x86 CPUs multiply in microcode: the preset's
    checkpoint evaluated about 2x slower on torch and onnxruntime (an export starts from this load) for a change
    float32 cannot show."""
    if not weights.is_floating_point():
        return weights
    return weights.masked_fill((weights != 0) & (weights.abs() < torch.finfo(weights.dtype).tiny), 0.0)
