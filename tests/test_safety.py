"""Untrusted files: opening a crafted checkpoint never runs its code, on predict, evaluate or resume."""

from __future__ import annotations

import os

import pytest
import torch

from faceattr.errors import ConfigError
from faceattr.models.checkpoints import read_checkpoint


class _Payload:
    """What an attacker pickles: unpickling calls open(MARKER, 'w'), creating the file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def evil_checkpoint(tmp_path):
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"config": {}}, "x": _Payload(str(marker))}, path)
    return path, marker


def test_a_crafted_checkpoint_is_refused_before_any_code_runs(evil_checkpoint):
    path, marker = evil_checkpoint
    with pytest.raises(ConfigError, match="refused"):
        read_checkpoint(path)
    assert not marker.exists()


def test_predict_evaluate_and_resume_refuse_it_too(evil_checkpoint, tmp_path, competition_manifest):
    from faceattr.config import load_config
    from faceattr.inference.load import load_predictor
    from faceattr.reports.evaluate import evaluate
    from faceattr.training import train
    from tests.conftest import tiny_overrides

    path, marker = evil_checkpoint
    for call in (lambda: load_predictor(path), lambda: evaluate(path)):
        with pytest.raises(ConfigError, match="refused"):
            call()
    run_dir = tmp_path / "runs" / "tiny"
    (run_dir / "checkpoints").mkdir(parents=True)
    os.replace(path, run_dir / "checkpoints" / "last.ckpt")
    with pytest.raises(ConfigError, match="refused"):
        train(load_config(None, tiny_overrides(competition_manifest, tmp_path / "runs")), resume=True)
    assert not marker.exists()


def test_our_own_checkpoints_still_load(trained_run):
    ckpt = read_checkpoint(trained_run.best_checkpoint)
    assert isinstance(ckpt["hyper_parameters"]["config"], dict) and ckpt["state_dict"]


def _photos(folder, names):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (120, 100, 3), dtype=np.uint8)).save(path)
    return folder


def test_predict_never_deletes_or_overwrites_a_users_files(trained_run, tmp_path):
    """A training run's own skipped.csv survives; same-named photos get their own drawn copies; an existing
    predictions file is refused without --overwrite."""
    from typer.testing import CliRunner

    from faceattr.cli import app

    photos = _photos(tmp_path / "in", ["a/x.jpg", "a/x.png", "b/x.jpg"])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    theirs = out_dir / "skipped.csv"
    theirs.write_text("path,reason\nmine.jpg,corrupt\n")
    args = ["predict", str(trained_run.best_checkpoint), str(photos), "--faces", "--out", str(out_dir / "p.csv")]
    first = CliRunner().invoke(app, [*args, "--draw", str(tmp_path / "drawn")])
    assert first.exit_code == 0, first.output
    assert theirs.read_text() == "path,reason\nmine.jpg,corrupt\n"
    drawn = sorted(p.relative_to(tmp_path / "drawn").as_posix() for p in (tmp_path / "drawn").rglob("*.jpg"))
    assert drawn == ["a/x.jpg_faces.jpg", "a/x.png_faces.jpg", "b/x.jpg_faces.jpg"]
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert CliRunner().invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_all_images_missing_is_a_clear_error_not_a_crash_or_an_empty_success(trained_run, tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from faceattr.cli import app
    from faceattr.data.manifest import read_manifest, write_manifest

    frame = read_manifest(_manifest_of(trained_run))
    gone = write_manifest(
        frame.assign(path=[str(tmp_path / f"gone{i}.jpg") for i in range(len(frame))]), tmp_path / "gone.csv"
    )
    ev = CliRunner().invoke(app, ["evaluate", str(trained_run.best_checkpoint), "--manifest", str(gone)])
    assert ev.exit_code == 2 and "skipped" in ev.output, ev.output
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    pr = CliRunner().invoke(
        app,
        [
            "predict",
            str(trained_run.best_checkpoint),
            str(tmp_path / "bad.jpg"),
            "--no-faces",
            "--out",
            str(tmp_path / "p.csv"),
        ],
    )
    assert pr.exit_code == 2 and "p.skipped.csv" in pr.output
    assert not (tmp_path / "p.csv").exists() and isinstance(pd.read_csv(tmp_path / "p.skipped.csv"), pd.DataFrame)


def _manifest_of(run):
    import yaml

    return yaml.safe_load((run.run_dir / "config.yaml").read_text())["data"]["manifest"]


def test_a_crops_manifest_works_from_any_folder(tmp_path, monkeypatch):
    """`faceattr crop --cache cache_dir` with a relative cache: the manifest's paths still resolve elsewhere."""
    from pathlib import Path

    from faceattr.data.manifest import read_manifest, write_manifest
    from faceattr.faces.crop import crop_manifest
    from tests.test_faces import FakeDetector, _manifest

    frame = _manifest(tmp_path, n=2)
    monkeypatch.chdir(tmp_path)
    result = crop_manifest(frame, "cache_dir", detector_factory=FakeDetector, progress=False)
    manifest = write_manifest(result.manifest, tmp_path / "crops.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert all(Path(p).is_file() for p in read_manifest(manifest)["path"])


@pytest.mark.parametrize("encoding", ["latin-1", "cp949", "utf-8-sig"])
def test_info_csv_in_common_encodings_works(tmp_path, encoding):
    """A competition eval/info.csv saved by Excel (BOM), in Latin-1, or in the CP949 that Korean tools write."""
    import pandas as pd

    from faceattr.data.text_tables import read_text_table

    path = tmp_path / "info.csv"
    name = {"latin-1": "café.jpg", "cp949": "사진1.jpg", "utf-8-sig": "plain.jpg"}[encoding]
    path.write_bytes(f"ImageID,ans\n{name},0\nother.jpg,3\n".encode(encoding))
    table = read_text_table(path)
    assert list(table.columns) == ["ImageID", "ans"] and table["ImageID"].iloc[0] == name
    assert isinstance(table, pd.DataFrame)


def test_undecodable_or_broken_tables_fail_clearly(tmp_path):
    from faceattr.data.text_tables import read_text_table
    from faceattr.errors import DatasetError

    binary = tmp_path / "info.csv"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(DatasetError, match=r"info\.csv"):
        read_text_table(binary)


def test_a_failed_prepare_writes_nothing(tmp_path):
    """The eval side is read before the train manifest is written: a bad info.csv leaves no half-made outputs."""
    from typer.testing import CliRunner

    from faceattr.cli import app
    from faceattr.data.drawn_faces import make_competition_dataset

    root = make_competition_dataset(tmp_path / "data", persons=6, eval_persons=1, seed=0)
    (root / "eval" / "info.csv").write_bytes(b"ImageID;ans\n\x00\x01")  # no ImageID column
    out = tmp_path / "m" / "manifest.csv"
    result = CliRunner().invoke(app, ["prepare", "competition", str(root), "--out", str(out), "--folds", "2"])
    assert result.exit_code == 2
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_csv_reader_lists_every_bad_value_plainly_and_drops_repeated_rows(tmp_path, caplog):
    import numpy as np
    from PIL import Image

    from faceattr.data.sources import read_csv_table
    from faceattr.errors import DatasetError

    for name in ("a.jpg", "b.jpg"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / name)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,age,gender\na.jpg,-4,male\nb.jpg,old,f\na.jpg,30,robot\n")
    with pytest.raises(DatasetError) as err:
        read_csv_table(bad)
    assert "line 4: 'robot'" in str(err.value) and "np." not in str(err.value)
    bad.write_text("path,age\na.jpg,-4\nb.jpg,old\n")
    with pytest.raises(DatasetError) as err:
        read_csv_table(bad)
    assert "line 2: -4" in str(err.value) and "line 3: old" in str(err.value) and "np." not in str(err.value)
    repeated = tmp_path / "rep.csv"
    repeated.write_text("path,person_id,age\na.jpg,p1,30\na.jpg,p1,30\nb.jpg,p2,40\n")
    frame = read_csv_table(repeated)
    assert len(frame) == 2 and "1 repeated row(s)" in caplog.text


def test_a_failed_train_leaves_no_empty_run_folder(tmp_path):
    from faceattr.config import load_config
    from faceattr.errors import ManifestError
    from faceattr.training import train

    cfg = load_config(
        None,
        [
            f"data.manifest={tmp_path / 'missing.csv'}",
            f"run.dir={tmp_path / 'runs'}",
            "run.name=failed",
            "model.pretrained=none",
            "model.backbone=test_efficientnet",
        ],
    )
    with pytest.raises(ManifestError):
        train(cfg)
    assert not (tmp_path / "runs" / "failed").exists()


def test_faces_max_pixels_reaches_prediction(trained_run, tmp_path):
    """faces.max_pixels (a decompression-bomb guard) is honoured by predict and evaluate, not only by crop."""
    import numpy as np
    from PIL import Image

    from faceattr.inference.load import load_predictor

    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(big)
    predictor = load_predictor(trained_run.best_checkpoint)
    predictor.cfg.faces.max_pixels = 100_000  # under the photo's 120,000
    result = predictor.predict_paths([str(big)])
    assert result.paths == [] and result.skipped[0][1] == "too_many_pixels"
