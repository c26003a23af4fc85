"""Exact age: IMDB-WIKI and APPA-REAL readers, the 101-way head, masked losses and age metrics."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from faceattr.data.sources.appa_real import read_appa_real
from faceattr.data.sources.imdb_wiki import FilterReport, ImdbWikiFilters, age_at_photo, read_imdb_wiki
from faceattr.errors import DatasetError
from faceattr.labels import decide, expected_age
from faceattr.models.losses import AGE_LOSSES, age_distribution_loss, masked_cross_entropy
from faceattr.models.losses import expected_age as expected_age_torch
from faceattr.reports.metrics import age_metrics, error_by_decade

# Matlab datenum of 1970-01-01 is 719529
DOB_1970_01_01 = 719529.0
DOB_1970_12_01 = 719529.0 + 334


def _write_imdb(tmp_path, rows):
    """rows: (dob, photo_taken, gender, face_score, second_face_score, file exists)"""
    n = len(rows)
    paths = np.empty((1, n), dtype=object)
    for i, row in enumerate(rows):
        paths[0, i] = np.array([f"01/img{i}.jpg"])
        if row[5]:
            p = tmp_path / "01" / f"img{i}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (i, 0, 0)).save(p)  # a different photo per row (duplicates are dropped)
    struct = {
        "dob": np.array([[r[0] for r in rows]]),
        "photo_taken": np.array([[r[1] for r in rows]]),
        "full_path": paths,
        "gender": np.array([[r[2] for r in rows]], dtype=float),
        "face_score": np.array([[r[3] for r in rows]], dtype=float),
        "second_face_score": np.array([[r[4] for r in rows]], dtype=float),
        "celeb_id": np.array([[i % 3 for i in range(n)]]),
        "name": np.array([[np.array([f"person{i % 3}"]) for i in range(n)]], dtype=object),
    }
    savemat(tmp_path / "imdb.mat", {"imdb": struct})
    return tmp_path / "imdb.mat"


def test_age_is_taken_on_july_first_of_the_photo_year():
    assert age_at_photo(DOB_1970_01_01, 2000) == 30
    assert age_at_photo(DOB_1970_12_01, 2000) == 29  # birthday after July 1: not yet 30
    assert np.isnan(age_at_photo(0, 2000))


def test_imdb_wiki_reader_counts_each_filter(tmp_path):
    nan, inf = float("nan"), float("inf")
    mat = _write_imdb(
        tmp_path,
        [
            (DOB_1970_01_01, 2000, 1.0, 3.0, nan, True),  # kept: male, 30
            (DOB_1970_01_01, 2010, 0.0, 2.0, nan, True),  # kept: female, 40
            (DOB_1970_01_01, 2000, 1.0, 0.5, nan, True),  # low face score
            (DOB_1970_01_01, 2000, 1.0, -inf, nan, True),  # no face
            (DOB_1970_01_01, 2000, 1.0, inf, nan, True),  # inf score
            (DOB_1970_01_01, 2000, 1.0, 3.0, 1.2, True),  # second face
            (DOB_1970_01_01, 1960, 1.0, 3.0, nan, True),  # age -10
            (DOB_1970_01_01, 2000, nan, 3.0, nan, True),  # gender unknown
            (DOB_1970_01_01, 2000, 1.0, 3.0, nan, False),  # file missing
        ],
    )
    report = FilterReport()
    df = read_imdb_wiki(mat, report=report)
    assert report.total == 9 and report.kept == 2
    assert list(report.removed.values()) == [3, 1, 1, 1, 1]
    assert df["age"].tolist() == [30, 40]
    assert df["gender"].tolist() == [0, 1]  # IMDB's 1 = male becomes our 0
    assert (df["mask"] == -1).all() and df["person_id"].tolist() == ["imdb_0", "imdb_1"]
    loose = read_imdb_wiki(mat, filters=ImdbWikiFilters(min_face_score=0.0, drop_second_face=False))
    assert len(loose) == 4


def test_imdb_wiki_reader_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"no imdb\.mat or wiki\.mat"):
        read_imdb_wiki(tmp_path)
    savemat(tmp_path / "other.mat", {"x": np.zeros(3)})
    with pytest.raises(DatasetError, match="neither an 'imdb' nor a 'wiki'"):
        read_imdb_wiki(tmp_path / "other.mat")


def test_prepare_imdb_wiki_prints_what_each_filter_removed(tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    nan = float("nan")
    rows = [(DOB_1970_01_01, 2000 + i, float(i % 2), 3.0, nan, True) for i in range(6)]
    rows.append((DOB_1970_01_01, 2000, 1.0, 0.2, nan, True))
    mat = _write_imdb(tmp_path, rows)
    out = tmp_path / "imdb.csv"
    result = CliRunner().invoke(app, ["prepare", "imdb-wiki", str(mat), "--out", str(out), "--folds", "2"])
    assert result.exit_code == 0, result.output
    assert "removed       1  face_score < 1.0" in result.output and "kept          6" in result.output


def _write_appa(tmp_path):
    for split, ages in (("train", [20, 35]), ("valid", [70]), ("test", [8])):
        names = [f"{split}{i}.jpg" for i in range(len(ages))]
        for name in names:
            (tmp_path / split).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8)).save(tmp_path / split / name)
        if split == "train":
            Image.new("RGB", (4, 4)).save(tmp_path / split / (names[0] + "_face.jpg"))
        pd.DataFrame(
            {
                "file_name": names,
                "num_ratings": 30,
                "apparent_age_avg": [a + 2.5 for a in ages],
                "apparent_age_std": 3.0,
                "real_age": ages,
            }
        ).to_csv(tmp_path / f"gt_avg_{split}.csv", index=False)
    pd.DataFrame({"file": ["train0.jpg", "train1.jpg"], "gender": ["female", "male"]}).to_csv(
        tmp_path / "allcategories_train.csv", index=False
    )
    return tmp_path


def test_appa_real_reader(tmp_path):
    df = read_appa_real(_write_appa(tmp_path))
    assert df["split"].tolist() == ["train", "train", "valid", "test"]
    assert df["age"].tolist() == [20, 35, 70, 8] and df["apparent_age"].tolist() == [22.5, 37.5, 72.5, 10.5]
    assert df["path"].iloc[0].endswith("train0.jpg_face.jpg") and df["path"].iloc[1].endswith("train1.jpg")
    assert df["gender"].tolist() == [1, 0, -1, -1]
    assert df["age_bin"].tolist() == [0, 1, 2, 0]
    (tmp_path / "gt_avg_test.csv").write_text("file,age\nx.jpg,3\n")
    with pytest.raises(DatasetError, match="missing column"):
        read_appa_real(tmp_path)


def test_expectation_of_a_one_hot_distribution_is_that_age():
    for age in (0, 7, 42, 100):
        p = np.zeros((1, 101))
        p[0, age] = 1
        assert expected_age(p)[0] == pytest.approx(age)
        logits = torch.full((1, 101), -1e4)
        logits[0, age] = 0
        assert expected_age_torch(logits)[0].item() == pytest.approx(age, abs=1e-3)


def test_decide_derives_the_age_bin_from_the_age_head():
    p = np.zeros((2, 101))
    p[0, 25], p[1, 65] = 1, 1
    labels = decide({"mask": np.array([[0, 0, 1], [1, 0, 0]]), "gender": np.array([[1, 0], [0, 1]]), "age": p})
    assert labels["age_bin"].tolist() == [0, 2]
    assert labels["label18"].tolist() == [2 * 6 + 0 + 0, 0 + 3 + 2]
    assert decide({"age": p}, old_threshold=66)["age_bin"].tolist() == [0, 1]


def test_masked_losses_ignore_missing_labels():
    logits = torch.randn(4, 3, requires_grad=True)
    full = masked_cross_entropy(logits[:2], torch.tensor([0, 2]))
    partial = masked_cross_entropy(logits, torch.tensor([0, 2, -1, -1]))
    assert partial.item() == pytest.approx(full.item())
    none = masked_cross_entropy(logits, torch.full((4,), -1))
    none.backward()
    assert none.item() == 0 and torch.all(logits.grad == 0)
    age_logits = torch.randn(3, 101, requires_grad=True)
    assert age_distribution_loss(age_logits, torch.tensor([30, -1, -1])).item() == pytest.approx(
        age_distribution_loss(age_logits[:1], torch.tensor([30])).item()
    )


def test_gaussian_age_smoothing_prefers_near_misses():
    near, far = torch.full((1, 101), -10.0), torch.full((1, 101), -10.0)
    near[0, 32], far[0, 60] = 10.0, 10.0
    target = torch.tensor([30])
    assert age_distribution_loss(near, target, sigma=3) < age_distribution_loss(far, target, sigma=3)
    loss = age_distribution_loss(near.clone().requires_grad_(), target, sigma=2)
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", sorted(AGE_LOSSES))
def test_every_age_loss_ignores_unknown_ages_and_prefers_the_right_age(name):
    loss = AGE_LOSSES[name]
    right, wrong = torch.full((1, 101), -5.0), torch.full((1, 101), -5.0)
    right[0, 30], wrong[0, 50] = 5.0, 5.0
    assert loss(right, torch.tensor([30]), 2.0) < loss(wrong, torch.tensor([30]), 2.0)
    logits = torch.randn(3, 101, requires_grad=True)
    both = loss(logits, torch.tensor([30, -1, -1]), 2.0)
    assert both.item() == pytest.approx(loss(logits[:1], torch.tensor([30]), 2.0).item(), rel=1e-5)
    none = loss(logits, torch.full((3,), -1), 2.0)
    none.backward()
    assert none.item() == 0 and torch.all(logits.grad == 0)


def test_mean_variance_loss_penalises_a_wide_distribution_centred_on_the_age():
    """Two softmaxes whose expectation is the true age: the mean-variance loss adds 0.05 x their variance (sd 2
    and about sd 10, cut at age 0) and nothing for the mean."""
    ages = torch.arange(101.0)
    narrow = -0.5 * ((ages - 30) / 2) ** 2
    wide = -0.5 * ((ages - 30) / 10) ** 2
    target = torch.tensor([30])
    extra_narrow = AGE_LOSSES["mean_variance"](narrow[None], target, 0.0) - age_distribution_loss(narrow[None], target)
    extra_wide = AGE_LOSSES["mean_variance"](wide[None], target, 0.0) - age_distribution_loss(wide[None], target)
    assert extra_narrow.item() == pytest.approx(0.05 * 4, rel=1e-3)
    assert extra_wide.item() == pytest.approx(0.05 * 100, rel=2e-2)


def test_distribution_l1_loss_adds_a_tenth_of_the_expected_age_error():
    logits = torch.full((1, 101), -20.0)
    logits[0, 40] = 20.0
    extra = AGE_LOSSES["distribution+l1"](logits, torch.tensor([30]), 2.0) - age_distribution_loss(
        logits, torch.tensor([30]), 2.0
    )
    assert extra.item() == pytest.approx(1.0, rel=1e-3)


def test_age_metrics_and_decades():
    true = np.array([5.0, 25.0, 31.0, np.nan, 70.0])
    pred = np.array([7.0, 25.0, 40.0, 50.0, 66.0])
    m = age_metrics(true, pred, apparent=np.array([6.0, np.nan, np.nan, np.nan, 66.0]))
    assert m["mae"] == pytest.approx((2 + 0 + 9 + 4) / 4) and m["cs5"] == pytest.approx(3 / 4)
    assert m["mae_apparent"] == pytest.approx(0.5) and m["n"] == 4
    table = error_by_decade(true, pred)
    assert table["decade"].tolist() == ["0-9", "20-29", "30-39", "70-79"]
    assert table["bias"].tolist() == [2, 0, 9, -4]


def test_four_heads_train_together_and_evaluate_reports_age(competition_manifest, tmp_path):
    from faceattr.config import load_config
    from faceattr.reports.evaluate import evaluate
    from faceattr.training import train
    from tests.conftest import tiny_overrides

    overrides = tiny_overrides(
        competition_manifest, tmp_path, **{"model.heads": "[mask,gender,age_bin,age]", "model.age_sigma": 2.0}
    )
    run = train(load_config(None, [*overrides, "model.loss_weights.age=0.5"]))
    metrics = pd.read_csv(run.run_dir / "csv" / "metrics.csv")
    assert {"val/age_mae", "val/age_cs5", "train/loss_age", "val/f1_18"} <= set(metrics.columns)
    result = evaluate(run.best_checkpoint, out_dir=tmp_path / "eval")
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())["metrics"]
    assert 0 <= saved["age"]["mae"] < 60 and 0 <= saved["age"]["cs5"] <= 1
    assert (tmp_path / "eval" / "age_error_by_decade.png").is_file()
    assert "pred_age_years" in result.predictions.columns
