"""Untrusted files: opening a crafted checkpoint never runs its code, on predict, evaluate or resume."""

from __future__ import annotations

import os

import pytest
import torch

from faceattr.errors import ConfigError
from faceattr.models.checkpoints import read_checkpoint


class _Payload:
    """What an attacker pickles: unpickling calls open(MARKER, 'w'), creating the file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def evil_checkpoint(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"config": {}}, "x": _Payload(str(marker))}, path)
    return path, marker


def test_a_crafted_checkpoint_is_refused_before_any_code_runs(evil_checkpoint):
    path, marker = evil_checkpoint
    with pytest.raises(ConfigError, match="refused"):
        read_checkpoint(path)
    assert not marker.exists()


def test_predict_evaluate_and_resume_refuse_it_too(evil_checkpoint, tmp_path, competition_manifest):
    from faceattr.config import load_config
    from faceattr.inference.predictor import load_predictor
    from faceattr.reports.evaluate import evaluate
    from faceattr.training import train
    from tests.conftest import tiny_overrides

    path, marker = evil_checkpoint
    for call in (lambda: load_predictor(path), lambda: evaluate(path)):
        with pytest.raises(ConfigError, match="refused"):
            call()
    run_dir = tmp_path / "runs" / "tiny"
    (run_dir / "checkpoints").mkdir(parents=True)
    os.replace(path, run_dir / "checkpoints" / "last.ckpt")
    with pytest.raises(ConfigError, match="refused"):
        train(load_config(None, tiny_overrides(competition_manifest, tmp_path / "runs")), resume=True)
    assert not marker.exists()


def test_our_own_checkpoints_still_load(trained_run):
    ckpt = read_checkpoint(trained_run.best_checkpoint)
    assert isinstance(ckpt["hyper_parameters"]["config"], dict) and ckpt["state_dict"]
