"""Photos with boxed faces (CSV, Pascal VOC, YOLO) -> one manifest row per face, a photo's faces kept together,
bad boxes and unknown class names refused; `crop` then frames each face as prediction would."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from faceattr.data.manifest import UNKNOWN
from faceattr.data.sources import read_boxes_csv, read_voc, read_yolo
from faceattr.data.sources.boxes import photo_half
from faceattr.errors import DatasetError

VOC_OBJECT = (
    "<object><name>{name}</name>"
    "<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
)


def photos(folder, names=("a.jpg", "b.jpg"), size=(200, 100)):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.new("RGB", size, (120, 110, 100)).save(folder / name)
    return folder


def test_a_box_csv_gives_a_row_per_face_labelled_by_its_class(tmp_path):
    photos(tmp_path / "photos")
    table = tmp_path / "faces.csv"
    table.write_text(
        "photo,x1,y1,x2,y2,mask\nphotos/a.jpg,10,10,50,60,worn\nphotos/a.jpg,100,20,140,70,incorrect\n"
        "photos/b.jpg,5,5,45,55,not_worn\n"
    )
    frame = read_boxes_csv(table)
    assert frame["mask"].tolist() == [0, 1, 2]
    assert frame[["box_x1", "box_y1", "box_x2", "box_y2"]].iloc[1].tolist() == [100, 20, 140, 70]
    assert frame["person_id"].tolist() == ["a", "a", "b"]  # the photo is the group every split keeps together
    assert frame.groupby("person_id")["split"].nunique().eq(1).all()


def test_a_box_csv_without_a_mask_column_gives_unlabelled_faces(tmp_path):
    """Faces a user has boxed but not labelled: kept with the mask unknown, for `faceattr pseudo-label`."""
    photos(tmp_path / "photos")
    table = tmp_path / "faces.csv"
    table.write_text("photo,x1,y1,x2,y2\nphotos/a.jpg,10,10,50,60\nphotos/b.jpg,5,5,45,55\n")
    frame = read_boxes_csv(table)
    assert frame["mask"].tolist() == [UNKNOWN, UNKNOWN] and frame["label18"].eq(UNKNOWN).all()


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("photos/a.jpg,150,10,400,90,worn", "mostly outside"),
        ("photos/a.jpg,50,10,40,90,worn", "empty"),
        ("photos/a.jpg,10,10,50,60,helmet", "unknown class name 'helmet'; valid:"),
        ("photos/zz.jpg,10,10,50,60,worn", "not found"),
    ],
)
def test_bad_boxes_and_unknown_classes_are_refused_with_the_fix(tmp_path, row, words):
    photos(tmp_path / "photos")
    table = tmp_path / "faces.csv"
    table.write_text(f"photo,x1,y1,x2,y2,mask\n{row}\n")
    with pytest.raises(DatasetError, match=words):
        read_boxes_csv(table)


def test_a_box_running_a_little_past_the_edge_is_clipped(tmp_path, caplog):
    photos(tmp_path / "photos")
    (tmp_path / "faces.csv").write_text("photo,x1,y1,x2,y2,mask\nphotos/a.jpg,170,50,210,110,worn\n")
    frame = read_boxes_csv(tmp_path / "faces.csv")
    assert frame[["box_x2", "box_y2"]].iloc[0].tolist() == [200, 100] and "clipped" in caplog.text


def test_pascal_voc_files_read_like_the_csv(tmp_path):
    photos(tmp_path / "images")
    annotations = tmp_path / "annotations"
    annotations.mkdir()
    objects = VOC_OBJECT.format(name="with_mask", x1=10, y1=10, x2=50, y2=60) + VOC_OBJECT.format(
        name="mask_weared_incorrect", x1=100, y1=20, x2=140, y2=70
    )
    (annotations / "a.xml").write_text(f"<annotation><filename>a.jpg</filename>{objects}</annotation>")
    frame = read_voc(annotations)
    assert frame["mask"].tolist() == [0, 1] and frame["path"].str.endswith("images/a.jpg").all()
    (annotations / "b.xml").write_text("")
    with pytest.raises(DatasetError, match="empty file"):
        read_voc(annotations)


def test_yolo_labels_are_fractions_of_the_photo(tmp_path):
    photos(tmp_path / "images")
    (tmp_path / "labels").mkdir()
    (tmp_path / "classes.txt").write_text("with_mask\nwithout_mask\nmask_weared_incorrect\n")
    (tmp_path / "labels" / "a.txt").write_text("1 0.25 0.5 0.2 0.4\n2 0.75 0.5 0.1 0.2\n")
    (tmp_path / "labels" / "b.txt").write_text("")  # a photo with no face
    frame = read_yolo(tmp_path)
    assert frame["mask"].tolist() == [2, 1]
    assert frame[["box_x1", "box_y1", "box_x2", "box_y2"]].iloc[0].tolist() == pytest.approx([30, 30, 70, 70])
    (tmp_path / "labels" / "a.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DatasetError, match="class 7 is not one of the 3 named"):
        read_yolo(tmp_path)


def test_the_fixed_split_is_by_photo_name_and_about_half_each():
    names = [f"photo_{k}.jpg" for k in range(400)]
    halves = [photo_half(n) for n in names]
    assert set(halves) == {"dev", "test"} and 150 < halves.count("dev") < 250
    assert photo_half("/some/folder/photo_3.jpg") == photo_half("photo_3.jpg")


def test_crop_frames_a_boxed_face_on_the_detectors_box_where_it_finds_it(tmp_path):
    from faceattr.config import FacesConfig
    from faceattr.faces.crop import crop_manifest
    from tests.conftest import public_face

    canvas = Image.new("RGB", (500, 300), (90, 110, 130))
    canvas.paste(public_face(), (40, 50))  # face about (70, 91)-(158, 202) on the canvas
    canvas.save(tmp_path / "group.jpg")
    table = tmp_path / "faces.csv"
    table.write_text("photo,x1,y1,x2,y2,mask\ngroup.jpg,66,80,162,210,not_worn\ngroup.jpg,380,120,410,150,worn\n")
    frame = read_boxes_csv(table)
    cfg = FacesConfig(margins=[0.1, 0.1, 0.2, 0.1], margin_unit="fraction")
    result = crop_manifest(frame, tmp_path / "cache", cfg, progress=False)
    crops = result.manifest
    assert len(crops) == 2 and crops["detection"].tolist() == ["detected", "box"]
    assert crops["source_path"].str.endswith("group.jpg").all() and crops["face_found"].all()
    first = np.asarray(Image.open(crops["path"][0]))
    assert first.shape[0] > first.shape[1] > 80  # the face and its margins, taller than wide
    assert pd.notna(crops["landmarks"][0]) and crops["landmarks"][0] != ""


def test_prepare_manifest_joins_manifests_and_keeps_their_people_apart(competition_manifest, tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    frame = pd.read_csv(competition_manifest)
    (tmp_path / "other").mkdir()
    copies = [shutil.copy(path, tmp_path / "other" / f"{i}.jpg") for i, path in enumerate(frame["path"])]
    other = tmp_path / "other.csv"
    frame.assign(path=copies).to_csv(other, index=False)  # other photos whose people have the same ids
    out = tmp_path / "joined.csv"
    done = CliRunner().invoke(
        app, ["prepare", "manifest", str(competition_manifest), str(other), "--out", str(out), "--folds", "3"]
    )
    assert done.exit_code == 0, done.output
    joined = pd.read_csv(out)
    assert len(joined) == 2 * len(frame)
    assert joined["person_id"].str.startswith(("manifest:", "other:")).all()
    assert joined["person_id"].nunique() == 2 * frame["person_id"].nunique()


def test_prepare_manifest_keeps_each_face_once_where_manifests_overlap(competition_manifest, tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    frame = pd.read_csv(competition_manifest)
    part = tmp_path / "part.csv"
    frame.head(10).to_csv(part, index=False)  # ten of the same faces again: the same image under two people
    out = tmp_path / "joined.csv"
    args = ["prepare", "manifest", str(competition_manifest), str(part), "--folds", "3"]
    done = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert done.exit_code == 0, done.output
    joined = pd.read_csv(out)
    assert len(joined) == len(frame) and not joined["path"].duplicated().any()
    assert "dropped 10 duplicate copies" in " ".join(done.output.split())
    kept = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "all.csv"), "--no-drop-duplicates"])
    assert kept.exit_code == 0 and len(pd.read_csv(tmp_path / "all.csv")) == len(frame) + 10
