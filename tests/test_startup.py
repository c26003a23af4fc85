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
        "from faceattr.inference.predictor import load_predictor\n"
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
    loaded = _imported_after(
        "from faceattr.cli import app\n"
        "try:\n"
        f"    app(['predict', {str(model)!r}, {str(photo)!r}, '--faces', '--out', {str(out)!r}])\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
    )
    assert out.is_file() and "face_found" in out.read_text()
    heavy = {"torch", "torchvision", "facenet_pytorch", "timm", *TRAINING_STACK}
    assert not loaded & heavy, loaded & heavy
