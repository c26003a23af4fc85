"""An exported model on onnxruntime: preprocessing and labels from its JSON sidecar, faces found by the model's
detector (CenterFace from its wheel, or MTCNN's networks shipped beside it). Imports no torch, so `predict --onnx`
and `serve` with an ONNX model start fast."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from faceattr.config import from_dict
from faceattr.data.transforms import eval_transform
from faceattr.errors import ConfigError
from faceattr.faces.mtcnn_onnx import has_mtcnn
from faceattr.inference.predictor import BasePredictor


def sidecar_path(onnx_path: str | Path) -> Path:
    p = Path(onnx_path)
    return p.with_name(p.stem + ".json")


def detector_path(onnx_path: str | Path) -> Path:
    """Where `faceattr export` puts MTCNN's networks for a model: `<stem>.mtcnn/` beside it."""
    p = Path(onnx_path)
    return p.with_name(p.stem + ".mtcnn")


class OnnxPredictor(BasePredictor):
    """Runs an exported model with onnxruntime; preprocessing and labels come from the sidecar."""

    def __init__(self, onnx_path: str | Path) -> None:
        path = Path(onnx_path)
        side = sidecar_path(path)
        if not path.is_file() or not side.is_file():
            raise ConfigError(f"{path} and its sidecar {side} are both needed; write them with `faceattr export`")
        import onnxruntime as ort

        fix = f"export it again: faceattr export CHECKPOINT --out {path}"
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ConfigError(f"{side} is not JSON ({e}); {fix}") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) or not meta.get("heads"):
            raise ConfigError(f"{side} lacks the model's 'config' or 'heads'; {fix}")
        self.source = path
        try:
            self.cfg = from_dict(meta["config"])
        except ConfigError as e:
            raise ConfigError(f"{side}: its config is not valid ({e}); {fix}") from None
        self.tasks = [str(h) for h in meta["heads"]]
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's own errors (InvalidProtobuf, Fail...) share no public base class
            raise ConfigError(f"{path} is not a readable ONNX model ({str(e).splitlines()[0][:160]}); {fix}") from None
        outputs = [o.name for o in self.session.get_outputs()]
        inputs = self.session.get_inputs()
        size = self.cfg.data.image_size
        if sorted(outputs) != sorted(self.tasks) or [i.name for i in inputs] != ["images"]:
            raise ConfigError(
                f"{side} names heads {self.tasks} but {path} has outputs {outputs} (and inputs "
                f"{[i.name for i in inputs]}): the two files come from different exports; {fix}"
            )
        if [d for d in inputs[0].shape[1:]] != [3, size, size]:
            raise ConfigError(f"{path} takes images of shape {inputs[0].shape[1:]} but {side} says {size} px; {fix}")
        self.transform = eval_transform(self.cfg.data.image_size, self.cfg.augment.mean, self.cfg.augment.std)
        shipped = path.parent / str(meta.get("detector", detector_path(path).name))
        self.detector_dir = shipped if has_mtcnn(shipped) else None  # older exports: the user cache's copy

    def _predict_batch(self, images: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.tasks, {"images": np.ascontiguousarray(images, dtype=np.float32)})
        return dict(zip(self.tasks, outputs, strict=True))
