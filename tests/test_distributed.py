"""Two-process DDP on CPU (gloo) through Lightning's own launcher: both ranks train, rank 0 alone writes."""

import json
import os
import subprocess
import sys

import pytest

from faceattr.reports.evaluate import evaluate
from tests.conftest import tiny_overrides


def test_two_process_ddp_on_cpu(competition_manifest, tmp_path):
    overrides = tiny_overrides(
        competition_manifest,
        tmp_path,
        **{"trainer.devices": 2, "trainer.strategy": "ddp", "data.batch_size": 8, "run.name": "ddp"},
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "faceattr", "train", *overrides], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = tmp_path / "ddp"
    ranks = [json.loads((run / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert all(r["train_batches_seen"] > 0 for r in ranks)  # each rank trained on its own shard
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]  # written once
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["train_size"] // 8 // 2 <= ranks[0]["global_step"] / 2 <= summary["train_size"] // 8
    # the metric synced across ranks equals a single-process evaluation of the same weights
    single = evaluate(run / "checkpoints" / "last.ckpt", out_dir=tmp_path / "eval").metrics
    assert summary["last_metrics"]["val/f1_18"] == pytest.approx(single["label18"]["f1"], abs=0.05)
    assert summary["last_metrics"]["val/acc_mask"] == pytest.approx(single["mask"]["accuracy"], abs=0.05)


def test_only_the_first_process_of_the_first_node_counts_as_rank_zero(monkeypatch):
    """Why faceattr keeps its own launched_rank: before a Trainer exists, Lightning's helper reads LOCAL_RANK alone,
    so the first process of node 1 would count as rank 0 as well and decide the run folder too."""
    from lightning.fabric.utilities.rank_zero import _get_rank

    from faceattr.training.fit import launched_rank

    for var in ("RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NODE_RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert _get_rank() == 0  # Lightning's answer on node 1
    assert launched_rank() != 0
    monkeypatch.setenv("NODE_RANK", "0")
    assert launched_rank() == 0
    monkeypatch.setenv("RANK", "3")  # torchrun / Lightning's launcher with the global rank set
    assert launched_rank() == 3
