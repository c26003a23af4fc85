"""Runs survive faults: kill -9 and resume, non-finite losses, bad configs; nothing half-written."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from faceattr.config import load_config
from faceattr.errors import TrainingDiverged
from faceattr.training import train
from faceattr.training.checkpoint_io import atomic_torch_save
from tests.conftest import tiny_overrides


def _train_command(manifest, run_dir, name, *extra):
    overrides = tiny_overrides(manifest, run_dir, **{"run.name": name, "train.epochs": 3, "data.batch_size": 4})
    return [sys.executable, "-m", "faceattr", "train", *overrides, *extra]


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def _final(run_dir, name):
    return json.loads((run_dir / name / "train_summary.json").read_text())


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(competition_manifest, tmp_path):
    subprocess.run(
        _train_command(competition_manifest, tmp_path, "straight"),
        env=_env(),
        check=True,
        capture_output=True,
        timeout=600,
    )
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(
        _train_command(competition_manifest, tmp_path, "killed"),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    # kill as soon as the first epoch's checkpoint lands: the run is then inside the next epoch, whatever the
    # machine's speed (a fixed sleep let a fast, idle machine finish two more epochs first)
    assert proc.poll() is None, "the run finished before it could be killed; make the epochs longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(last, map_location="cpu", weights_only=True)  # usable, not half-written
    assert killed_at["epoch"] < 2 and "state_dict" in killed_at
    subprocess.run(
        [*_train_command(competition_manifest, tmp_path, "killed"), "--resume"],
        env=_env(),
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert not list(last.parent.glob(".*.tmp")), "a temp file from the killed write was left behind"
    straight, resumed = _final(tmp_path, "straight"), _final(tmp_path, "killed")
    for key in ("val/loss", "val/f1_18", "val/f1_mask", "val/acc_gender"):
        assert resumed["last_metrics"][key] == pytest.approx(straight["last_metrics"][key], abs=1e-4), key
    assert resumed["best_score"] == pytest.approx(straight["best_score"], abs=1e-4)


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "last.ckpt"
    atomic_torch_save({"v": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_torch_save({"v": Unpicklable()}, path)
    assert torch.load(path, weights_only=False) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_nonfinite_loss_stops_naming_step_and_checkpoint(competition_manifest, tmp_path, monkeypatch):
    from faceattr.models import module as module_file

    real = module_file.FaceAttrModule._total

    def poisoned(self, losses):
        total = real(self, losses)
        return total * float("nan") if self.global_step >= 3 else total

    monkeypatch.setattr(module_file.FaceAttrModule, "_total", poisoned)
    cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"data.batch_size": 4}))
    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 3 .*Last good checkpoint"):
        train(cfg)


def test_nonfinite_loss_can_skip_the_batch(competition_manifest, tmp_path, monkeypatch):
    from faceattr.models import module as module_file

    real = module_file.FaceAttrModule._total
    calls = {"n": 0}

    def poisoned(self, losses):
        calls["n"] += 1
        total = real(self, losses)
        return total * float("inf") if self.training and calls["n"] % 5 == 0 else total

    monkeypatch.setattr(module_file.FaceAttrModule, "_total", poisoned)
    overrides = tiny_overrides(competition_manifest, tmp_path, **{"data.batch_size": 4, "train.epochs": 1})
    result = train(load_config(None, [*overrides, "train.on_nonfinite_loss=skip"]))
    assert result.metrics["train/skipped_nonfinite"] >= 1
    weights = torch.load(result.last_checkpoint, weights_only=False)["state_dict"]
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
