"""The LightningModule: a shared backbone, one head per task, summed weighted losses, validation metrics.

Heads: mask (3), gender (2), age_bin (3) and the exact-age head (101-way softmax whose expectation is the age).
A label of -1 contributes no loss, so datasets that lack a task train the other heads only.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from faceattr.config import Config, from_dict, to_dict
from faceattr.errors import TrainingDiverged
from faceattr.labels import NUM_CLASSES, TASK_CLASSES, classified_tasks, code18
from faceattr.models.losses import AGE_LOSSES, CLASSIFICATION_LOSSES, IGNORE, soft_cross_entropy
from faceattr.models.mixup import mix_batch
from faceattr.models.net import build_parts, predict_labels, run_parts
from faceattr.models.optim import create_optimizer, create_scheduler, sync_scheduler


def combine_to_18(preds: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-task class indices -> 18-class code (mask*6 + gender*3 + age_bin)."""
    return code18(preds["mask"], preds["gender"], preds["age_bin"])


AGE_ERROR_SCALE = 10.0  # years of age MAE that weigh as much as a whole gender error rate in `val/error`


def user_error(values: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The error users feel, for picking checkpoints (`train.monitor=val/error`, lower is better): gender error
    rate + age MAE / 10 years + (1 - mask macro F1) + (1 - age-bin macro F1) when there is no exact-age head.

    The summed validation loss is a poor judge (it keeps over-confident early epochs); this tracks the metrics."""
    parts = []
    if "acc_gender" in values:
        parts.append(1 - values["acc_gender"])
    if "age_mae" in values:
        parts.append(values["age_mae"] / AGE_ERROR_SCALE)
    elif "f1_age_bin" in values:
        parts.append(1 - values["f1_age_bin"])
    if "f1_mask" in values:
        parts.append(1 - values["f1_mask"])
    return sum(parts) if parts else None  # type: ignore[return-value]


class FaceAttrModule(L.LightningModule):
    """Multi-task face-attribute model; its checkpoint carries the full config to rebuild it."""

    def __init__(self, config: dict, load_pretrained: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.cfg: Config = from_dict(config)
        mcfg = self.cfg.model
        self.tasks = list(mcfg.heads)
        self.backbone, self.heads = build_parts(self.cfg, load_pretrained)  # the same names as FaceAttrNet's
        # age bins come from their own head, or from the exact-age head when there is none
        self.classified = classified_tasks(self.tasks)
        self.has_18 = len(self.classified) == 3
        metrics: dict[str, nn.Module] = {}
        for task in self.classified:
            n = TASK_CLASSES[task]
            metrics[f"f1_{task}"] = MulticlassF1Score(n, average="macro", ignore_index=IGNORE)
            metrics[f"acc_{task}"] = MulticlassAccuracy(n, average="micro", ignore_index=IGNORE)
        if self.has_18:
            metrics["f1_18"] = MulticlassF1Score(NUM_CLASSES, average="macro", ignore_index=IGNORE)
            metrics["acc_18"] = MulticlassAccuracy(NUM_CLASSES, average="micro", ignore_index=IGNORE)
        if "age" in self.tasks:
            metrics["age_mae"] = MeanMetric()
            metrics["age_cs5"] = MeanMetric()
        self.val_metrics = nn.ModuleDict(metrics)
        if mcfg.channels_last:
            self.to(memory_format=torch.channels_last)

    @classmethod
    def from_config(cls, cfg: Config, load_pretrained: bool = True) -> FaceAttrModule:
        return cls(to_dict(cfg), load_pretrained=load_pretrained)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return run_parts(self.backbone, self.heads, images, self.cfg.model.channels_last)

    def set_class_weights(self, weights: dict[str, torch.Tensor]) -> None:
        """Per-task class weights computed from the training fold (used when loss.class_weights is on)."""
        self.class_weights = weights

    def _task_loss(self, task: str, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        lcfg = self.cfg.loss
        weight = getattr(self, "class_weights", {}).get(task) if lcfg.class_weights else None
        if weight is not None:
            weight = weight.to(logits.device, logits.dtype)
        return CLASSIFICATION_LOSSES[lcfg.name](logits, target, lcfg, weight)

    def _losses(self, logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        losses = {}
        for task in self.tasks:
            if task == "age":
                age_loss = AGE_LOSSES[self.cfg.model.age_loss]
                losses[task] = age_loss(logits[task], targets["age"], self.cfg.model.age_sigma)
            else:
                losses[task] = self._task_loss(task, logits[task], targets[task])
            if f"soft_{task}" in targets:  # distill.peer: the label blended with the teacher's probabilities
                share = self.cfg.distill.weight
                soft = soft_cross_entropy(logits[task], targets[f"soft_{task}"])
                losses[task] = (1 - share) * losses[task] + share * soft
        return losses

    def _total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        weights = self.cfg.model.loss_weights
        return sum(weights.get(task, 1.0) * loss for task, loss in losses.items())  # type: ignore[return-value]

    def predict_labels(self, logits: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Argmax per head; the age bin from the expected age when there is no age-bin head."""
        return predict_labels(self.cfg, self.tasks, logits)

    # -- fine-tuning controls ---------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        for config in self.trainer.lr_scheduler_configs if self._trainer is not None else []:
            sync_scheduler(config.scheduler, self.global_step if config.interval == "step" else self.current_epoch)
        frozen = self.current_epoch < self.cfg.model.freeze_backbone_epochs
        for p in self.backbone.parameters():
            p.requires_grad_(not frozen)
        # set both ways: Lightning's validation restores each layer's mode as it found it, so a layer put in eval
        # mode for the frozen epochs would otherwise stay there once the backbone is let go
        hold_statistics = frozen or self.cfg.model.freeze_bn
        for m in self.backbone.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.train(not hold_statistics)

    # -- steps ------------------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, targets = batch
        aug = self.cfg.augment
        if aug.mixup > 0 and float(torch.rand(())) < aug.mixup:
            images, blended_in, share = mix_batch(images, targets, aug.mixup_alpha)
            logits = self(images)
            own, other = self._losses(logits, targets), self._losses(logits, blended_in)
            losses = {task: share * own[task] + (1 - share) * other[task] for task in own}
        else:
            losses = self._losses(self(images), targets)
        total = self._total(losses)
        self.train_batches_seen = getattr(self, "train_batches_seen", 0) + 1
        if not bool(torch.isfinite(total)):
            return self._on_nonfinite(total, losses)
        bs = images.shape[0]
        self.log("train/loss", total, prog_bar=True, batch_size=bs)
        for task, loss in losses.items():
            self.log(f"train/loss_{task}", loss, batch_size=bs, on_step=False, on_epoch=True, sync_dist=True)
        return total

    def _on_nonfinite(self, total: torch.Tensor, losses: dict[str, torch.Tensor]) -> None:
        """Skip the batch (returning None makes Lightning skip backward and the step), or stop with the facts."""
        self.nonfinite_batches = getattr(self, "nonfinite_batches", 0) + 1
        bad = ", ".join(f"{task}={loss.item()}" for task, loss in losses.items())
        if self.cfg.train.on_nonfinite_loss == "skip":
            self.log("train/skipped_nonfinite", float(self.nonfinite_batches), on_step=False, on_epoch=True)
            return None
        callback = self.trainer.checkpoint_callback if self._trainer is not None else None
        last = getattr(callback, "last_model_path", "") or "none yet"
        raise TrainingDiverged(
            f"loss is {total.item()} at step {self.global_step} (epoch {self.current_epoch}; {bad}). "
            f"Last good checkpoint: {last}. Lower optim.lr, set trainer.gradient_clip_val, or "
            "train.on_nonfinite_loss=skip to drop such batches"
        )

    def validation_step(self, batch, batch_idx: int) -> None:
        images, targets = batch
        logits = self(images)
        bs = images.shape[0]
        self.log("val/loss", self._total(self._losses(logits, targets)), prog_bar=True, batch_size=bs, sync_dist=True)
        preds = self.predict_labels(logits)
        for task in self.classified:
            self.val_metrics[f"f1_{task}"].update(preds[task], targets[task])
            self.val_metrics[f"acc_{task}"].update(preds[task], targets[task])
        if self.has_18:
            pred18 = combine_to_18(preds)
            self.val_metrics["f1_18"].update(pred18, targets["label18"])
            self.val_metrics["acc_18"].update(pred18, targets["label18"])
        if "age" in self.tasks:
            known = targets["age"] != IGNORE
            if bool(known.any()):
                error = (preds["age_years"][known] - targets["age"][known].float()).abs()
                self.val_metrics["age_mae"].update(error)
                self.val_metrics["age_cs5"].update((error <= 5).float())

    def on_validation_epoch_end(self) -> None:
        values = {}
        for name, metric in self.val_metrics.items():
            if getattr(metric, "update_count", 1) == 0:
                continue
            values[name] = metric.compute()
            self.log(f"val/{name}", values[name], prog_bar=name in ("f1_18", "age_mae"), sync_dist=True)
            metric.reset()
        error = user_error(values)
        if error is not None:
            self.log("val/error", error, prog_bar=True, sync_dist=True)

    def configure_optimizers(self):

        optimizer = create_optimizer(self.cfg.optim, self.backbone, self.heads)
        epochs, per_step = self.cfg.train.epochs, self.cfg.scheduler.per_step
        steps_per_epoch = self.trainer.estimated_stepping_batches / epochs if per_step else 1.0
        scheduler = create_scheduler(self.cfg.scheduler, optimizer, epochs, steps_per_epoch)
        if scheduler is None:
            return optimizer
        interval = "step" if per_step else "epoch"
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}
