"""Image folders per class (`<root>/<class>/*.jpg`) read into a manifest with mask labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.data.sources.image_folder import parse_class_map, read_image_folder
from faceattr.errors import DatasetError


def _tree(root: Path, classes: dict[str, int]) -> Path:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(root / name / f"{i}.jpg")
    return root


def test_usual_class_names_map_to_mask_labels(tmp_path):
    root = _tree(tmp_path / "masks", {"with_mask": 3, "mask_weared_incorrect": 2, "without_mask": 4})
    frame = read_image_folder(root)
    assert frame.groupby("class_folder")["mask"].first().to_dict() == {
        "mask_weared_incorrect": 1,
        "with_mask": 0,
        "without_mask": 2,
    }
    assert (frame["gender"] == -1).all() and frame["age"].isna().all()  # unknown: no loss for those heads
    assert frame["person_id"].nunique() == len(frame) == 9  # each file its own person


def test_unknown_class_is_refused_with_the_valid_names_and_the_fix(tmp_path):
    root = _tree(tmp_path / "masks", {"with_mask": 1, "bare_faces": 1})
    with pytest.raises(DatasetError) as err:
        read_image_folder(root)
    message = str(err.value)
    assert "bare_faces" in message and "without_mask" in message and "--classes bare_faces=" in message


def test_a_class_map_names_the_folders(tmp_path):
    root = _tree(tmp_path / "masks", {"yes": 2, "no": 2})
    frame = read_image_folder(root, classes=parse_class_map("yes=wear, no=not_wear"))
    assert sorted(frame["mask"].tolist()) == [0, 0, 2, 2]
    with pytest.raises(DatasetError, match="folder=label"):
        parse_class_map("yes:wear")


def test_prepare_folder_command(tmp_path):
    root = _tree(tmp_path / "masks", {"with_mask": 3, "without_mask": 3})
    out = tmp_path / "real.csv"
    result = CliRunner().invoke(app, ["prepare", "folder", str(root), "--out", str(out), "--folds", "3"])
    assert result.exit_code == 0, result.output
    assert "wear 3" in result.output and "not_wear 3" in result.output
