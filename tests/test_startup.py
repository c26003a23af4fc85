"""Prediction, evaluation and serving start without the training stack (Lightning, torchmetrics, and
Albumentations, which only training's augmentation needs)."""

from __future__ import annotations

import subprocess
import sys

TRAINING_STACK = ("lightning", "pytorch_lightning", "torchmetrics", "albumentations")


def _imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def _imported_by_predict(model, photo, out, *flags: str) -> set[str]:
    """The modules a whole `faceattr predict MODEL PHOTO --faces` process imports."""
    return _imported_after(
        "from faceattr.cli import app\n"
        "try:\n"
        f"    app(['predict', {str(model)!r}, {str(photo)!r}, '--faces', '--out', {str(out)!r}, *{list(flags)!r}])\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
    )


def test_predict_evaluate_and_serve_do_not_import_lightning():
    loaded = _imported_after(
        "import faceattr.inference.predictor, faceattr.reports.evaluate, faceattr.serve.app, faceattr.inference.export"
    )
    assert not loaded & set(TRAINING_STACK), loaded & set(TRAINING_STACK)


def test_predicting_with_a_checkpoint_loads_no_lightning(trained_run, tmp_path):
    """A whole predict call, checkpoint included: the weights go into the plain network."""
    from PIL import Image

    photo = tmp_path / "p.jpg"
    Image.new("RGB", (80, 100), (120, 100, 90)).save(photo)
    loaded = _imported_after(
        "from faceattr.inference.load import load_predictor\n"
        f"p = load_predictor({str(trained_run.best_checkpoint)!r})\n"
        f"assert len(p.predict_paths([{str(photo)!r}]).paths) == 1"
    )
    assert not loaded & set(TRAINING_STACK)


def test_an_exported_onnx_model_is_served_without_timm():
    """The ONNX path builds no network: timm (and the torchvision models it pulls in for itself) stays unloaded."""
    loaded = _imported_after(
        "import faceattr.inference.predictor, faceattr.inference.export, faceattr.serve.app, "
        "faceattr.inference.faces_in_photos"
    )
    assert "timm" not in loaded


def test_predicting_faces_with_an_onnx_model_imports_no_torch(trained_run, tmp_path):
    """`faceattr predict model.onnx photo --faces`, whole: MTCNN and the model both run on onnxruntime (the
    networks exported beside the model), so torch (about 2 s of start-up) is never imported."""
    from faceattr.inference.export import export_onnx
    from tests.conftest import public_face

    model, _ = export_onnx(trained_run.best_checkpoint, tmp_path / "model.onnx")
    photo = tmp_path / "face.jpg"
    public_face().save(photo)
    out = tmp_path / "p.csv"
    loaded = _imported_by_predict(model, photo, out)
    assert out.is_file() and "face_found" in out.read_text()
    heavy = {"torch", "torchvision", "facenet_pytorch", "timm", *TRAINING_STACK}
    assert not loaded & heavy, loaded & heavy


def test_a_checkpoint_runs_from_its_onnx_copy_without_torch(trained_run, tmp_path, monkeypatch):
    """`faceattr predict CKPT photo` on a CPU: the first run exports the checkpoint into the user cache, later runs
    import neither torch nor timm, and every run gives the torch path's labels and probabilities."""
    import pytest

    from faceattr.inference.onnx_cache import cached_model_path, gpu_present
    from tests.conftest import public_face

    if gpu_present():
        pytest.skip("with a GPU driver loaded, device=auto may pick the GPU and the checkpoint runs on torch")
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    photo = tmp_path / "face.jpg"
    public_face().save(photo)
    ckpt = str(trained_run.best_checkpoint)
    _imported_by_predict(ckpt, photo, tmp_path / "torch.csv", "--no-onnx-cache")
    assert not cached_model_path(ckpt).exists()  # --no-onnx-cache writes nothing to the cache
    _imported_by_predict(ckpt, photo, tmp_path / "first.csv")
    assert cached_model_path(ckpt).is_file()
    loaded = _imported_by_predict(ckpt, photo, tmp_path / "second.csv")
    assert not loaded & {"torch", "timm", "torchvision"}, loaded & {"torch", "timm", "torchvision"}

    import pandas as pd

    torch_rows = pd.read_csv(tmp_path / "torch.csv")
    for name in ("first.csv", "second.csv"):
        onnx_rows = pd.read_csv(tmp_path / name)
        probs = [c for c in torch_rows.columns if c.startswith("p_")]
        assert probs and list(onnx_rows.columns) == list(torch_rows.columns)
        labels = [c for c in torch_rows.columns if c in ("mask", "gender", "age_bin", "label18")]
        assert (onnx_rows[labels] == torch_rows[labels]).all().all()
        assert (onnx_rows[probs] - torch_rows[probs]).abs().max().max() < 1e-4


def test_the_onnx_copy_follows_the_checkpoints_bytes(trained_run, tmp_path, monkeypatch):
    """A copied checkpoint shares its ONNX copy; a changed one (retrained, edited) gets a new one; a copy missing
    its sidecar (a run killed mid-export) is exported again, not used."""
    import shutil

    from faceattr.inference.onnx_cache import cached_model_path, is_complete, onnx_copy
    from faceattr.inference.onnx_predictor import sidecar_path

    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    original = trained_run.best_checkpoint
    copy = shutil.copy(original, tmp_path / "copy.ckpt")
    assert cached_model_path(copy) == cached_model_path(original)
    changed = tmp_path / "changed.ckpt"
    changed.write_bytes(original.read_bytes() + b"\0")
    assert cached_model_path(changed) != cached_model_path(original)

    model = onnx_copy(copy)
    assert is_complete(model)  # a CenterFace model's copy is whole without an MTCNN folder: it is not re-exported
    sidecar_path(model).unlink()
    assert onnx_copy(copy) == model and sidecar_path(model).is_file()


def test_the_cache_keeps_only_the_most_recently_used_copies(trained_run, tmp_path, monkeypatch):
    """`train` adds a copy per run: beyond KEEP_COPIES the least recently used go (model, sidecar, MTCNN folder),
    and using a copy again keeps it."""
    import os

    from faceattr.inference import onnx_cache
    from faceattr.inference.onnx_predictor import detector_path, sidecar_path

    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(onnx_cache, "KEEP_COPIES", 2)
    checkpoints = []
    for k in range(3):
        checkpoint = tmp_path / f"run{k}.ckpt"
        checkpoint.write_bytes(trained_run.best_checkpoint.read_bytes() + bytes(k))  # three different checkpoints
        checkpoints.append(checkpoint)
    first = onnx_cache.onnx_copy(checkpoints[0])
    second = onnx_cache.onnx_copy(checkpoints[1])
    os.utime(first, (1, 1))
    os.utime(second, (2, 2))
    assert onnx_cache.onnx_copy(checkpoints[0]) == first  # used again: now the newest
    third = onnx_cache.onnx_copy(checkpoints[2])
    assert first.is_file() and third.is_file()
    assert not second.exists() and not sidecar_path(second).exists() and not detector_path(second).exists()


def test_train_leaves_the_onnx_copy_so_the_first_predict_starts_without_torch(
    competition_manifest, tmp_path, monkeypatch
):
    """Train then predict, the usual order: on a CPU-only machine `train` exports the best checkpoint's copy, so even
    the first `predict` imports no torch; `--no-onnx-cache` leaves the cache alone."""
    import pytest
    from typer.testing import CliRunner

    from faceattr.cli import app
    from faceattr.inference.onnx_cache import cached_model_path, gpu_present, is_complete
    from tests.conftest import public_face, tiny_overrides

    if gpu_present():
        pytest.skip("with a GPU driver loaded, predict runs checkpoints on torch and train exports nothing")
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    skipped = CliRunner().invoke(
        app, ["train", *tiny_overrides(competition_manifest, tmp_path / "a"), "--no-onnx-cache"]
    )
    assert skipped.exit_code == 0, skipped.output
    assert not (tmp_path / "cache" / "onnx-models").exists()
    result = CliRunner().invoke(app, ["train", *tiny_overrides(competition_manifest, tmp_path / "b")])
    assert result.exit_code == 0, result.output
    ckpt = tmp_path / "b" / "tiny" / "checkpoints" / "best.ckpt"
    assert is_complete(cached_model_path(ckpt)) and "ONNX copy" in result.output
    photo = tmp_path / "face.jpg"
    public_face().save(photo)
    out = tmp_path / "first.csv"
    loaded = _imported_by_predict(ckpt, photo, out)
    assert out.is_file() and not loaded & {"torch", "timm", "torchvision"}, loaded & {"torch", "timm", "torchvision"}


def test_a_finished_run_is_not_failed_by_an_exporter_that_cannot_be_imported(tmp_path, monkeypatch, capsys):
    """faceattr upgraded under a long run can leave the ONNX export unimportable when the run ends: the trained
    checkpoint stands, so `train` warns and predict later runs it on torch instead of exiting with a traceback."""
    from faceattr.cli.training_commands import prepare_fast_predict

    monkeypatch.setitem(sys.modules, "faceattr.inference.onnx_cache", None)  # importing it now raises ImportError
    checkpoint = tmp_path / "best.ckpt"
    checkpoint.write_bytes(b"")
    prepare_fast_predict([checkpoint])
    assert "no ONNX copy" in capsys.readouterr().out
