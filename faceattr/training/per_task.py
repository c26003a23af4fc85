"""Per-task models: one model per task, each with its own settings (`per_task:` in the config)."""

from __future__ import annotations

import logging

from faceattr.config import Config, to_dict, with_overrides
from faceattr.errors import ConfigError
from faceattr.training.fit import TrainResult, finished_run, run_dir_of, train

log = logging.getLogger(__name__)


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
    return {task: _train_task(task_config(cfg, task), overwrite, resume) for task in cfg.per_task}


def _train_task(cfg: Config, overwrite: bool, resume: bool) -> TrainResult:
    """With --resume, a task that finished is kept as it is and one that never started starts: a run stopped
    between tasks resumes where it stopped."""
    if resume and (done := finished_run(cfg)) is not None:
        log.info("%s: already trained %d epoch(s), kept as it is", run_dir_of(cfg), cfg.train.epochs)
        return done
    started = (run_dir_of(cfg) / "checkpoints" / "last.ckpt").is_file()
    return train(cfg, overwrite=overwrite, resume=resume and started)
