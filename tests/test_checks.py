"""Data checks at prepare time: leaks, incomplete persons, labels that disagree with names."""

import shutil

import pandas as pd
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.data.checks import check_manifest
from faceattr.data.drawn_faces import make_competition_dataset
from faceattr.data.sources import read_competition


def _dataset(tmp_path):
    return make_competition_dataset(tmp_path / "data", persons=6, eval_persons=1, seed=3)


def test_clean_dataset_has_no_findings(tmp_path):
    df = read_competition(_dataset(tmp_path))
    report = check_manifest(df, pd.Series(range(len(df))) % 2)
    assert report.ok and report.lines() == []


def test_duplicate_image_across_persons_and_folds_is_reported(tmp_path):
    root = _dataset(tmp_path)
    folders = sorted((root / "train" / "images").iterdir())
    shutil.copy(folders[0] / "normal.jpg", folders[1] / "normal.jpg")
    df = read_competition(root)
    folds = (df["person_id"] == folders[1].name).astype(int)
    report = check_manifest(df, folds)
    assert len(report.duplicates_across_persons) == 1 and len(report.duplicates_across_folds) == 1
    assert any("leaks into validation" in line for line in report.lines())


def test_labels_that_disagree_with_folder_and_file_names_are_listed(tmp_path):
    df = read_competition(_dataset(tmp_path))
    df.loc[0, "gender"] = 1 - df.loc[0, "gender"]
    df.loc[1, "age"] = df.loc[1, "age"] + 10
    df.loc[2, "mask"] = (df.loc[2, "mask"] + 1) % 3
    report = check_manifest(df)
    text = "\n".join(report.lines())
    assert "but the folder says" in text and "but the file name says" in text
    assert len(report.label_disagreements) == 3


def test_prepare_lists_every_bad_folder_and_can_skip_them(tmp_path):
    root = _dataset(tmp_path)
    folders = sorted((root / "train" / "images").iterdir())
    (folders[0] / "mask3.jpg").unlink()
    (folders[1] / "normal.jpg").unlink()
    out = tmp_path / "m.csv"
    strict = CliRunner().invoke(app, ["prepare", "competition", str(root), "--out", str(out), "--folds", "2"])
    assert strict.exit_code == 2
    assert "2 problem(s)" in strict.output and "holds 6 of 7 images" in strict.output
    lenient = CliRunner().invoke(
        app, ["prepare", "competition", str(root), "--out", str(out), "--folds", "2", "--skip-bad-folders"]
    )
    assert lenient.exit_code == 0, lenient.output
    assert pd.read_csv(out)["person_id"].nunique() == 4
    checks = (tmp_path / "m.csv.checks.md").read_text()
    assert folders[0].name in checks and "missing mask3" in checks


def test_check_command_exits_1_on_findings(tmp_path):
    root = _dataset(tmp_path)
    df = read_competition(root)
    df.loc[0, "gender"] = 1 - df.loc[0, "gender"]
    df.to_csv(tmp_path / "m.csv", index=False)
    result = CliRunner().invoke(app, ["check", str(tmp_path / "m.csv")])
    assert result.exit_code == 1 and "but the folder says" in result.output
