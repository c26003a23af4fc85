"""Where faceattr keeps what it can rebuild: $FACEATTR_CACHE, default ~/.cache/faceattr (MTCNN's networks and
checkpoints' ONNX copies, both exported on first use). Deleting it costs only a re-export."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache() -> Path:
    return Path(os.environ.get("FACEATTR_CACHE") or Path.home() / ".cache" / "faceattr")
