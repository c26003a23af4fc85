"""The LightningModule: a shared backbone, one head per task, summed weighted losses, macro-F1 metrics."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from faceattr.config import Config, from_dict, to_dict
from faceattr.labels import NUM_CLASSES, TASK_CLASSES
from faceattr.models.backbones import create_backbone
from faceattr.models.heads import TaskHeads
from faceattr.models.losses import IGNORE, masked_cross_entropy
from faceattr.models.optim import create_optimizer, create_scheduler

FULL_TASKS = ("mask", "gender", "age_bin")


def combine_to_18(preds: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-task class indices -> 18-class code (mask*6 + gender*3 + age_bin)."""
    return preds["mask"] * 6 + preds["gender"] * 3 + preds["age_bin"]


class FaceAttrModule(L.LightningModule):
    """Multi-task face-attribute classifier; its checkpoint carries the full config to rebuild it."""

    def __init__(self, config: dict, load_pretrained: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters({"config": config})
        self.cfg: Config = from_dict(config)
        mcfg = self.cfg.model
        self.tasks = list(mcfg.heads)
        pretrained = mcfg.pretrained if load_pretrained else "none"
        self.backbone, features = create_backbone(mcfg.backbone, pretrained)
        self.heads = TaskHeads(features, self.tasks, mcfg.dropout)
        self.has_18 = all(t in self.tasks for t in FULL_TASKS)
        metrics: dict[str, nn.Module] = {}
        for task in self.tasks:
            n = TASK_CLASSES[task]
            metrics[f"f1_{task}"] = MulticlassF1Score(n, average="macro", ignore_index=IGNORE)
            metrics[f"acc_{task}"] = MulticlassAccuracy(n, average="micro", ignore_index=IGNORE)
        if self.has_18:
            metrics["f1_18"] = MulticlassF1Score(NUM_CLASSES, average="macro", ignore_index=IGNORE)
            metrics["acc_18"] = MulticlassAccuracy(NUM_CLASSES, average="micro", ignore_index=IGNORE)
        self.val_metrics = nn.ModuleDict(metrics)
        if mcfg.channels_last:
            self.to(memory_format=torch.channels_last)

    @classmethod
    def from_config(cls, cfg: Config, load_pretrained: bool = True) -> FaceAttrModule:
        return cls(to_dict(cfg), load_pretrained=load_pretrained)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.cfg.model.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.heads(self.backbone(images))

    def _losses(self, logits: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {task: masked_cross_entropy(logits[task], targets[task]) for task in self.tasks}

    def _total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        weights = self.cfg.model.loss_weights
        return sum(weights.get(task, 1.0) * loss for task, loss in losses.items())  # type: ignore[return-value]

    # -- fine-tuning controls ---------------------------------------------------------------------------
    def _backbone_frozen(self) -> bool:
        return self.current_epoch < self.cfg.model.freeze_backbone_epochs

    def on_train_epoch_start(self) -> None:
        frozen = self._backbone_frozen()
        for p in self.backbone.parameters():
            p.requires_grad_(not frozen)
        if frozen or self.cfg.model.freeze_bn:
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    # -- steps ------------------------------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, targets = batch
        losses = self._losses(self(images), targets)
        total = self._total(losses)
        bs = images.shape[0]
        self.log("train/loss", total, prog_bar=True, batch_size=bs)
        for task, loss in losses.items():
            self.log(f"train/loss_{task}", loss, batch_size=bs)
        return total

    def validation_step(self, batch, batch_idx: int) -> None:
        images, targets = batch
        logits = self(images)
        losses = self._losses(logits, targets)
        bs = images.shape[0]
        self.log("val/loss", self._total(losses), prog_bar=True, batch_size=bs, sync_dist=True)
        preds = {task: logits[task].argmax(1) for task in self.tasks}
        for task in self.tasks:
            self.val_metrics[f"f1_{task}"].update(preds[task], targets[task])
            self.val_metrics[f"acc_{task}"].update(preds[task], targets[task])
        if self.has_18:
            pred18 = combine_to_18(preds)
            self.val_metrics["f1_18"].update(pred18, targets["label18"])
            self.val_metrics["acc_18"].update(pred18, targets["label18"])

    def on_validation_epoch_end(self) -> None:
        for name, metric in self.val_metrics.items():
            self.log(f"val/{name}", metric.compute(), prog_bar=name in ("f1_18", "f1_mask"), sync_dist=True)
            metric.reset()

    def predict_probs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Softmax probabilities per task."""
        return {task: logits.float().softmax(1) for task, logits in self(images).items()}

    def configure_optimizers(self):
        optimizer = create_optimizer(self.cfg.optim, self.backbone, self.heads)
        scheduler = create_scheduler(self.cfg.scheduler, optimizer, self.cfg.train.epochs)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
