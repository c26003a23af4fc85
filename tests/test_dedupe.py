"""Several roots of one layout make one manifest, and no photo sits on both sides of the split."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.data.dedupe import drop_duplicate_images
from faceattr.data.sources import read_utkface


def _face(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
    return path


def _two_roots(tmp_path: Path) -> tuple[Path, Path]:
    """Two UTKFace folders: 30 + 30 faces; root B repeats one of A's photos under another name with the same
    labels, and another under a name whose labels disagree."""
    a, b = tmp_path / "utkface", tmp_path / "utkface-extra"
    a.mkdir()
    b.mkdir()
    for i in range(30):
        _face(a / f"{20 + i}_{i % 2}_{i % 5}_2017010{i:04d}.jpg.chip.jpg", i)
        _face(b / f"{30 + i}_{i % 2}_{i % 5}_2017020{i:04d}.jpg.chip.jpg", 100 + i)
    shutil.copy(a / "20_0_0_20170100000.jpg.chip.jpg", b / "20_0_0_20170309999.jpg.chip.jpg")  # same labels
    shutil.copy(a / "21_1_1_20170100001.jpg.chip.jpg", b / "65_0_1_20170309998.jpg.chip.jpg")  # labels disagree
    return a, b


def test_duplicates_keep_one_copy_and_conflicting_labels_drop_all(tmp_path):
    a, b = _two_roots(tmp_path)
    frame = pd.concat([read_utkface(a), read_utkface(b)], ignore_index=True)
    kept, report = drop_duplicate_images(frame)
    assert len(frame) == 62 and len(kept) == 62 - 1 - 2
    assert [Path(p).name for p in report.copies_dropped] == ["20_0_0_20170309999.jpg.chip.jpg"]
    assert {Path(p).name for p in report.conflicts_dropped[0]} == {
        "21_1_1_20170100001.jpg.chip.jpg",
        "65_0_1_20170309998.jpg.chip.jpg",
    }
    assert (a / "20_0_0_20170100000.jpg.chip.jpg").is_file()  # nothing on disk is touched


def test_prepare_joins_roots_and_no_photo_sits_in_train_and_held_out(tmp_path):
    a, b = _two_roots(tmp_path)
    out = tmp_path / "m.csv"
    result = CliRunner().invoke(app, ["prepare", "utkface", str(a), str(b), "--out", str(out), "--folds", "3"])
    assert result.exit_code == 0, result.output
    assert "dropped 1 duplicate copies" in result.output
    manifest = pd.read_csv(out)
    assert len(manifest) == 59 and set(manifest["source"]) == {"utkface"}
    assert set(manifest["source_root"]) == {str(a), str(b)}
    split = pd.read_csv(tmp_path / "m.csv.folds-k3-seed42.csv", dtype={"person_id": str})
    folds = manifest["person_id"].astype(str).map(dict(zip(split["person_id"], split["fold"], strict=True)))
    digests = manifest["path"].map(lambda p: Path(p).read_bytes())
    assert digests.groupby(digests).ngroups == len(manifest)  # every photo once, so once per fold side
    assert folds.notna().all()
    # --no-drop-duplicates keeps them, and the data check then reports the leak
    kept = CliRunner().invoke(
        app, ["prepare", "utkface", str(a), str(b), "--out", str(tmp_path / "k.csv"), "--no-drop-duplicates"]
    )
    assert kept.exit_code == 0 and len(pd.read_csv(tmp_path / "k.csv")) == 62
    assert "duplicate" in kept.output
