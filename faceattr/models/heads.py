"""Task heads on pooled backbone features: one small classifier per task."""

from __future__ import annotations

from torch import nn

from faceattr.labels import TASK_CLASSES


class TaskHeads(nn.Module):
    """A dropout + linear classifier per task; forward returns {task: logits}."""

    def __init__(self, in_features: int, tasks: list[str], dropout: float = 0.2) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.heads = nn.ModuleDict(
            {task: nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, TASK_CLASSES[task])) for task in tasks}
        )

    def forward(self, features):
        return {task: head(features) for task, head in self.heads.items()}
