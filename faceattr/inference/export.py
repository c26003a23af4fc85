"""ONNX export (dynamic batch) with a JSON sidecar, and a predictor that runs the file on onnxruntime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceattr.atomic import atomic_path, write_json
from faceattr.config import from_dict, to_dict
from faceattr.data.transforms import eval_transform
from faceattr.errors import ConfigError
from faceattr.inference.predictor import BasePredictor, Predictor


class _Probabilities(nn.Module):
    """The model with a softmax per head, outputs in the order of `tasks`."""

    def __init__(self, module: nn.Module, tasks: list[str]) -> None:
        super().__init__()
        self.module, self.tasks = module, tasks

    def forward(self, images: torch.Tensor):
        logits = self.module(images)
        return tuple(logits[t].softmax(1) for t in self.tasks)


def sidecar_path(onnx_path: str | Path) -> Path:
    p = Path(onnx_path)
    return p.with_name(p.stem + ".json")


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = 17) -> tuple[Path, Path]:
    """Write `out` (.onnx, inputs `images` N x 3 x S x S, one probability output per head) and its sidecar."""
    predictor = Predictor(checkpoint, device="cpu")
    module = predictor.module.to(memory_format=torch.contiguous_format).eval()
    module.cfg.model.channels_last = False  # plain layout traces to a simpler graph
    wrapper = _Probabilities(module, predictor.tasks).eval()
    size = predictor.cfg.data.image_size
    out = Path(out)
    dynamic = {"images": {0: "batch"}} | {t: {0: "batch"} for t in predictor.tasks}
    with torch.inference_mode(), atomic_path(out, keep_suffix=True) as tmp:
        torch.onnx.export(
            wrapper,
            (torch.zeros(2, 3, size, size),),
            str(tmp),
            input_names=["images"],
            output_names=list(predictor.tasks),
            dynamic_axes=dynamic,
            opset_version=opset,
            dynamo=False,
        )
    side = sidecar_path(out)
    write_json({**predictor.describe(), "config": to_dict(predictor.cfg)}, side)
    return out, side


class OnnxPredictor(BasePredictor):
    """Runs an exported model with onnxruntime; preprocessing and labels come from the sidecar."""

    def __init__(self, onnx_path: str | Path) -> None:
        path = Path(onnx_path)
        side = sidecar_path(path)
        if not path.is_file() or not side.is_file():
            raise ConfigError(f"{path} and its sidecar {side} are both needed; write them with `faceattr export`")
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("running .onnx models needs onnxruntime: pip install 'faceattr[serve]'") from None
        meta = json.loads(side.read_text())
        self.source = path
        self.cfg = from_dict(meta["config"])
        self.tasks = list(meta["heads"])
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.transform = eval_transform(self.cfg.data.image_size, self.cfg.augment.mean, self.cfg.augment.std)

    def _predict_batch(self, images: torch.Tensor) -> dict[str, np.ndarray]:
        outputs = self.session.run(self.tasks, {"images": images.detach().cpu().numpy().astype(np.float32)})
        return dict(zip(self.tasks, outputs, strict=True))
