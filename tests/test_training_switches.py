"""Fine-tuning switches do what their config keys say: a frozen backbone or frozen batch-norm statistics stay as
they were, the backbone's lr share, early stopping, `train.monitor=last`, EMA weights, the kept checkpoint chosen by
`val/error`, the lr schedule followed per optimizer step (`scheduler.per_step`), also across a resume, and a run
started from a trained model's weights (`model.init_from`)."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from faceattr.config import OptimConfig, SchedulerConfig, load_config
from faceattr.errors import ConfigError
from faceattr.training import train
from tests.conftest import tiny_overrides


class InitialWeights(Callback):
    """Keeps the backbone's weights and batch-norm statistics as they were when fitting started (and the heads')."""

    def on_fit_start(self, trainer, module) -> None:
        self.state = {k: v.detach().clone() for k, v in module.backbone.state_dict().items()}
        self.heads = {k: v.detach().clone() for k, v in module.heads.state_dict().items()}


def run(manifest, tmp_path, name: str, **extra):
    watch = InitialWeights()
    cfg = load_config(None, tiny_overrides(manifest, tmp_path, **{"run.name": name, **extra}))
    result = train(cfg, callbacks=[watch])
    saved = torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    backbone = {k.removeprefix("backbone."): v for k, v in saved.items() if k.startswith("backbone.")}
    return result, watch.state, backbone


def changed(before: dict, after: dict, running_stats: bool) -> bool:
    keys = [k for k in before if ("running_" in k) == running_stats and before[k].is_floating_point()]
    return any(not torch.equal(before[k], after[k]) for k in keys)


def test_a_frozen_backbone_keeps_its_weights_and_the_heads_still_learn(competition_manifest, tmp_path):
    _result, before, after = run(competition_manifest, tmp_path, "frozen", **{"model.freeze_backbone_epochs": 5})
    assert not changed(before, after, running_stats=False) and not changed(before, after, running_stats=True)
    _, before, after = run(competition_manifest, tmp_path, "free")
    assert changed(before, after, running_stats=False)  # the control: without freezing the backbone moves


class BatchNormModes(Callback):
    """Whether the backbone's batch-norm layers were in training mode on each epoch's first batch."""

    def __init__(self) -> None:
        self.training: list[bool] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        if batch_idx == 0:
            norms = [m for m in module.backbone.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
            self.training.append(all(m.training for m in norms))


def test_an_unfrozen_backbone_trains_its_batch_norm_statistics_again(competition_manifest, tmp_path):
    """Frozen epochs hold the statistics (eval mode, which Lightning's validation then restores as it found it);
    once unfrozen, the backbone must train whole again, as a run that never froze does."""
    modes = BatchNormModes()
    extra = {"run.name": "unfrozen", "model.freeze_backbone_epochs": 1, "train.epochs": 3}
    train(load_config(None, tiny_overrides(competition_manifest, tmp_path, **extra)), callbacks=[modes])
    assert modes.training == [False, True, True]


def test_freeze_bn_keeps_the_batch_norm_statistics_while_the_weights_train(competition_manifest, tmp_path):
    _, before, after = run(competition_manifest, tmp_path, "bn", **{"model.freeze_bn": True})
    assert changed(before, after, running_stats=False) and not changed(before, after, running_stats=True)


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "adamp"])
def test_the_backbone_gets_its_share_of_the_learning_rate(name):
    from torch import nn

    from faceattr.models.optim import create_optimizer

    optimizer = create_optimizer(
        OptimConfig(name=name, lr=0.01, backbone_lr_mult=0.1), nn.Linear(2, 2), nn.Linear(2, 1)
    )
    groups = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert groups == pytest.approx({"backbone": 0.001, "heads": 0.01})


def test_early_stopping_ends_a_run_that_stops_improving(competition_manifest, tmp_path):
    extra = {
        "train.epochs": 8,
        "train.early_stopping_patience": 1,
        "optim.lr": 1e-12,
        "train.monitor": "val/loss",
        "train.monitor_mode": "min",
    }
    result, _, _ = run(competition_manifest, tmp_path, "early", **extra)
    epochs = pd.read_csv(result.run_dir / "csv" / "metrics.csv")["epoch"].max() + 1
    assert epochs < 8


def test_the_kept_checkpoint_holds_what_prediction_reads_and_last_what_a_resume_needs(competition_manifest, tmp_path):
    """With train.monitor=last both files are the last epoch: linked while the run trains (one write an epoch), the
    kept one slimmed when it ends (weights, config, epoch: the file users ship), last.ckpt whole for --resume."""
    result, _, _ = run(competition_manifest, tmp_path, "last", **{"train.epochs": 2, "train.monitor": "last"})
    assert result.best_epoch == 1
    best, last = result.best_checkpoint, result.last_checkpoint
    kept, whole = torch.load(best, weights_only=True), torch.load(last, weights_only=True)
    assert kept["epoch"] == whole["epoch"] == 1 and kept["hyper_parameters"] == whole["hyper_parameters"]
    assert all(torch.equal(kept["state_dict"][k], v) for k, v in whole["state_dict"].items())
    assert "optimizer_states" not in kept and "optimizer_states" in whole
    assert best.stat().st_size < 0.6 * last.stat().st_size
    held = tmp_path / "held.ckpt"
    os.link(last, held)  # what a user or a copy holds of the last epoch
    more = {"run.name": "last", "train.epochs": 3, "train.monitor": "last"}
    train(load_config(None, tiny_overrides(competition_manifest, tmp_path, **more)), resume=True)
    assert torch.load(last, weights_only=True)["epoch"] == 2 == torch.load(best, weights_only=True)["epoch"]
    assert torch.load(held, weights_only=True)["epoch"] == 1  # replaced by rename, never written through


def test_the_kept_checkpoint_is_the_epoch_with_the_lowest_val_error(competition_manifest, tmp_path):
    extra = {"train.epochs": 3, "train.monitor": "val/error", "train.monitor_mode": "min"}
    result, _, _ = run(competition_manifest, tmp_path, "error", **extra)
    log = pd.read_csv(result.run_dir / "csv" / "metrics.csv").dropna(subset=["val/error"])
    assert result.best_epoch == int(log.loc[log["val/error"].idxmin(), "epoch"])
    summary = json.loads((result.run_dir / "train_summary.json").read_text())
    assert summary["best_score"] == pytest.approx(log["val/error"].min(), abs=1e-5)


def test_ema_saves_averaged_weights(competition_manifest, tmp_path):
    _plain, _, plain_weights = run(competition_manifest, tmp_path, "plain")
    ema, _, ema_weights = run(competition_manifest, tmp_path, "ema", **{"train.ema_decay": 0.9})
    assert ema.best_checkpoint.is_file()
    assert any(not torch.allclose(plain_weights[k], ema_weights[k]) for k in plain_weights if "running" not in k)


def test_a_resumed_ema_run_keeps_its_average(competition_manifest, tmp_path):
    """The average travels in last.ckpt: a run stopped after 2 of 3 epochs and resumed saves the same averaged (and
    raw) weights as the run that went straight through; resumed without the average, it would not. (A step
    schedule, flat over these epochs, so that the stopped run's lr equals the straight one's.)"""
    ema = {"train.ema_decay": 0.9, "train.full_data": True, "train.monitor": "last", "scheduler.name": "step"}
    overrides = tiny_overrides(competition_manifest, tmp_path, **{"run.name": "straight", "train.epochs": 3, **ema})
    straight = torch.load(train(load_config(None, overrides)).last_checkpoint, weights_only=True)
    stopped = tiny_overrides(competition_manifest, tmp_path, **{"run.name": "stopped", **ema})
    train(load_config(None, stopped))
    resumed = torch.load(
        train(load_config(None, [*stopped, "train.epochs=3"]), resume=True).last_checkpoint, weights_only=True
    )
    for weights in ("state_dict", "current_model_state"):  # the average, and the weights trained on
        assert all(torch.equal(straight[weights][k], resumed[weights][k]) for k in straight[weights])


class LearningRates(Callback):
    """The heads' lr at every training batch, as the optimizer step uses it."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.lrs.append(next(g["lr"] for g in trainer.optimizers[0].param_groups if g["name"] == "heads"))


def lrs_of(manifest, tmp_path, name: str, resume: bool = False, **extra) -> list[float]:
    watch = LearningRates()
    cfg = load_config(None, tiny_overrides(manifest, tmp_path, **{"run.name": name, "optim.lr": 0.01, **extra}))
    train(cfg, callbacks=[watch], resume=resume)
    return watch.lrs


def test_per_step_follows_the_schedule_every_step_and_ends_at_its_floor(competition_manifest, tmp_path):
    from faceattr.models.optim import lr_factor

    per_epoch = lrs_of(competition_manifest, tmp_path, "epoch", **{"train.epochs": 3})
    per_step = lrs_of(competition_manifest, tmp_path, "step", **{"train.epochs": 3, "scheduler.per_step": True})
    steps = len(per_step) / 3
    cosine = SchedulerConfig(name="cosine")
    assert per_step == pytest.approx([0.01 * lr_factor(cosine, n / steps, 3) for n in range(len(per_step))])
    assert len(set(per_epoch)) == 3 and len(set(per_step)) == len(per_step)  # the control: once an epoch, 3 values
    assert per_step[-1] < 0.2 * per_epoch[-1]  # the last epoch anneals instead of training at a quarter of the lr


def test_a_resumed_per_step_run_picks_the_schedule_up_where_it_stopped(competition_manifest, tmp_path):
    per_step = {"scheduler.per_step": True}
    straight = lrs_of(competition_manifest, tmp_path, "straight", **{"train.epochs": 3, **per_step})
    lrs_of(competition_manifest, tmp_path, "stopped", **{"train.epochs": 2, **per_step})
    resumed = lrs_of(competition_manifest, tmp_path, "stopped", resume=True, **{"train.epochs": 3, **per_step})
    assert resumed == pytest.approx(straight[-len(resumed) :]) and len(resumed) == len(straight) / 3


def test_init_from_starts_the_run_from_a_trained_models_weights(competition_manifest, tmp_path):
    trained, _, trained_backbone = run(competition_manifest, tmp_path, "first")
    saved = torch.load(trained.last_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    watch = InitialWeights()
    extra = {"run.name": "fine-tuned", "model.init_from": trained.last_checkpoint}
    train(load_config(None, tiny_overrides(competition_manifest, tmp_path, **extra)), callbacks=[watch])
    assert all(torch.equal(watch.state[k], trained_backbone[k]) for k in trained_backbone)
    assert all(torch.equal(watch.heads[k], saved[f"heads.{k}"]) for k in watch.heads)
    _, fresh_start, _ = run(competition_manifest, tmp_path, "fresh")  # the control: without it, another start
    assert changed(fresh_start, trained_backbone, running_stats=False)


def test_init_from_another_model_or_no_file_is_refused_before_anything_is_written(competition_manifest, tmp_path):
    one_head = {"model.heads": "[mask]", "train.monitor": "val/f1_mask"}
    mask_only, _, _ = run(competition_manifest, tmp_path, "mask-only", **one_head)
    for start, says in [(mask_only.last_checkpoint, "model.heads"), (tmp_path / "none.ckpt", "not found")]:
        extra = {"run.name": "refused", "model.init_from": start}
        with pytest.raises(ConfigError, match=says):
            train(load_config(None, tiny_overrides(competition_manifest, tmp_path, **extra)))
        assert not (tmp_path / "refused").exists()


def test_a_monitor_the_heads_do_not_log_or_the_wrong_way_round_is_refused_before_anything_is_written(
    competition_manifest, tmp_path
):
    """Before, a mask-only model with the default monitor (val/f1_18) trained an epoch and then stopped, and
    `train.monitor=val/loss` without `monitor_mode=min` kept the epoch with the highest loss."""
    refused = {"run.name": "refused", "model.heads": "[mask]"}
    with pytest.raises(ConfigError, match=r"train.monitor: 'val/f1_18' .*\['mask'\].*'val/f1_mask'"):
        train(load_config(None, tiny_overrides(competition_manifest, tmp_path, **refused)))
    assert not (tmp_path / "refused").exists()
    wrong_way = {"run.name": "refused", "train.monitor": "val/loss"}  # monitor_mode stays max: the worst epoch
    with pytest.raises(ConfigError, match=r"monitor_mode=max would keep the epoch with the highest val/loss.*=min"):
        train(load_config(None, tiny_overrides(competition_manifest, tmp_path, **wrong_way)))
    assert not (tmp_path / "refused").exists()


def test_the_metrics_a_monitor_may_name_are_the_ones_validation_logs(trained_run):
    """labels.validation_metrics spells the names train's monitor check accepts; the module logs them: the two agree."""
    from faceattr.labels import validation_metrics

    logged = {c for c in pd.read_csv(trained_run.run_dir / "csv" / "metrics.csv").columns if c.startswith("val/")}
    assert logged == set(validation_metrics(["mask", "gender", "age_bin"]))
