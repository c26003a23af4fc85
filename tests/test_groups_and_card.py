"""Per-group accuracy (evaluate --by) and the model card every evaluate writes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from faceattr.errors import ConfigError
from faceattr.reports.groups import group_keys, group_report


def _frame() -> tuple[pd.DataFrame, dict]:
    frame = pd.DataFrame(
        {
            "race": ["Asian"] * 40 + ["White"] * 40 + ["Other"] * 5,
            "gender": [0, 1] * 42 + [0],
            "age": [8.0] * 20 + [40.0] * 20 + [25.0] * 40 + [70.0] * 5,
            "age_bin": [0] * 20 + [1] * 20 + [0] * 40 + [2] * 5,
            "mask": [2] * 85,
        }
    )
    labels = {
        "gender": np.where(np.arange(85) < 40, 1 - frame["gender"], frame["gender"]),  # Asian rows all wrong
        "age_years": frame["age"].to_numpy() + np.where(np.arange(85) < 40, 10.0, 2.0),
        "age_bin": frame["age_bin"].to_numpy(),
    }
    return frame, labels


def test_groups_score_each_group_and_report_the_gap_without_small_groups():
    frame, labels = _frame()
    report = group_report(frame, labels, "race", min_n=30)
    table = {r["group"]: r for r in report["table"]}
    assert table["Asian"]["gender_acc"] == 0 and table["White"]["gender_acc"] == 1
    assert table["Asian"]["age_mae"] == pytest.approx(10) and table["White"]["age_mae"] == pytest.approx(2)
    assert table["Other"]["small"] and not table["Asian"]["small"]
    assert report["gaps"]["gender_acc"] == {"best": "White", "worst": "Asian", "gap": 1.0}
    assert report["gaps"]["age_mae"]["worst"] == "Asian"  # lower is better for MAE


def test_a_group_holding_one_age_bin_scores_that_bin_not_a_zero_for_each_bin_it_lacks():
    frame, labels = _frame()
    labels["age_bin"] = labels["age_bin"].copy()
    labels["age_bin"][:3] = 1  # 3 of the 20 Asian children put in the 30-59 bin
    table = {r["group"]: r for r in group_report(frame, labels, "age_decade", min_n=1)["table"]}
    recall = 17 / 20  # every face answered "<30" is a child: precision 1
    assert table["0-9"]["age_bin_f1"] == pytest.approx(2 * recall / (1 + recall))  # not halved by the 30-59 bin
    race = {r["group"]: r for r in group_report(frame, labels, "race", min_n=1)["table"]}
    both_bins = (2 * recall / (1 + recall) + 2 * 20 / 23 / (1 + 20 / 23)) / 2  # 30-59: 20 right of 23 answered
    assert race["Asian"]["age_bin_f1"] == pytest.approx(both_bins)  # a group holding both bins averages both


def test_combinations_and_age_decades_and_unknown_columns():
    frame, _ = _frame()
    assert group_keys(frame, "race+gender").iloc[0] == "Asian / male"
    assert set(group_keys(frame, "age_decade")) == {"0-9", "20-29", "40-49", "70-79"}
    with pytest.raises(ConfigError, match="no column 'hair'"):
        group_keys(frame, "hair")


def test_evaluate_by_writes_tables_charts_and_a_model_card(trained_run, tmp_path):
    from faceattr.reports.evaluate import evaluate

    result = evaluate(
        trained_run.best_checkpoint, out_dir=tmp_path / "eval", by=["gender", "age_bin+gender"], min_group=3
    )
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert [g["by"] for g in metrics["groups"]] == ["gender", "age_bin+gender"]
    assert sum(r["n"] for r in metrics["groups"][0]["table"]) == len(result.predictions)
    assert (tmp_path / "eval" / "groups_gender_gender_acc.png").stat().st_size > 1000
    card = (tmp_path / "eval" / "model_card.md").read_text()
    for section in (
        "## What it predicts",
        "## Data it was trained on",
        "## Recipe",
        "## Held-out results",
        "## Known limits",
        "## Intended use",
        "### by gender",
        "test_efficientnet",
        "expects faces found by centerface",
    ):
        assert section in card, section
    assert f"{metrics['metrics']['mask']['f1']:.3f}" in card  # the card quotes the evaluation's own numbers


def test_the_model_card_of_an_aligned_model_says_onto_which_template_and_with_what_padding():
    from faceattr.config import load_config
    from faceattr.reports.model_card import _recipe

    aligned = load_config(None, ["faces.align=true", "faces.align_template=utkface", "faces.align_padding=0"])
    assert "- faces aligned by their 5 landmarks (faces.align, template utkface, padding 0)" in _recipe(aligned, {})
    assert not any("aligned" in line for line in _recipe(load_config(None, []), {}))
