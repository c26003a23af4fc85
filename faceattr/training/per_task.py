"""Per-task models: one model per task, each with its own settings (`per_task:` in the config)."""

from __future__ import annotations

from faceattr.config import Config, to_dict, with_overrides
from faceattr.errors import ConfigError
from faceattr.training.fit import TrainResult, train_or_keep


def task_config(cfg: Config, task: str) -> Config:
    """The config of one per-task model: only that head, the run named after the task, the task's overrides."""
    data = to_dict(cfg)
    data["per_task"] = {}
    data["model"]["heads"] = [task]
    data["priors"]["target"] = {h: v for h, v in data["priors"]["target"].items() if h == task}
    data["run"]["name"] = f"{cfg.run.name}-{task}"
    data["train"]["monitor"] = f"val/f1_{task}" if task != "age" else "val/age_mae"
    data["train"]["monitor_mode"] = "max" if task != "age" else "min"
    return with_overrides(data, cfg.per_task.get(task) or {}, f"per_task.{task}")


def train_per_task(cfg: Config, overwrite: bool = False, resume: bool = False) -> dict[str, TrainResult]:
    """One model per task in `cfg.per_task` (each with its own settings); combine them with an ensemble."""
    if not cfg.per_task:
        raise ConfigError(
            "per_task is empty; give per-task sections, e.g. per_task: {mask: {}, gender: {}, age_bin: {}}"
        )
    return {task: train_or_keep(task_config(cfg, task), overwrite, resume) for task in cfg.per_task}
