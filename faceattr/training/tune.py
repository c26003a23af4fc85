"""`faceattr tune`: an Optuna study over the search space in `tune.space`, with pruning, resumable from SQLite.

Each trial is an ordinary training run (`<run.name>-trial<N>` under the study folder) whose monitored metric is
reported to Optuna after every validation epoch; the median pruner stops trials that fall behind. The study lives
in its SQLite file, so running the command again continues it up to `tune.trials`. The best trial's settings are
written back as a complete config, `best.yaml`, ready for `faceattr train -c`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L

from faceattr.atomic import write_csv
from faceattr.config import Config, save_config, with_overrides
from faceattr.errors import ConfigError, Interrupted


@dataclass
class TuneResult:
    study_dir: Path
    best_config: Path
    best_value: float
    best_params: dict
    trials_csv: Path
    finished: int


class ReportToOptuna(L.Callback):
    """Reports the monitored metric after each validation epoch; asks Lightning to stop when Optuna prunes."""

    def __init__(self, trial, monitor: str) -> None:
        self.trial, self.monitor, self.pruned = trial, monitor, False

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        self.trial.report(float(trainer.callback_metrics[self.monitor]), step=trainer.current_epoch)
        if self.trial.should_prune():
            self.pruned = True
            trainer.should_stop = True


def with_params(cfg: Config, params: dict, run_name: str | None = None) -> Config:
    """`cfg` with dotted-key values applied (and validated)."""
    out = with_overrides(cfg, params, "tune.space")
    if run_name:
        out.run.name = run_name  # a name has nothing to validate: with_overrides checked the rest
    return out


def suggest(trial, space: dict) -> dict:
    params = {}
    for key, spec in space.items():
        kind = spec["type"]
        if kind == "categorical":
            params[key] = trial.suggest_categorical(key, list(spec["choices"]))
        elif kind == "int":
            params[key] = trial.suggest_int(key, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
        else:
            params[key] = trial.suggest_float(key, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
    return params


def tune(cfg: Config, trials: int | None = None) -> TuneResult:
    """Run (or continue) the study until it holds `trials` finished trials; write best.yaml and trials.csv."""
    try:
        import optuna
    except ImportError:
        raise ConfigError("faceattr tune needs optuna; pip install 'faceattr[insight]'") from None
    from faceattr.training.fit import train

    if not cfg.tune.space:
        raise ConfigError(
            "tune.space is empty; give dotted keys with a distribution, e.g. optim.lr: {type: float, ...}"
        )
    study_dir = Path(cfg.run.dir) / f"{cfg.run.name}-tune"
    study_dir.mkdir(parents=True, exist_ok=True)
    storage = cfg.tune.storage or f"sqlite:///{(study_dir / 'study.db').resolve()}"
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    if cfg.tune.pruner == "none":
        pruner = optuna.pruners.NopPruner()
    study = optuna.create_study(
        study_name=cfg.run.name,
        storage=storage,
        load_if_exists=True,
        direction="maximize" if cfg.train.monitor_mode == "max" else "minimize",
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
        pruner=pruner,
    )
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    wanted = trials or cfg.tune.trials

    def objective(trial) -> float:
        params = suggest(trial, cfg.tune.space)
        trial_cfg = with_params(cfg, {**params, "run.dir": str(study_dir)}, f"trial{trial.number:03d}")
        report = ReportToOptuna(trial, cfg.train.monitor)
        try:
            result = train(trial_cfg, overwrite=True, callbacks=[report])
        except Interrupted:  # a trial is not resumed: the study goes on with a new one
            raise Interrupted(
                f"stopped in trial {trial.number}: the finished trials are kept in {storage}; the same command goes "
                "on with the trials still wanted"
            ) from None
        if report.pruned:
            raise optuna.TrialPruned()
        if result.best_score is None:
            raise ConfigError(f"trial {trial.number}: no {cfg.train.monitor} was logged; check train.monitor")
        return result.best_score

    finished = sum(t.state in done for t in study.trials)
    if finished < wanted:
        study.optimize(objective, n_trials=wanted - finished, gc_after_trial=True)
    completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not completed:
        raise ConfigError(f"no trial of study {study_dir} completed; see the trial folders for their logs")
    best = study.best_trial
    best_cfg = with_params(cfg, best.params)
    best_path = study_dir / "best.yaml"
    save_config(best_cfg, best_path)
    trials_csv = study_dir / "trials.csv"
    write_csv(study.trials_dataframe(), trials_csv)
    finished = sum(t.state in done for t in study.trials)
    return TuneResult(study_dir, best_path, float(best.value), dict(best.params), trials_csv, finished)
