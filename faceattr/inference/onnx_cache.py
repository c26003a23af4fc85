"""A checkpoint's ONNX copy in the user cache, so `predict` and `serve` with a checkpoint start as fast as with an
exported model: importing torch and timm to rebuild the network costs about 3 s of a one-photo run on a 2-core CPU,
onnxruntime a tenth of that. The copy is keyed by the checkpoint's bytes (a retrained or edited checkpoint gets a
new one) and by the export format, written atomically, and never beside the user's checkpoint."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from faceattr.faces.mtcnn_onnx import has_mtcnn
from faceattr.inference.onnx_predictor import detector_path, sidecar_path
from faceattr.user_cache import user_cache

log = logging.getLogger(__name__)

EXPORT_FORMAT = 2  # raise when export_onnx's output changes, so older copies are not reused (2: no subnormal weights)
KEEP_COPIES = 20  # the most recently used copies kept (15-40 MB each: `train` adds one per run)


def checkpoint_key(checkpoint: str | Path) -> str:
    """SHA-256 of the checkpoint's bytes and the export format (about 0.1 s for a 40 MB checkpoint)."""
    digest = hashlib.sha256(f"faceattr-onnx-{EXPORT_FORMAT}:".encode())
    with open(checkpoint, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


def cached_model_path(checkpoint: str | Path) -> Path:
    return user_cache() / "onnx-models" / f"{checkpoint_key(checkpoint)}.onnx"


def is_complete(model: Path) -> bool:
    """The model, its sidecar and (for an MTCNN model, whose sidecar names the folder) MTCNN's networks beside it:
    export writes the sidecar last, so a run killed midway leaves an incomplete copy that is exported again."""
    side = sidecar_path(model)
    if not (model.is_file() and side.is_file()):
        return False
    try:
        ships_mtcnn = "detector" in json.loads(side.read_text())
    except (OSError, ValueError):
        return False
    return not ships_mtcnn or has_mtcnn(detector_path(model))


def onnx_copy(checkpoint: str | Path) -> Path:
    """The cached ONNX copy of `checkpoint`, exported on first use (a few seconds, once per checkpoint)."""
    model = cached_model_path(checkpoint)
    if not is_complete(model):
        from faceattr.inference.export import export_onnx  # torch and timm, only for the first run

        log.info("exporting %s to %s (once; later runs start from the ONNX copy)", checkpoint, model)
        export_onnx(checkpoint, model)
    os.utime(model)  # used now: the last to go
    prune_copies(model.parent, KEEP_COPIES)
    return model


def prune_copies(folder: Path, keep: int) -> list[Path]:
    """Remove all but the `keep` most recently used copies (model, sidecar, MTCNN folder) from the cache folder,
    which only ever holds what `onnx_copy` can rebuild; returns the models removed."""
    models = sorted(folder.glob("*.onnx"), key=lambda m: m.stat().st_mtime, reverse=True)
    for model in models[keep:]:
        model.unlink(missing_ok=True)
        sidecar_path(model).unlink(missing_ok=True)
        shutil.rmtree(detector_path(model), ignore_errors=True)
    return models[keep:]


def gpu_present() -> bool:
    """Whether a CUDA or ROCm driver is loaded, asked without importing torch (which costs a second): where one is,
    `device=auto` may pick the GPU, and a checkpoint runs on torch as before."""
    return any(Path(p).exists() for p in ("/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/kfd"))
