"""Seeing the data and the model: stats, Grad-CAM, mistake galleries, trackers, Optuna tuning."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.config import load_config
from faceattr.errors import ConfigError
from faceattr.reports.gallery import confident_mistakes
from faceattr.reports.stats import STATS_FILES, ChannelStats, image_pass, write_normalization
from tests.conftest import tiny_overrides


def test_streaming_mean_and_std_equal_numpys(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in ((20, 30), (41, 17), (8, 64))]
    paths = []
    for k, image in enumerate(images):
        paths.append(str(tmp_path / f"{k}.png"))
        Image.fromarray(image).save(paths[-1])
    (tmp_path / "bad.png").write_bytes(b"not an image")
    from faceattr.data.images import SkipReport

    skips = SkipReport()
    channels, sizes = image_pass([*paths, str(tmp_path / "bad.png")], skips, progress=False)
    every_pixel = np.concatenate([i.reshape(-1, 3) for i in images]).astype(np.float64) / 255
    np.testing.assert_allclose(channels.mean, every_pixel.mean(0), atol=1e-12)
    np.testing.assert_allclose(channels.std, every_pixel.std(0), atol=1e-9)
    assert sizes[["width", "height"]].values.tolist() == [[30, 20], [17, 41], [64, 8]]
    assert len(skips) == 1 and ChannelStats().pixels == 0


def test_stats_writes_plots_report_and_puts_mean_std_into_a_config(competition_manifest, tmp_path):
    config = tmp_path / "mine.yaml"
    mine = "# my recipe: how I made it\ntrain:\n  epochs: 3  # enough here\naugment:\n  hflip: 0.5\n  mean: [0, 0, 0]\n"
    config.write_text(mine)
    out = tmp_path / "stats"
    args = ["stats", str(competition_manifest), "--out", str(out), "--write-config", str(config)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in ("counts.png", "age_by_gender.png", "images_per_person.png", "image_sizes.png"):
        assert Image.open(out / name).size[0] > 300
    assert {f.name for f in out.iterdir()} <= set(STATS_FILES)  # what `stats` refuses to write over is all it writes
    summary = json.loads((out / "stats.json").read_text())
    assert summary["images"] == 15 * 7 and summary["people"] == 15
    assert summary["images_per_person"] == {"min": 7, "median": 7.0, "max": 7}
    mask_counts = {row["name"]: row["images"] for row in summary["counts"]["mask"]}
    assert mask_counts == {"wear": 75, "incorrect": 15, "not_wear": 15}
    report = (out / "report.md").read_text()
    assert "![counts](counts.png)" in report and "## label18" in report
    cfg = load_config(config)
    assert cfg.augment.mean == pytest.approx(summary["mean"]) and cfg.train.epochs == 3
    written = config.read_text()  # the user's comments and layout kept, only mean/std new
    assert written.startswith(mine[: mine.index("  mean")])
    assert "  mean: [0." in written and "  std: [0." in written


def test_write_config_refuses_a_config_it_cannot_read_and_fills_an_empty_one(tmp_path):
    for text in ("train: [epochs: 3\n", "- a list, not a recipe\n", "augment: 0.5\n"):
        config = tmp_path / "broken.yaml"
        config.write_text(text)
        with pytest.raises(ConfigError, match=r"broken\.yaml.*left as it was"):
            write_normalization(config, [0.5] * 3, [0.2] * 3)
        assert config.read_text() == text
    for text in ("", "augment:\n", "# only a comment\n"):  # nothing yet to keep but the comment
        config = tmp_path / "empty.yaml"
        config.write_text(text)
        write_normalization(config, [0.5] * 3, [0.2] * 3)
        assert load_config(config).augment.std == [0.2] * 3 and config.read_text().startswith(text.split("aug")[0])


def test_cam_gives_a_heatmap_of_the_image_size_for_each_head(trained_run, competition_root, tmp_path):
    from faceattr.reports.cam import cam_sheets

    photo = next((competition_root / "train" / "images").rglob("mask1.*"))
    width, height = Image.open(photo).size
    assert width != height  # the heatmaps must come back at the photo's own, non-square size
    results = cam_sheets(trained_run.best_checkpoint, [str(photo)], worst=2, out_dir=tmp_path)
    assert len(results) == 3
    first = results[0]
    assert set(first.heatmaps) == {"mask", "gender", "age_bin"}
    for heatmap in first.heatmaps.values():
        assert heatmap.shape == (height, width)
        assert heatmap.min() >= 0 and heatmap.max() <= 1 + 1e-6
    assert all(Image.open(r.sheet).size[0] > 400 for r in results)
    result = CliRunner().invoke(app, ["cam", str(trained_run.best_checkpoint), "--heads", "age", "--worst", "1"])
    assert result.exit_code != 0 and "this model has heads" in result.output


def test_cam_takes_a_folder_of_photos_as_predict_does(trained_run, competition_root, tmp_path):
    person = next((competition_root / "train" / "images").iterdir())  # one person's folder of photos
    out = tmp_path / "cam"
    result = CliRunner().invoke(app, ["cam", str(trained_run.best_checkpoint), str(person), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("cam_*.png"))) == len(list(person.iterdir()))


def test_cam_passes_over_an_unreadable_photo_and_names_it(trained_run, competition_root, tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(next((competition_root / "train" / "images").iterdir()), photos)
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "cam"
    result = CliRunner().invoke(app, ["cam", str(trained_run.best_checkpoint), str(photos), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "broken.jpg" in result.output
    assert len(list(out.glob("cam_*.png"))) == len(list(photos.iterdir())) - 1
    nothing = tmp_path / "nothing"
    result = CliRunner().invoke(
        app, ["cam", str(trained_run.best_checkpoint), str(photos / "broken.jpg"), "--out", str(nothing)]
    )
    assert result.exit_code == 2 and "could be read" in result.output and not nothing.exists()


def test_the_cam_lights_up_where_the_evidence_is():
    """A model that calls "incorrect" from red pixels alone: its Grad-CAM must be bright on the red patch, dark
    elsewhere (an all-zero or uniform heatmap fails)."""
    from types import SimpleNamespace

    import torch
    from torch import nn

    from faceattr.reports.cam import explain

    class RedDetector(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU())
            self.fc = nn.Linear(2, 3)
            with torch.no_grad():
                weight = torch.zeros(2, 3, 3, 3)
                weight[0, :, 1, 1] = torch.tensor([1.0, -1.0, -1.0])  # red minus green and blue
                weight[1, :, 1, 1] = 0.01
                self.backbone[0].weight.copy_(weight)
                self.backbone[0].bias.zero_()
                self.fc.weight.copy_(torch.tensor([[0.0, 1.0], [8.0, 0.0], [0.0, 0.0]]))
                self.fc.bias.zero_()

        def forward(self, x):
            return {"mask": self.fc(self.backbone(x).mean(dim=(2, 3)))}

        def predict_probs(self, x):
            return {k: v.softmax(1) for k, v in self(x).items()}

    image = np.full((64, 96, 3), 128, np.uint8)
    image[8:28, 10:40] = (230, 20, 20)
    predictor = SimpleNamespace(
        module=RedDetector().eval(),
        transform=lambda image: {"image": (image.transpose(2, 0, 1) / 255).astype(np.float32)},
        device=torch.device("cpu"),
    )
    heatmaps, labels = explain(predictor, image, ["mask"])
    heat = heatmaps["mask"]
    inside = np.zeros(heat.shape, bool)
    inside[8:28, 10:40] = True
    assert "incorrect" in labels["mask"]
    assert heat[inside].mean() > 0.5 and heat[inside].mean() > 4 * heat[~inside].mean()


def test_confident_mistakes_rank_wrong_predictions_by_confidence():
    y_true = np.array([0, 0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7], [0.95, 0.05]])
    mistakes = confident_mistakes(y_true, probs, per_class=5)
    assert [(i, pred) for i, pred, _ in mistakes[0]] == [(1, 1), (2, 1)]
    assert mistakes[1] == [(4, 0, 0.95)]


def test_evaluate_draws_a_gallery_of_confident_mistakes(trained_run, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", str(trained_run.best_checkpoint), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for task in ("mask", "gender", "age_bin"):
        assert Image.open(tmp_path / f"mistakes_{task}.png").size[1] > 100


def test_run_folder_holds_config_commit_versions_and_metrics(trained_run):
    run = trained_run.run_dir
    info = json.loads((run / "run_info.json").read_text())
    assert "git_commit" in info and "torch" in info["versions"]
    assert (run / "config.yaml").is_file() and (run / "csv" / "metrics.csv").is_file()
    assert any((run / "tensorboard").iterdir())


def test_wandb_offline_and_mlflow_file_store_track_a_run(competition_manifest, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # wandb leaves its media/artifact folders in the temp dir
    from faceattr.training import train

    overrides = tiny_overrides(
        competition_manifest, tmp_path, **{"run.trackers": "[tensorboard,wandb,mlflow]", "train.epochs": 1}
    )
    result = train(load_config(None, overrides))
    offline_runs = list((result.run_dir / "wandb").glob("offline-run-*"))
    assert offline_runs, "wandb wrote no offline run"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("faceattr").experiment_id])
    assert runs and "val/f1_18" in runs[0].data.metrics
    with pytest.raises(ConfigError, match=r"run\.trackers"):
        load_config(None, ["run.trackers=[neptune]"])


def test_tune_runs_trials_resumes_the_study_and_writes_the_best_config(competition_manifest, tmp_path):
    pytest.importorskip("optuna")
    space = (
        "tune.space={optim.lr: {type: float, low: 1e-3, high: 1e-2, log: true}, "
        "loss.name: {type: categorical, choices: [ce, focal]}}"
    )
    overrides = [*tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 1, "run.name": "study"}), space]
    result = CliRunner().invoke(app, ["tune", *overrides, "--trials", "2"])
    assert result.exit_code == 0, result.output
    best = tmp_path / "study-tune" / "best.yaml"
    cfg = load_config(best)
    assert 1e-3 <= cfg.optim.lr <= 1e-2 and cfg.loss.name in ("ce", "focal")
    again = CliRunner().invoke(app, ["tune", *overrides, "--trials", "3"])  # continues the same SQLite study
    assert again.exit_code == 0, again.output
    assert "3 trials finished" in again.output
    trials = (tmp_path / "study-tune" / "trials.csv").read_text().strip().splitlines()
    assert len(trials) == 1 + 3
    assert os.path.isfile(tmp_path / "study-tune" / "study.db")


def test_a_tune_stopped_by_ctrl_c_goes_on_with_the_study_not_the_trial(competition_manifest, tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    import faceattr.training.fit as fit
    from faceattr.errors import Interrupted

    def stopped(*args, **kwargs):  # what train raises on a Ctrl-C: its way on is --resume, which tune has not
        raise Interrupted("stopped in epoch 2: ... the same command with --resume goes on from there")

    monkeypatch.setattr(fit, "train", stopped)
    space = "tune.space={optim.lr: {type: float, low: 1e-3, high: 1e-2}}"
    result = CliRunner().invoke(app, ["tune", *tiny_overrides(competition_manifest, tmp_path), space])
    said = " ".join(result.output.split())
    assert result.exit_code == 130 and "stopped in trial 0" in said and "study.db" in said and "--resume" not in said
