"""The shipped default: `faceattr demo` runs the whole pipeline on synthetic faces."""

import json

import pandas as pd
from typer.testing import CliRunner

from faceattr.cli import app


def test_demo_runs_end_to_end_and_learns_the_drawn_labels(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path), "--persons", "45", "--epochs", "3"])
    assert result.exit_code == 0, result.output
    assert "not a benchmark" in result.output
    assert (tmp_path / "runs" / "demo" / "checkpoints" / "best.ckpt").is_file()
    assert (tmp_path / "runs" / "demo" / "eval" / "confusion_label18.png").is_file()
    submission = pd.read_csv(tmp_path / "submission.csv")
    assert len(submission) == 4 * 7 and submission["ans"].between(0, 17).all()
    scores = json.loads((tmp_path / "runs" / "demo" / "eval" / "metrics.json").read_text())["metrics"]
    assert scores["mask"]["f1"] > 0.8  # masks are drawn plainly; a working pipeline learns them in 3 epochs
