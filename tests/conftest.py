"""Shared fixtures: small datasets the tests draw themselves, and a tiny fast training config."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("OMP_NUM_THREADS", "2")
# MTCNN's ONNX networks are exported here once, not into the user's ~/.cache (subprocesses inherit it)
os.environ.setdefault("FACEATTR_CACHE", str(Path(tempfile.gettempdir()) / "faceattr-test-cache"))

SHARED_UTKFACE = Path(__file__).resolve().parents[2] / "shared" / "data" / "utkface"


@pytest.fixture(scope="session")
def competition_root(tmp_path_factory) -> Path:
    """A synthetic dataset in the competition layout: 15 people x 7 photos, plus an eval side."""
    from faceattr.data.drawn_faces import make_competition_dataset

    return make_competition_dataset(tmp_path_factory.mktemp("competition"), persons=15, eval_persons=2, seed=1)


@pytest.fixture(scope="session")
def competition_manifest(competition_root, tmp_path_factory) -> Path:
    from faceattr.data.manifest import write_manifest
    from faceattr.data.sources import read_competition

    return write_manifest(read_competition(competition_root), tmp_path_factory.mktemp("manifest") / "manifest.csv")


def tiny_overrides(manifest: Path, run_dir: Path, **extra: object) -> list[str]:
    """A config that trains in seconds on CPU: timm's tiny test network at 64 px."""
    values = {
        "data.manifest": manifest,
        "data.image_size": 64,
        "data.batch_size": 16,
        "data.num_workers": 0,
        "data.folds": 3,
        "model.backbone": "test_efficientnet",
        "model.pretrained": "none",
        "train.epochs": 2,
        "train.progress_bar": False,
        "trainer.accelerator": "cpu",
        "run.dir": run_dir,
        "run.name": "tiny",
        "optim.lr": 3e-3,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


@pytest.fixture(scope="session")
def trained_run(competition_manifest, tmp_path_factory):
    """One tiny training run shared by the evaluation and prediction tests."""
    from faceattr.config import load_config
    from faceattr.training import train

    cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path_factory.mktemp("runs")))
    return train(cfg)


@pytest.fixture(scope="session")
def skimage_data():
    """scikit-image's public-domain test photos, or a skip for the tests that need them only (a module-level skip
    would also skip the module's pure unit tests)."""
    return pytest.importorskip("skimage.data", reason="scikit-image ships the public-domain test photos")


def public_face(size: tuple[int, int] = (170, 200), mirrored: bool = False):
    """A real face any machine has: the public-domain astronaut photo shipped with scikit-image (a dev
    dependency), cut around the face; tests that need MTCNN to find a face use it instead of research data."""
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the public-domain test photo")
    from PIL import Image

    face = Image.fromarray(skimage_data.astronaut()[20:220, 150:320]).resize(size)
    return face.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirrored else face


@contextmanager
def served_on_loopback(app):
    """A real uvicorn serving `app` on a free 127.0.0.1 port in a thread (TestClient would buffer whole bodies
    before the app sees them); yields the port, stops the server on exit."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)
