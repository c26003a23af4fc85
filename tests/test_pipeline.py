"""train -> evaluate -> predict -> submit on a synthetic competition dataset, and resuming a run."""

import json
import os
import shutil
from fnmatch import fnmatch
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.config import load_config
from faceattr.errors import ConfigError
from faceattr.reports.evaluate import REPORT_FILES, evaluate
from faceattr.training import train
from faceattr.training.fit import logged_rows
from tests.conftest import tiny_overrides


def test_training_writes_checkpoints_logs_and_summary(trained_run):
    run = trained_run.run_dir
    assert (run / "checkpoints" / "best.ckpt").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "config.yaml").is_file()
    info = json.loads((run / "run_info.json").read_text())
    assert "torch" in info["versions"]
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    metrics = pd.read_csv(run / "csv" / "metrics.csv")
    assert "val/f1_18" in metrics.columns and metrics["val/f1_18"].notna().sum() == 2
    summary = json.loads((run / "train_summary.json").read_text())
    assert summary["monitor"] == "val/f1_18" and 0 <= summary["best_score"] <= 1
    assert summary["train_size"] + summary["val_size"] == 105


def test_checkpoint_carries_config_and_normalization(trained_run):
    ckpt = torch.load(trained_run.best_checkpoint, map_location="cpu", weights_only=False)
    config = ckpt["hyper_parameters"]["config"]
    assert config["model"]["backbone"] == "test_efficientnet"
    assert config["augment"]["mean"] is not None


def test_evaluate_writes_metrics_report_and_confusion_pngs(trained_run, tmp_path):
    result = CliRunner().invoke(app, ["evaluate", str(trained_run.best_checkpoint), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {"mask", "gender", "age_bin", "label18"}
    rows = pd.read_csv(tmp_path / "predictions.csv")
    for task in metrics:  # the reported scores are the ones the written predictions give
        from sklearn.metrics import accuracy_score, f1_score

        truth, guess = rows[task], rows[f"pred_{task}"]
        assert metrics[task]["accuracy"] == pytest.approx(accuracy_score(truth, guess))
        assert metrics[task]["f1"] == pytest.approx(f1_score(truth, guess, average="macro"), abs=1e-6)
        assert metrics[task]["n"] == len(rows)
        png = tmp_path / f"confusion_{task}.png"
        assert png.is_file() and Image.open(png).size[0] > 200
    report = pd.read_csv(tmp_path / "per_class.csv")
    assert len(report[report.task == "label18"]) == 18
    written = [f.name for f in tmp_path.iterdir()]  # what evaluate refuses to write over is all it writes
    assert all(any(fnmatch(name, pattern) for pattern in REPORT_FILES) for name in written), written
    assert "label18" in result.output and "macro F1" in result.output


def test_evaluate_lines_up_a_manifest_that_lists_an_image_twice_or_a_missing_one(
    trained_run, competition_manifest, tmp_path
):
    # e.g. two manifests concatenated that share rows: every listed row is scored against its own labels
    frame = pd.read_csv(competition_manifest).head(12)
    missing = frame.iloc[[0]].assign(path=str(tmp_path / "gone.jpg"))
    listed = pd.concat([frame, frame.head(5), missing], ignore_index=True)
    manifest = tmp_path / "twice.csv"
    listed.to_csv(manifest, index=False)
    result = evaluate(trained_run.best_checkpoint, str(manifest), out_dir=tmp_path / "eval")
    predictions = pd.read_csv(tmp_path / "eval" / "predictions.csv")
    assert len(predictions) == 17 and result.metrics["mask"]["n"] == 17
    assert predictions["path"].tolist() == listed["path"].tolist()[:17]
    assert (predictions["mask"].to_numpy() == listed["mask"].to_numpy()[:17]).all()


def test_evaluate_scores_the_heads_a_manifest_has_truth_for_and_refuses_one_with_none(
    trained_run, competition_manifest, tmp_path
):
    frame = pd.read_csv(competition_manifest).head(20)
    masks_only = frame.assign(gender=-1, age=float("nan"), age_bin=-1, label18=-1)  # e.g. a crowd set's boxes
    masks_only.to_csv(tmp_path / "masks_only.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(trained_run.best_checkpoint),
            "--manifest",
            str(tmp_path / "masks_only.csv"),
            "--out",
            str(tmp_path / "eval"),
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert metrics["mask"]["n"] == 20 and metrics["gender"]["n"] == 0
    assert (tmp_path / "eval" / "confusion_mask.png").is_file()
    assert not (tmp_path / "eval" / "confusion_gender.png").exists()
    masks_only.assign(mask=-1).to_csv(tmp_path / "unlabelled.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            str(trained_run.best_checkpoint),
            "--manifest",
            str(tmp_path / "unlabelled.csv"),
            "--out",
            str(tmp_path / "eval2"),
        ],
    )
    assert result.exit_code == 2 and "no row has a label" in " ".join(result.output.split())


def test_evaluate_names_the_splits_and_folds_there_are_when_asked_for_one_that_is_not(
    trained_run, competition_manifest, tmp_path
):
    halves = tmp_path / "halves.csv"
    pd.read_csv(competition_manifest).assign(split="dev").to_csv(halves, index=False)
    checkpoint = str(trained_run.best_checkpoint)
    wrong_split = CliRunner().invoke(app, ["evaluate", checkpoint, "--manifest", str(halves), "--split", "test"])
    assert wrong_split.exit_code == 2 and "no row has split 'test'; its splits: dev" in " ".join(
        wrong_split.output.split()
    )
    wrong_fold = CliRunner().invoke(app, ["evaluate", checkpoint, "--fold", "7", "--out", str(tmp_path / "e")])
    assert wrong_fold.exit_code == 2 and "the model's split has folds 0..2" in " ".join(wrong_fold.output.split())


def test_predict_writes_one_row_per_image_and_reports_bad_files(trained_run, competition_root, tmp_path):
    images = competition_root / "eval" / "images"
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    out = tmp_path / "pred.csv"
    result = CliRunner().invoke(
        app, ["predict", str(trained_run.best_checkpoint), str(images), str(bad), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == len(list(images.glob("*.jpg")))
    for col in ("path", "mask", "gender", "age_bin", "label18", "p_mask_0", "p_gender_1", "p_age_bin_2"):
        assert col in table.columns
    assert (table.label18 == table["mask"] * 6 + table.gender * 3 + table.age_bin).all()
    probs = table[["p_mask_0", "p_mask_1", "p_mask_2"]].sum(axis=1)
    assert probs.between(0.999, 1.001).all()
    skipped = pd.read_csv(tmp_path / "pred.skipped.csv")
    assert skipped["path"].tolist() == [str(bad)] and "1 image(s) skipped" in result.output


def test_submit_fills_ans_for_every_row(trained_run, competition_root, tmp_path):
    out = tmp_path / "submission.csv"
    result = CliRunner().invoke(
        app, ["submit", str(trained_run.best_checkpoint), str(competition_root / "eval"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    info = pd.read_csv(competition_root / "eval" / "info.csv")
    sub = pd.read_csv(out)
    assert sub["ImageID"].tolist() == info["ImageID"].tolist()
    assert sub["ans"].between(0, 17).all()
    assert info["ans"].isna().all()  # the original is left alone
    # each row is the class `predict` gives the same image (not one class for every row)
    images = competition_root / "eval" / "images"
    predicted = CliRunner().invoke(
        app, ["predict", str(trained_run.best_checkpoint), str(images), "--out", str(tmp_path / "p.csv")]
    )
    assert predicted.exit_code == 0, predicted.output
    by_name = {Path(p).name: c for p, c in pd.read_csv(tmp_path / "p.csv")[["path", "label18"]].to_numpy()}
    assert sub["ans"].tolist() == [by_name[name] for name in sub["ImageID"]]
    (tmp_path / "skipped.csv").write_text("a user's own report\n")
    again = CliRunner().invoke(
        app, ["submit", str(trained_run.best_checkpoint), str(competition_root / "eval"), "--out", str(out)]
    )
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert (tmp_path / "skipped.csv").read_text() == "a user's own report\n"


def test_existing_run_folder_is_not_overwritten(competition_manifest, trained_run):
    cfg = load_config(None, tiny_overrides(competition_manifest, trained_run.run_dir.parent))
    with pytest.raises(ConfigError, match=r"already exists.*--overwrite"):
        train(cfg)


def test_resume_continues_from_last_checkpoint(competition_manifest, tmp_path):
    cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 1}))
    first = train(cfg)
    steps_before = torch.load(first.last_checkpoint, weights_only=False)["global_step"]
    cfg2 = load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 2}))
    second = train(cfg2, resume=True)
    ckpt = torch.load(second.last_checkpoint, weights_only=False)
    assert steps_before > 0 and ckpt["global_step"] == 2 * steps_before  # one more epoch, not two
    assert "optimizer_states" in ckpt and ckpt["lr_schedulers"]
    rows = pd.read_csv(second.run_dir / "csv" / "metrics.csv")
    assert sorted(rows["epoch"].dropna().unique().tolist()) == [0, 1]


def test_resuming_a_finished_run_is_refused_and_leaves_it_as_it_was(competition_manifest, tmp_path):
    cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 1}))
    first = train(cfg)
    before = {p: p.read_bytes() for p in (first.last_checkpoint, first.run_dir / "train_summary.json")}
    with pytest.raises(ConfigError, match=r"already trained 1 epoch.*train.epochs=3"):
        train(cfg, resume=True)
    with pytest.raises(ConfigError, match="pass one of them"):
        train(cfg, resume=True, overwrite=True)
    assert all(p.read_bytes() == data for p, data in before.items())


def test_per_task_resume_keeps_finished_tasks_and_starts_the_ones_never_begun(competition_manifest, tmp_path):
    from faceattr.training.per_task import train_per_task

    overrides = [
        *tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 1}),
        "per_task={mask: {}, gender: {}}",
    ]
    train_per_task(load_config(None, overrides))
    mask_last = tmp_path / "tiny-mask" / "checkpoints" / "last.ckpt"
    kept = mask_last.read_bytes()
    shutil.rmtree(tmp_path / "tiny-gender")  # stopped before the second task began
    results = train_per_task(load_config(None, overrides), resume=True)
    assert mask_last.read_bytes() == kept and results["mask"].last_checkpoint == mask_last
    assert results["gender"].best_checkpoint.is_file() and "val/f1_mask" in results["mask"].metrics


def test_last_ckpt_holds_the_last_epoch_when_it_is_not_the_best(competition_manifest, tmp_path):
    # since Lightning 2.6 its save_last writes last.ckpt only at a step that saved a top-k checkpoint: a killed
    # run would resume from its best epoch and train again every epoch after it
    still = {"train.epochs": 3, "optim.lr": 1e-12, "model.freeze_bn": True}  # no epoch after the first improves
    result = train(load_config(None, tiny_overrides(competition_manifest, tmp_path, **still)))
    last = torch.load(result.last_checkpoint, weights_only=False)
    assert result.best_epoch == 0 and last["epoch"] == 2
    assert not os.path.samefile(result.best_checkpoint, result.last_checkpoint)
    assert last["callbacks"]  # the checkpoint callbacks' state (the best so far) travels with it, for --resume


def test_resume_goes_on_when_the_killed_run_left_its_metrics_log_empty(competition_manifest, tmp_path):
    # kill -9 can land while the CSV logger has opened metrics.csv and not yet written it (seen in CI)
    first = train(load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 1})))
    steps_before = torch.load(first.last_checkpoint, weights_only=False)["global_step"]
    (first.run_dir / "csv" / "metrics.csv").write_text("")
    second = train(
        load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 2})), resume=True
    )
    assert torch.load(second.last_checkpoint, weights_only=False)["global_step"] == 2 * steps_before  # went on
    assert 1 in pd.read_csv(second.run_dir / "csv" / "metrics.csv")["epoch"].tolist()


def test_a_cut_off_or_empty_metrics_log_is_read_not_refused(tmp_path):
    log = tmp_path / "metrics.csv"
    log.write_text("epoch,step,val/loss\n0,10,0.5\n1,2")  # the last line cut mid-write
    rows = logged_rows(log)
    assert rows["val/loss"].tolist()[0] == 0.5 and rows["epoch"].tolist() == [0, 1]
    log.write_text("")
    assert logged_rows(log) is None and logged_rows(tmp_path / "missing.csv") is None


def test_resume_without_checkpoint_is_refused(competition_manifest, tmp_path):
    cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path))
    with pytest.raises(ConfigError, match=r"no .*last.ckpt"):
        train(cfg, resume=True)


def test_train_command_reports_config_errors(tmp_path):
    result = CliRunner().invoke(app, ["train", "train.epoch=3"])
    assert result.exit_code == 2 and "train.epochs" in result.output


def test_a_corrupt_training_image_is_skipped_and_reported(competition_root, tmp_path):
    from faceattr.data.manifest import write_manifest
    from faceattr.data.sources import read_competition

    df = read_competition(competition_root)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    normal = df["path"].str.endswith("normal.jpg")
    df.loc[normal, "path"] = str(broken)  # one bad photo per person: some land in validation, which drops none
    manifest = write_manifest(df, tmp_path / "manifest.csv")
    cfg = load_config(None, tiny_overrides(manifest, tmp_path, **{"train.epochs": 1}))
    result = train(cfg)
    assert result.skipped >= 1
    skipped = pd.read_csv(result.run_dir / "skipped.csv")
    assert set(skipped["path"]) == {str(broken)}
    assert (skipped["reason"] != "").all()
