"""The decoded-image cache: built once, read instead of JPEGs, refused when stale, never hiding a bad file."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.config import load_config
from faceattr.data.datamodule import FaceDataset
from faceattr.data.decoded_cache import DecodedCache, build_cache
from faceattr.data.images import SkipReport, load_rgb
from faceattr.data.manifest import read_manifest
from faceattr.errors import ConfigError
from tests.conftest import tiny_overrides


def _identity(image):
    return {"image": image}


def test_cache_holds_each_image_resized_and_the_dataset_reads_it(competition_manifest, tmp_path):
    frame = read_manifest(competition_manifest).head(10)
    npy = build_cache(frame, tmp_path / "c.npy", 48, progress=False)
    cache = DecodedCache(npy, expected_size=48)
    path = frame["path"].iloc[3]
    expected = np.asarray(Image.fromarray(load_rgb(path)).resize((48, 48), Image.BILINEAR))
    assert np.array_equal(cache.get(path), expected)
    width, height = Image.open(path).size
    assert cache.scale(path) == (48 / width, 48 / height)
    image, targets = FaceDataset(frame, _identity, cache=cache)[3]
    assert image.shape == (48, 48, 3) and np.array_equal(image, expected)
    assert int(targets["mask"]) == int(frame["mask"].iloc[3])
    with pytest.raises(ConfigError, match="--size 64"):
        DecodedCache(npy, expected_size=64)


def test_a_changed_source_makes_the_cache_stale_and_a_bad_file_is_still_reported(tmp_path):
    paths = []
    for k in range(3):
        paths.append(str(tmp_path / f"{k}.png"))
        Image.new("RGB", (30, 40), (k * 60, 0, 0)).save(paths[-1])
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    paths.append(str(bad))
    frame = pd.DataFrame({"path": paths, "mask": 2, "gender": 0, "age_bin": 0, "label18": 12, "age": 20.0})
    skips = SkipReport()
    npy = build_cache(frame, tmp_path / "c", 16, skips, progress=False)
    assert [e["path"] for e in skips.rows] == [str(bad)]
    meta = json.loads(npy.with_suffix(".json").read_text())
    assert [r["valid"] for r in meta["rows"]] == [True, True, True, False]
    reported = SkipReport()
    dataset = FaceDataset(frame, _identity, reported, cache=DecodedCache(npy))
    image, _ = dataset[3]  # the bad row is read from disk, reported, and replaced by the next readable one
    assert image.shape == (16, 16, 3) and [e["path"] for e in reported.rows] == [str(bad)]
    Image.new("RGB", (31, 40)).save(paths[1])
    with pytest.raises(ConfigError, match="stale"):
        DecodedCache(npy)


def test_training_from_the_cache_via_the_command_line(competition_manifest, tmp_path):
    out = tmp_path / "decoded.npy"
    result = CliRunner().invoke(app, ["cache", str(competition_manifest), "--size", "64", "--out", str(out)])
    assert result.exit_code == 0, result.output
    from faceattr.training import train

    overrides = tiny_overrides(competition_manifest, tmp_path, **{"data.decoded_cache": out, "train.epochs": 1})
    trained = train(load_config(None, overrides))
    assert trained.best_checkpoint.is_file()


def test_a_cache_of_other_images_is_said_and_the_rest_decoded_from_their_files(competition_manifest, tmp_path, caplog):
    from faceattr.training import train

    half = tmp_path / "half.csv"
    frame = pd.read_csv(competition_manifest)
    frame.head(len(frame) // 2).to_csv(half, index=False)  # e.g. a cache built from another manifest
    result = CliRunner().invoke(app, ["cache", str(half), "--size", "64", "--out", str(tmp_path / "half.npy")])
    assert result.exit_code == 0, result.output
    overrides = tiny_overrides(
        competition_manifest, tmp_path, **{"data.decoded_cache": tmp_path / "half.npy", "train.epochs": 1}
    )
    assert train(load_config(None, overrides)).best_checkpoint.is_file()
    assert "the rest are decoded from their files" in caplog.text


def test_the_cache_is_named_after_the_manifest_and_never_replaces_a_file(competition_manifest, tmp_path):
    """The default name keeps its size (two sizes, two caches), and neither a cache nor a user's file of the
    same name is replaced without --overwrite."""
    manifest = tmp_path / "faces.csv"
    manifest.write_bytes(competition_manifest.read_bytes())
    first = CliRunner().invoke(app, ["cache", str(manifest), "--size", "32"])
    assert first.exit_code == 0, first.output
    assert (tmp_path / "faces.decoded-32.npy").is_file() and (tmp_path / "faces.decoded-32.json").is_file()
    assert not (tmp_path / "faces.npy").exists() and not (tmp_path / "faces.json").exists()
    again = CliRunner().invoke(app, ["cache", str(manifest), "--size", "32"])
    assert again.exit_code == 2 and "--overwrite" in again.output
    mine = tmp_path / "mine.json"
    mine.write_text("a user's file")
    refused = CliRunner().invoke(app, ["cache", str(manifest), "--size", "32", "--out", str(tmp_path / "mine.npy")])
    assert refused.exit_code == 2 and mine.read_text() == "a user's file"
    replaced = CliRunner().invoke(app, ["cache", str(manifest), "--size", "32", "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
