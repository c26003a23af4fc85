"""Each source reader on small fixtures the tests create, including the bad cases."""

import shutil

import pandas as pd
import pytest
from PIL import Image

from faceattr.data.sources import read_competition, read_competition_eval, read_csv_table, read_utkface
from faceattr.errors import DatasetError
from faceattr.labels import MASK_FILE_STEMS


def _img(path, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 80, 60)).save(path)
    return path


def _person(images, folder, ext=".jpg"):
    for stem in MASK_FILE_STEMS:
        _img(images / folder / f"{stem}{ext}")


@pytest.fixture
def comp(tmp_path):
    images = tmp_path / "train" / "images"
    _person(images, "000001_female_Asian_45")
    _person(images, "000002_male_Asian_61", ext=".png")
    _person(images, "000003_male_Asian_20", ext=".jpeg")
    return tmp_path


def test_competition_reads_7_images_per_person_with_labels(comp):
    df = read_competition(comp)
    assert len(df) == 21
    assert df.groupby("person_id").size().eq(7).all()
    p1 = df[df.person_id == "000001_female_Asian_45"]
    assert set(p1["gender"]) == {1} and set(p1["age_bin"]) == {1}
    assert sorted(p1["mask"].tolist()) == [0, 0, 0, 0, 0, 1, 2]
    normal = p1[p1.path.str.endswith("normal.jpg")].iloc[0]
    assert normal["label18"] == 2 * 6 + 1 * 3 + 1
    assert set(df[df.person_id == "000002_male_Asian_61"]["age_bin"]) == {2}
    assert (df.source == "competition").all()


def test_competition_threshold_changes_bins(comp):
    df = read_competition(comp, old_threshold=45)
    assert set(df[df.person_id == "000001_female_Asian_45"]["age_bin"]) == {2}


def test_competition_ignores_hidden_and_apple_double_files(comp):
    folder = comp / "train" / "images" / "000001_female_Asian_45"
    (folder / "._mask1.jpg").write_bytes(b"\x00\x05\x16\x07")
    (folder / ".DS_Store").write_bytes(b"junk")
    (comp / "train" / "images" / ".cache").mkdir()
    assert len(read_competition(comp)) == 21


def test_competition_malformed_folder_name_names_it(comp):
    _person(comp / "train" / "images", "000004_female_Asian")
    with pytest.raises(DatasetError, match=r"000004_female_Asian.*<id>_<gender>_<race>_<age>"):
        read_competition(comp)


def test_competition_unknown_gender(comp):
    _person(comp / "train" / "images", "000004_other_Asian_30")
    with pytest.raises(DatasetError, match="unknown gender 'other'"):
        read_competition(comp)


def test_competition_unknown_label_file(comp):
    _img(comp / "train" / "images" / "000001_female_Asian_45" / "mask6.jpg")
    with pytest.raises(DatasetError, match=r"mask6.jpg: unknown label 'mask6'"):
        read_competition(comp)


def test_competition_missing_file_names_folder_and_stem(comp):
    (comp / "train" / "images" / "000002_male_Asian_61" / "incorrect_mask.png").unlink()
    with pytest.raises(DatasetError, match=r"000002_male_Asian_61: missing incorrect_mask"):
        read_competition(comp)


def test_competition_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_competition(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no person folders"):
        read_competition(tmp_path / "empty")


def test_competition_eval_side(tmp_path):
    images = tmp_path / "eval" / "images"
    for name in ("a.jpg", "b.jpg"):
        _img(images / name)
    pd.DataFrame({"ImageID": ["a.jpg", "b.jpg"], "ans": [0, 0]}).to_csv(tmp_path / "eval" / "info.csv", index=False)
    df = read_competition_eval(tmp_path)
    assert df["image_id"].tolist() == ["a.jpg", "b.jpg"]
    assert (df["label18"] == -1).all()
    (images / "b.jpg").unlink()
    with pytest.raises(DatasetError, match=r"missing, first: .*b.jpg"):
        read_competition_eval(tmp_path)
    pd.DataFrame({"id": ["a.jpg"]}).to_csv(tmp_path / "eval" / "info.csv", index=False)
    with pytest.raises(DatasetError, match="no 'ImageID' column"):
        read_competition_eval(tmp_path)


def test_utkface_names(tmp_path):
    _img(tmp_path / "25_1_2_20170116174525125.jpg.chip.jpg")
    _img(tmp_path / "70_0_0_20170116174525126.jpg")
    df = read_utkface(tmp_path).sort_values("age")
    assert df["age"].tolist() == [25, 70]
    assert df["gender"].tolist() == [1, 0]
    assert df["race"].tolist() == ["Asian", "White"]
    assert df["age_bin"].tolist() == [0, 2]
    assert (df["mask"] == 2).all() and df["person_id"].is_unique


def test_utkface_bad_name_is_named_or_skipped(tmp_path):
    _img(tmp_path / "25_1_2_20170116174525125.jpg")
    _img(tmp_path / "61_1_20170109142408075.jpg")
    with pytest.raises(DatasetError, match=r"61_1_20170109142408075.jpg.*--skip-bad-names"):
        read_utkface(tmp_path)
    assert len(read_utkface(tmp_path, skip_bad_names=True)) == 1


def test_csv_reader_with_words_and_numbers(tmp_path):
    _img(tmp_path / "imgs" / "a.jpg")
    _img(tmp_path / "imgs" / "b.jpg")
    (tmp_path / "list.csv").write_text(
        "path,person_id,mask,gender,age\nimgs/a.jpg,p1,wear,female,33\nimgs/b.jpg,p2,2,0,\n"
    )
    df = read_csv_table(tmp_path / "list.csv")
    assert df["mask"].tolist() == [0, 2]
    assert df["gender"].tolist() == [1, 0]
    assert df["age_bin"].tolist() == [1, -1]
    assert df["label18"].tolist() == [4, -1]
    assert df["path"].iloc[0] == str((tmp_path / "imgs" / "a.jpg").resolve())


def test_csv_reader_errors_name_row_column_and_fix(tmp_path):
    _img(tmp_path / "a.jpg")
    (tmp_path / "nopath.csv").write_text("file,mask\na.jpg,0\n")
    with pytest.raises(DatasetError, match="no 'path' column"):
        read_csv_table(tmp_path / "nopath.csv")
    (tmp_path / "badlabel.csv").write_text("path,mask\na.jpg,maybe\n")
    with pytest.raises(DatasetError, match=r"unknown label\(s\) in column 'mask' \(line 2: 'maybe'\)"):
        read_csv_table(tmp_path / "badlabel.csv")
    (tmp_path / "missing.csv").write_text("path\nghost.jpg\n")
    with pytest.raises(DatasetError, match=r"ghost\.jpg"):
        read_csv_table(tmp_path / "missing.csv")


def test_prepare_command_writes_manifest_split_and_counts(comp, tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    out = tmp_path / "m" / "manifest.parquet"
    result = CliRunner().invoke(app, ["prepare", "competition", str(comp), "--out", str(out), "--folds", "3"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and (out.parent / "manifest.parquet.folds-k3-seed42.csv").is_file()
    assert "21 images of 3 people" in result.output
    shutil.rmtree(comp / "train" / "images" / "000003_male_Asian_20")
    bad = CliRunner().invoke(app, ["prepare", "nosuch", str(comp)])
    assert bad.exit_code == 2 and "unknown source" in bad.output
