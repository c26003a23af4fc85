"""`faceattr train`: config -> run folder with checkpoints, logs and a summary. Read top to bottom."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from faceattr.atomic import refuse_file_as_folder, write_csv, write_json
from faceattr.config import Config, save_config
from faceattr.config.choices import Tracker
from faceattr.data.datamodule import FaceDataModule
from faceattr.data.images import SkipReport
from faceattr.errors import ConfigError, Interrupted
from faceattr.faces.crop import adopt_crop_settings
from faceattr.labels import CLASSIFICATION_TASKS, TASK_CLASSES, better_direction, validation_metrics
from faceattr.models.backbones import get_spec
from faceattr.models.checkpoints import read_checkpoint
from faceattr.models.floats import subnormals_as_zero
from faceattr.models.losses import balanced_class_weights
from faceattr.models.module import FaceAttrModule
from faceattr.models.net import load_parts
from faceattr.synth.augment import SyntheticMasker
from faceattr.training.batch_size import find_batch_size, tune_batch_size_on_gpu
from faceattr.training.callbacks import BatchSeed, BestAndLast, SaveAbove
from faceattr.training.checkpoint_io import AtomicCheckpointIO, slim_checkpoint
from faceattr.training.distill import peer_targets, save_peer_targets
from faceattr.training.runinfo import run_info

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    run_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path
    best_score: float | None
    best_epoch: int | None
    metrics: dict[str, float]
    skipped: int


def run_dir_of(cfg: Config) -> Path:
    return Path(cfg.run.dir) / cfg.run.name


def trained_epochs(checkpoint: dict) -> int:
    """Epochs a saved training state has finished: Lightning saves the 0-based index of the epoch just ended."""
    return int(checkpoint.get("epoch", -1)) + 1


def check_one_of(overwrite: bool, resume: bool) -> None:
    """--resume and --overwrite ask for opposite things: refused together."""
    if resume and overwrite:
        raise ConfigError("--resume continues the run and --overwrite replaces it: pass one of them")


def finished_run(cfg: Config) -> TrainResult | None:
    """The result of `cfg`'s run if it has trained all of train.epochs and written its summary, else None."""
    run_dir = run_dir_of(cfg)
    last, summary = run_dir / "checkpoints" / "last.ckpt", run_dir / "train_summary.json"
    if not (last.is_file() and summary.is_file()) or trained_epochs(read_checkpoint(last)) < cfg.train.epochs:
        return None
    done = json.loads(summary.read_text())
    best = Path(done["best_checkpoint"]) if done.get("best_checkpoint") else None
    metrics, skipped = done["last_metrics"], done["skipped_images"]
    return TrainResult(run_dir, best, last, done.get("best_score"), done.get("best_epoch"), metrics, skipped)


def launched_rank() -> int:
    """This process's rank when Lightning's DDP launcher (or torchrun / SLURM) started it; 0 otherwise.

    Not Lightning's own `rank_zero` helper: it is asked before any Trainer exists, where Lightning's reads
    LOCAL_RANK without NODE_RANK, so the first process of node 1 would also count as rank 0 and decide the run
    folder (tests/test_distributed.py shows both)."""
    for var in ("RANK", "SLURM_PROCID"):
        if var in os.environ:
            return int(os.environ[var])
    return int(os.environ.get("NODE_RANK", 0)) * 1000 + int(os.environ.get("LOCAL_RANK", 0))


RUN_MARKER = "run_info.json"  # what makes a folder a faceattr run, the only kind --overwrite replaces


def prepare_run_dir(cfg: Config, overwrite: bool, resume: bool) -> tuple[Path, Path | None]:
    """The run folder, and where an old run replaced by --overwrite was set aside (None if none).

    An existing run is kept for --resume, refused without --overwrite, and with it moved aside rather than deleted:
    `train` deletes it once the new run has saved a checkpoint and puts it back if the new run fails before that, so
    a bad manifest or a typo never costs the old run. Only a folder holding a faceattr run (its run_info.json) is
    ever replaced. Only rank 0 decides: the other DDP ranks, launched later with the same command, just use it."""
    run_dir = run_dir_of(cfg)
    if launched_rank() != 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        return run_dir, None
    aside = None
    refuse_file_as_folder(run_dir, "run.dir/run.name")
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        if not overwrite:
            raise ConfigError(
                f"run folder {run_dir} already exists; pick another run.name, pass --resume to continue it, "
                "or --overwrite to replace it"
            )
        if not (run_dir / RUN_MARKER).is_file():
            raise ConfigError(
                f"--overwrite: {run_dir} holds no faceattr run (no {RUN_MARKER}), so it is not replaced; "
                "pick another run.name, or move that folder yourself"
            )
        aside = run_dir.with_name(f".{run_dir.name}.replaced-{os.getpid()}")
        run_dir.rename(aside)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir, aside


def settle_replaced_run(run_dir: Path, aside: Path | None, succeeded: bool) -> None:
    """After --overwrite: drop the old run once the new one has a checkpoint; else put the old one back."""
    if aside is None or not aside.is_dir():
        return
    has_checkpoint = any((run_dir / "checkpoints").glob("*.ckpt")) if run_dir.is_dir() else False
    if succeeded or has_checkpoint:
        shutil.rmtree(aside, ignore_errors=True)
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    aside.rename(run_dir)
    log.warning("the new run failed before saving a checkpoint: the old run in %s is kept as it was", run_dir)


def resolve_normalization(cfg: Config) -> None:
    """Fill augment.mean/std from the backbone weights' own preprocessing when not set."""
    spec = get_spec(cfg.model.backbone)
    if cfg.augment.mean is None:
        cfg.augment.mean = list(spec.mean)
    if cfg.augment.std is None:
        cfg.augment.std = list(spec.std)


def precision_of(cfg: Config) -> str:
    if cfg.trainer.precision != "auto":
        return cfg.trainer.precision
    on_gpu = cfg.trainer.accelerator in ("gpu", "cuda") or (
        cfg.trainer.accelerator == "auto" and torch.cuda.is_available()
    )
    return "16-mixed" if on_gpu else "32-true"


def _tensorboard(cfg: Config, run_dir: Path):
    return TensorBoardLogger(run_dir, name="tensorboard", version="")


def _wandb(cfg: Config, run_dir: Path):
    from lightning.pytorch.loggers import WandbLogger

    return WandbLogger(name=cfg.run.name, save_dir=str(run_dir), project="faceattr")


def _mlflow(cfg: Config, run_dir: Path):
    from lightning.pytorch.loggers import MLFlowLogger

    uri = cfg.run.mlflow_uri or f"sqlite:///{Path(cfg.run.dir).resolve() / 'mlflow.db'}"
    return MLFlowLogger(experiment_name="faceattr", run_name=cfg.run.name, tracking_uri=uri)


# run.trackers names -> (the package it needs, or None; the Lightning logger it makes). Adding a tracker is one
# entry here and its name in config/choices.py's Tracker.
TRACKER_LOGGERS = {
    Tracker.TENSORBOARD: (None, _tensorboard),
    Tracker.WANDB: ("wandb", _wandb),
    Tracker.MLFLOW: ("mlflow", _mlflow),
}


def trackers(cfg: Config, run_dir: Path) -> list:
    """The experiment trackers named in run.trackers; a missing package is a clear error naming the extra."""
    out = []
    for name in cfg.run.trackers:
        package, make = TRACKER_LOGGERS[name]
        if package is not None and importlib.util.find_spec(package) is None:
            raise ConfigError(f"run.trackers has {name} but {package} is not installed; pip install 'faceattr[track]'")
        out.append(make(cfg, run_dir))
    return out


def on_one_gpu(trainer: L.Trainer) -> bool:
    """A single CUDA device: where Lightning's batch-size tuner applies."""
    from lightning.pytorch.accelerators import CUDAAccelerator

    return isinstance(trainer.accelerator, CUDAAccelerator) and trainer.world_size == 1


def trainer_settings(cfg: Config) -> dict:
    """The `trainer.*` keys Lightning checks, as its Trainer takes them."""
    t = cfg.trainer
    return dict(
        accelerator=t.accelerator,
        devices=t.devices,
        precision=precision_of(cfg),
        strategy=t.strategy,
        num_nodes=t.num_nodes,
    )


def check_trainer_settings(cfg: Config) -> None:
    """Lightning refuses an unknown accelerator, strategy or precision, or devices this machine lacks, only when
    the Trainer is built, after the data is read: a bare Trainer built first refuses them before any work."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)  # its "GPU available" lines come again with the real Trainer
    settings = trainer_settings(cfg)
    try:
        L.Trainer(**settings, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    except (ValueError, TypeError, MisconfigurationException) as e:
        keys = ", ".join(f"trainer.{key}={getattr(cfg.trainer, key)}" for key in settings)
        raise ConfigError(f"{keys}: Lightning refuses these settings: {e}") from None
    finally:
        lightning_log.setLevel(level)


def build_trainer(cfg: Config, run_dir: Path, extra_callbacks: list | None = None) -> L.Trainer:
    t = cfg.train
    keep_last = t.full_data or t.monitor == "last"
    checkpoints = BestAndLast(
        dirpath=run_dir / "checkpoints",
        filename="best",
        monitor=None if keep_last else t.monitor,  # no validation on full data (or monitor=last): best = last
        mode=t.monitor_mode,
        save_top_k=1,
        save_last=True,
        enable_version_counter=False,
    )
    callbacks: list = [checkpoints, LearningRateMonitor(logging_interval="epoch"), BatchSeed(cfg.seed)]
    if t.save_above > 0 and not keep_last:
        callbacks.append(SaveAbove(run_dir / "checkpoints", t.monitor, t.save_above, t.monitor_mode))
    if t.ema_decay > 0:
        from lightning.pytorch.callbacks import EMAWeightAveraging

        callbacks.append(EMAWeightAveraging(decay=t.ema_decay))
    if t.early_stopping_patience > 0 and not keep_last:
        callbacks.append(EarlyStopping(monitor=t.monitor, mode=t.monitor_mode, patience=t.early_stopping_patience))
    callbacks += extra_callbacks or []
    loggers = [CSVLogger(run_dir, name="csv", version=""), *trackers(cfg, run_dir)]
    return L.Trainer(
        default_root_dir=run_dir,
        max_epochs=t.epochs,
        **trainer_settings(cfg),
        accumulate_grad_batches=cfg.trainer.accumulate_grad_batches,
        gradient_clip_val=cfg.trainer.gradient_clip_val or None,
        callbacks=callbacks,
        logger=loggers,
        log_every_n_steps=t.log_every_n_steps,
        enable_progress_bar=t.progress_bar,
        plugins=[AtomicCheckpointIO()],
        enable_model_summary=False,
        limit_val_batches=0 if t.full_data else None,
        num_sanity_val_steps=0 if t.full_data else 2,
    )


def adopt_manifest_crop_settings(cfg: Config, frame: pd.DataFrame) -> None:
    """Prediction must crop like the training crops did: the manifest's crop settings win over the config's."""
    try:
        changed = adopt_crop_settings(cfg.faces, frame)
    except ValueError as e:
        log.warning("%s; prediction will crop with the config's faces settings", e)
        return
    for change in changed:
        log.warning("the training crops were made with other face settings; using them: %s", change)


def logged_rows(metrics_csv: Path) -> pd.DataFrame | None:
    """The rows a run's CSVLogger wrote, or None when there are none. A run killed while the logger was writing can
    leave the file empty or its last line cut off: resume must go on from the checkpoint, not fail on the log."""
    if not metrics_csv.is_file():
        return None
    try:
        return pd.read_csv(metrics_csv, on_bad_lines="skip")
    except pd.errors.EmptyDataError:
        log.warning("%s is empty (the run was stopped while writing it): its history starts again", metrics_csv)
        return None


def check_same_model(cfg: Config, checkpoint: dict, path: Path, fix: str) -> None:
    """A checkpoint that --resume continues or model.init_from starts from must be the config's model: one naming
    another backbone or other heads is refused up front, with `fix`."""
    saved = (checkpoint.get("hyper_parameters") or {}).get("config") or {}
    saved_model = saved.get("model") or {}
    for key in ("backbone", "heads"):
        theirs, ours = saved_model.get(key), getattr(cfg.model, key)
        if theirs is not None and theirs != ours:  # a name, or a list of heads: plain values on both sides
            raise ConfigError(f"{path} was trained with model.{key}={theirs}, the config now says {ours}; {fix}")


def check_monitor(cfg: Config) -> None:
    """train.monitor must be a metric the heads log (Lightning would stop after the first validation otherwise), and
    train.monitor_mode its better direction (else the worst epoch is kept, silently)."""
    t = cfg.train
    if t.monitor == "last" or t.full_data:
        return
    logged = validation_metrics(cfg.model.heads)
    if t.monitor.startswith("val/") and t.monitor not in logged:
        raise ConfigError(
            f"train.monitor: '{t.monitor}' is not logged by model.heads {cfg.model.heads}; use one of {logged}"
        )
    better = better_direction(t.monitor)
    if better is not None and t.monitor_mode != better:
        worst = "highest" if better == "min" else "lowest"
        raise ConfigError(
            f"train.monitor_mode={t.monitor_mode} would keep the epoch with the {worst} {t.monitor}; "
            f"set train.monitor_mode={better}"
        )


def starting_checkpoint(cfg: Config) -> dict:
    """model.init_from's checkpoint, opened weights-only and refused up front when it is another model."""
    path = Path(cfg.model.init_from)
    checkpoint = read_checkpoint(path)  # weights-only: a crafted file cannot run code
    check_same_model(cfg, checkpoint, path, "model.init_from fine-tunes the same model: set model.* as it was")
    return checkpoint


def start_from(module: FaceAttrModule, cfg: Config, checkpoint: dict) -> None:
    """The trained model's backbone and heads into `module`, checked (names, shapes, finite) as predict checks them."""
    load_parts(module.backbone, module.heads, cfg, checkpoint["state_dict"], f"model.init_from={cfg.model.init_from}")


def train(cfg: Config, overwrite: bool = False, resume: bool = False, callbacks: list | None = None) -> TrainResult:
    """Train one model on `cfg.data.fold`; returns where the checkpoints and metrics are.

    Everything is checked before anything is written: a run that fails before it has written anything (a bad
    manifest, say) leaves no empty run folder behind, and a run it was to replace (--overwrite) is put back."""
    check_monitor(cfg)
    check_trainer_settings(cfg)
    last = run_dir_of(cfg) / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise ConfigError(f"--resume: no {last} to resume from; start the run without --resume")
    check_one_of(overwrite, resume)
    if resume:  # refuse a crafted or mismatched last.ckpt before Lightning unpickles it, and before any write
        own_config = f"resume with the run's own config ({last.parent.parent / 'config.yaml'}) or start a new run.name"
        saved = read_checkpoint(last)
        check_same_model(cfg, saved, last, own_config)
        done = trained_epochs(saved)
        if done >= cfg.train.epochs:
            raise ConfigError(
                f"--resume: {last} has already trained {done} epoch(s), and train.epochs={cfg.train.epochs}: nothing "
                f"is left to train. To train on, raise it (e.g. train.epochs={done + 2})"
            )
    start = starting_checkpoint(cfg) if cfg.model.init_from and not resume else None
    fresh = not run_dir_of(cfg).exists()
    run_dir, aside = prepare_run_dir(cfg, overwrite, resume)
    try:
        result = _train(cfg, run_dir, resume, callbacks, start)
    except BaseException:
        settle_replaced_run(run_dir, aside, succeeded=False)
        if fresh and run_dir.is_dir() and not any(p.is_file() for p in run_dir.rglob("*")):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    settle_replaced_run(run_dir, aside, succeeded=True)
    return result


def train_or_keep(cfg: Config, overwrite: bool = False, resume: bool = False) -> TrainResult:
    """One run of several (per-task models, cross-validation folds): with `resume`, a run that finished is kept as
    it is and one that never started starts, so a series stopped between runs resumes where it stopped."""
    check_one_of(overwrite, resume)
    if resume and (done := finished_run(cfg)) is not None:
        log.info("%s: already trained %d epoch(s), kept as it is", run_dir_of(cfg), cfg.train.epochs)
        return done
    started = (run_dir_of(cfg) / "checkpoints" / "last.ckpt").is_file()
    return train(cfg, overwrite=overwrite, resume=resume and started)


def _train(cfg: Config, run_dir: Path, resume: bool, callbacks: list | None, start: dict | None) -> TrainResult:
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    resolve_normalization(cfg)
    datamodule = prepared_data(cfg, run_dir)  # before the switch: a peer network on onnxruntime may reset it
    with subnormals_as_zero():
        return _fit(cfg, run_dir, resume, callbacks, datamodule, start)


def _fit(
    cfg: Config,
    run_dir: Path,
    resume: bool,
    callbacks: list | None,
    datamodule: FaceDataModule,
    start: dict | None,
) -> TrainResult:
    last = run_dir / "checkpoints" / "last.ckpt"
    module = FaceAttrModule.from_config(cfg, load_pretrained=start is None)
    if start is not None:  # model.init_from: the trained model's weights, not the package's, start the run
        start_from(module, cfg, start)
    trainer = build_trainer(cfg, run_dir, callbacks)
    if cfg.augment.on_device and isinstance(trainer.accelerator, CPUAccelerator):
        log.warning(
            "augment.on_device=true on a CPU: batched augmentation is about 5x slower here than "
            "Albumentations per image (benchmarks/results/augment_speed.md); it is meant for GPUs"
        )
    if cfg.data.batch_size == "auto":
        trainer = pick_batch_size(cfg, run_dir, callbacks, trainer, module, datamodule)
    if launched_rank() == 0:
        save_config(cfg, run_dir / "config.yaml")
        write_json(run_info(), run_dir / "run_info.json")
    if cfg.loss.class_weights:
        module.set_class_weights(
            {
                t: balanced_class_weights(datamodule.train_frame[t].to_numpy(), TASK_CLASSES[t])
                for t in CLASSIFICATION_TASKS
                if t in cfg.model.heads
            }
        )
    metrics_csv = run_dir / "csv" / "metrics.csv"
    earlier_rows = logged_rows(metrics_csv) if resume else None
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resume else None, weights_only=True)
    except SystemExit:  # Lightning's answer to a Ctrl-C: it stops the run and exits
        if not trainer.interrupted:
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning ignores Ctrl-C from then on
        raise Interrupted(stopped_training(trainer.current_epoch, last)) from None
    finally:  # CSVLogger started a fresh file: the history before a resume is kept, even if this run is stopped
        if earlier_rows is not None and trainer.is_global_zero:
            later_rows = logged_rows(metrics_csv)
            later_rows = earlier_rows.iloc[:0] if later_rows is None else later_rows
            write_csv(pd.concat([earlier_rows, later_rows], ignore_index=True), metrics_csv)
    return finish(cfg, run_dir, trainer, module, datamodule)


def stopped_training(epoch: int, last: Path) -> str:
    """What a Ctrl-C in epoch `epoch` (from 0) leaves, and how to go on."""
    if not last.is_file():
        return (
            "stopped in the first epoch: no epoch finished to resume from; the same command with --overwrite "
            "starts over"
        )
    return (
        f"stopped in epoch {epoch + 1}: the epochs before it are kept in {last}; the same command with --resume "
        "goes on from there"
    )


def prepared_data(cfg: Config, run_dir: Path) -> FaceDataModule:
    """The data module, set up: the folds split, a peer's targets on the training faces (distill.peer), and what
    the training rows decide about the model (its crop settings, the class shares each head sees)."""
    aug = cfg.augment
    datamodule = FaceDataModule(
        cfg,
        aug.mean,
        aug.std,
        run_dir,
        masker_factory=lambda frame: SyntheticMasker(frame, aug.synthetic_mask_p, aug.synthetic_mask_incorrect),
    )
    datamodule.setup("fit")
    if cfg.distill.peer:  # the teacher's probabilities on the training faces only (training/distill.py)
        datamodule.soft_targets = peer_targets(cfg.distill.peer, datamodule.train_frame, datamodule.skips)
        if launched_rank() == 0:
            save_peer_targets(datamodule.soft_targets, datamodule.train_frame, run_dir / "peer_targets.csv")
    # predict crops photos the way the training images frame faces: made by `faceattr crop`, or measured by
    # `faceattr framing` for sets that come already cropped (both write the manifest's crop_settings column)
    columns = datamodule.train_frame.columns
    if cfg.faces.trained_on_crops is None:
        cfg.faces.trained_on_crops = "crop_x1" in columns or "crop_settings" in columns
    adopt_manifest_crop_settings(cfg, datamodule.train_frame)
    # the class shares the heads see, kept in the checkpoint so predict can move them to a set's own (priors.adapt)
    cfg.priors.trained = datamodule.label_shares([t for t in CLASSIFICATION_TASKS if t in cfg.model.heads])
    return datamodule


def pick_batch_size(cfg: Config, run_dir: Path, callbacks, trainer, module, datamodule) -> L.Trainer:
    """data.batch_size=auto: the largest batch that fits (Lightning's tuner on one GPU, a memory probe elsewhere);
    returns the trainer to train with."""
    cap = min(cfg.data.max_batch_size, max(1, len(datamodule.train_frame)))
    if on_one_gpu(trainer):  # Lightning's tuner (it supports no distributed strategy)
        cfg.data.batch_size = tune_batch_size_on_gpu(trainer, module, datamodule, cap)
        trainer = build_trainer(cfg, run_dir, callbacks)  # a fresh trainer: the trials ran on the first
    else:
        cfg.data.batch_size = min(find_batch_size(cfg, module), cap)
    log.info("data.batch_size=auto picked %d", cfg.data.batch_size)
    return trainer


def finish(cfg: Config, run_dir: Path, trainer: L.Trainer, module, datamodule) -> TrainResult:
    """The kept checkpoint, the last metrics and the skips; each rank's trace and rank 0's train_summary.json."""
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint_cb = trainer.checkpoint_callback
    best_path = Path(checkpoint_cb.best_model_path) if checkpoint_cb.best_model_path else None
    if best_path is None and last.is_file():  # full-data runs have no validation: the last epoch is the model
        best_path = last
    best_score = float(checkpoint_cb.best_model_score) if checkpoint_cb.best_model_score is not None else None
    kept = None
    if trainer.is_global_zero and best_path is not None and best_path != last:
        kept = slim_checkpoint(best_path)  # by rename: another rank reading it gets the old file or the new, both whole
    elif best_path is not None:
        kept = read_checkpoint(best_path)
    best_epoch = kept["epoch"] if kept else None
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    skipped = len(SkipReport.read(run_dir / "skipped.csv"))
    result = TrainResult(run_dir, best_path, last, best_score, best_epoch, metrics, skipped)
    write_json(  # every rank leaves a trace, so a DDP run shows that all of them trained
        {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "global_step": trainer.global_step,
            "train_batches_seen": int(getattr(module, "train_batches_seen", 0)),
        },
        run_dir / "ranks" / f"rank{trainer.global_rank}.json",
    )
    if trainer.is_global_zero:
        write_json(
            {
                "world_size": trainer.world_size,
                "best_checkpoint": str(best_path) if best_path else None,
                "best_score": best_score,
                "best_epoch": best_epoch,
                "monitor": cfg.train.monitor,
                "last_metrics": metrics,
                "skipped_images": skipped,
                "train_size": len(datamodule.train_frame),
                "batch_size": cfg.data.batch_size,
                "val_size": len(datamodule.val_frame),
            },
            run_dir / "train_summary.json",
        )
    return result
