"""MTCNN without torch: facenet-pytorch's three networks exported to ONNX, the cascade around them in NumPy.

`faceattr export` writes the networks beside the model (`export_mtcnn`), so `predict --onnx` and `serve` with an
ONNX model detect faces through onnxruntime and never import torch (about 2 s of start-up on a laptop CPU).
`OnnxMTCNN.detect` answers like facenet-pytorch's `MTCNN(keep_all=True).detect(batch, landmarks=True)`: the same
image pyramid, thresholds, non-maximum suppression and box regression, so the faces found are the same (equal
boxes to a pixel on real photos: tests/test_mtcnn_onnx.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faceattr.atomic import atomic_path

NETS = ("pnet", "rnet", "onet")
FACTOR = 0.709  # the image pyramid's step, as facenet-pytorch


def export_mtcnn(folder: str | Path) -> Path:
    """Write pnet/rnet/onet.onnx (facenet-pytorch's weights) into `folder`; needs torch, once, at export time."""
    import torch
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    specs = {
        "pnet": (PNet(), (1, 3, 24, 32), ["reg", "prob"], {0: "batch", 2: "height", 3: "width"}),
        "rnet": (RNet(), (2, 3, 24, 24), ["reg", "prob"], {0: "batch"}),
        "onet": (ONet(), (2, 3, 48, 48), ["reg", "points", "prob"], {0: "batch"}),
    }
    for name, (net, shape, outputs, axes) in specs.items():
        net.eval()
        dynamic = {"images": axes} | {o: {0: "batch"} for o in outputs}
        if name == "pnet":
            dynamic |= {o: {0: "batch", 2: "height", 3: "width"} for o in outputs}
        with torch.inference_mode(), atomic_path(folder / f"{name}.onnx", keep_suffix=True) as tmp:
            torch.onnx.export(
                net,
                (torch.zeros(shape),),
                str(tmp),
                input_names=["images"],
                output_names=outputs,
                dynamic_axes=dynamic,
                opset_version=17,
                dynamo=False,
            )
    return folder


def has_mtcnn(folder: str | Path) -> bool:
    return all((Path(folder) / f"{n}.onnx").is_file() for n in NETS)


def mtcnn_folder() -> Path:
    """The user cache's copy of the networks ($FACEATTR_CACHE, default ~/.cache/faceattr), exported on first use
    from the installed facenet-pytorch (one per version, so an upgrade re-exports)."""
    from importlib.metadata import version

    root = Path(os.environ.get("FACEATTR_CACHE") or Path.home() / ".cache" / "faceattr")
    folder = root / f"mtcnn-onnx-facenet-{version('facenet-pytorch')}"
    return folder if has_mtcnn(folder) else export_mtcnn(folder)


def area_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize (C, H, W) float32 as torch's `interpolate(mode="area")` does (adaptive average pooling: each output
    pixel is the plain mean of the input cells from floor(i*in/out) to ceil((i+1)*in/out)), which MTCNN's scores
    were trained with; OpenCV's INTER_AREA weighs partial cells and moves scores near the thresholds."""
    return _pool_axis(_pool_axis(image, height, axis=1), width, axis=2)


def _pool_axis(x: np.ndarray, out: int, axis: int) -> np.ndarray:
    n = x.shape[axis]
    i = np.arange(out)
    start = (i * n) // out
    end = -((-(i + 1) * n) // out)
    padded = np.concatenate(
        [np.zeros_like(np.take(x, [0], axis=axis)), np.cumsum(x, axis=axis, dtype=np.float64)], axis
    )
    sums = np.take(padded, end, axis=axis) - np.take(padded, start, axis=axis)
    shape = [1] * x.ndim
    shape[axis] = out
    return (sums / (end - start).reshape(shape)).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, min_overlap: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first. IoU as torchvision (areas without +1) or, with
    `min_overlap`, intersection over the smaller box with +1 pixel areas (MTCNN's last step)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    plus = 1.0 if min_overlap else 0.0
    area = (x2 - x1 + plus) * (y2 - y1 + plus)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + plus)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + plus)
        inter = w * h
        overlap = inter / np.minimum(area[i], area[rest]) if min_overlap else inter / (area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


def _per_image_nms(boxes, scores, image_ids, threshold, min_overlap=False) -> np.ndarray:
    keep = [
        np.flatnonzero(image_ids == i)[nms(boxes[image_ids == i], scores[image_ids == i], threshold, min_overlap)]
        for i in np.unique(image_ids)
    ]
    return np.concatenate(keep) if keep else np.zeros(0, np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square about its centre (MTCNN's `rerec`)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply the network's box offsets (in box sizes, +1 pixel convention)."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] = boxes[:, 0] + reg[:, 0] * w
    out[:, 1] = boxes[:, 1] + reg[:, 1] * h
    out[:, 2] = boxes[:, 2] + reg[:, 2] * w
    out[:, 3] = boxes[:, 3] + reg[:, 3] * h
    return out


class OnnxMTCNN:
    """facenet-pytorch's MTCNN cascade on onnxruntime: `detect(batch, landmarks=True)` -> boxes, probs, points."""

    def __init__(self, folder: str | Path, min_face_size: int = 20, thresholds=(0.6, 0.7, 0.7)):
        import onnxruntime as ort

        folder = Path(folder)
        if not has_mtcnn(folder):
            raise FileNotFoundError(
                f"MTCNN's networks are not in {folder} (pnet/rnet/onet.onnx); `faceattr export` writes them beside "
                "a model, or set faces.detector=torch"
            )
        self.sessions = {
            n: ort.InferenceSession(str(folder / f"{n}.onnx"), providers=["CPUExecutionProvider"]) for n in NETS
        }
        self.min_face_size = min_face_size
        self.thresholds = list(thresholds)

    def with_settings(self, min_face_size: int, thresholds) -> OnnxMTCNN:
        """The same networks (sessions shared) with another smallest face and other thresholds."""
        other = object.__new__(OnnxMTCNN)
        other.sessions, other.min_face_size, other.thresholds = self.sessions, min_face_size, list(thresholds)
        return other

    def _run(self, name: str, images: np.ndarray) -> list[np.ndarray]:
        return self.sessions[name].run(None, {"images": np.ascontiguousarray(images, dtype=np.float32)})

    def detect(self, images: np.ndarray, landmarks: bool = True):
        """`images`: N x H x W x 3 uint8 RGB, all one size. Per image: boxes (k x 4) or None, scores (k,) or
        [None], points (k x 5 x 2) or None; largest box first."""
        batch = np.asarray(images, np.float32).transpose(0, 3, 1, 2)
        boxes, scores, image_ids = self._proposals(batch)
        if len(boxes):
            boxes, scores, image_ids = self._refine(batch, boxes, image_ids)
        points = np.zeros((0, 5, 2), np.float32)
        if len(boxes):
            boxes, scores, image_ids, points = self._output(batch, boxes, image_ids)
        out_boxes, out_probs, out_points = [], [], []
        for i in range(len(batch)):
            mine = image_ids == i
            if not mine.any():
                out_boxes.append(None)
                out_probs.append([None])
                out_points.append(None)
                continue
            b, s, p = boxes[mine], scores[mine], points[mine]
            order = np.argsort(-((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])), kind="stable")
            out_boxes.append(b[order])
            out_probs.append(s[order])
            out_points.append(p[order])
        return out_boxes, out_probs, out_points

    def _proposals(self, batch: np.ndarray):
        """P-Net over the image pyramid: candidate boxes, NMS per scale and then per image, regressed, squared."""
        _, _, h, w = batch.shape
        m = 12.0 / self.min_face_size
        side = min(h, w) * m
        scale, scales = m, []
        while side >= 12:
            scales.append(scale)
            scale *= FACTOR
            side *= FACTOR
        found = []
        for scale in scales:
            hs, ws = int(h * scale + 1), int(w * scale + 1)
            data = np.stack([area_resize(img, hs, ws) for img in batch])
            reg, prob = self._run("pnet", (data - 127.5) * 0.0078125)
            ids, ys, xs = np.nonzero(prob[:, 1] >= self.thresholds[0])
            if not len(ids):
                continue
            cells = np.stack([xs, ys], 1).astype(np.float32)
            q1 = np.floor((2 * cells + 1) / scale)
            q2 = np.floor((2 * cells + 12) / scale)
            score = prob[ids, 1, ys, xs]
            offsets = reg[ids, :, ys, xs]
            candidates = np.concatenate([q1, q2, score[:, None], offsets], 1)
            keep = _per_image_nms(candidates[:, :4], candidates[:, 4], ids, 0.5)
            found.append((candidates[keep], ids[keep]))
        if not found:
            return np.zeros((0, 5), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
        candidates = np.concatenate([c for c, _ in found])
        ids = np.concatenate([i for _, i in found])
        keep = _per_image_nms(candidates[:, :4], candidates[:, 4], ids, 0.7)
        candidates, ids = candidates[keep], ids[keep]
        w_, h_ = candidates[:, 2] - candidates[:, 0], candidates[:, 3] - candidates[:, 1]
        boxes = np.stack(
            [
                candidates[:, 0] + candidates[:, 5] * w_,
                candidates[:, 1] + candidates[:, 6] * h_,
                candidates[:, 2] + candidates[:, 7] * w_,
                candidates[:, 3] + candidates[:, 8] * h_,
            ],
            1,
        )
        return _square(boxes), candidates[:, 4], ids

    def _patches(self, batch: np.ndarray, boxes: np.ndarray, image_ids: np.ndarray, size: int):
        """Each box's pixels (clipped to the image, as MTCNN's `pad`) resized to size x size; and which boxes had
        any pixels."""
        _, _, h, w = batch.shape
        ints = np.trunc(boxes[:, :4]).astype(np.int64)
        x = np.maximum(ints[:, 0], 1)
        y = np.maximum(ints[:, 1], 1)
        ex = np.minimum(ints[:, 2], w)
        ey = np.minimum(ints[:, 3], h)
        ok = (ey > y - 1) & (ex > x - 1)
        patches = [
            area_resize(batch[image_ids[k], :, y[k] - 1 : ey[k], x[k] - 1 : ex[k]], size, size)
            for k in np.flatnonzero(ok)
        ]
        return (np.stack(patches) - 127.5) * 0.0078125 if patches else None, ok

    def _refine(self, batch: np.ndarray, boxes: np.ndarray, image_ids: np.ndarray):
        """R-Net on each candidate: keep the confident ones, NMS per image, regress, square."""
        data, ok = self._patches(batch, boxes, image_ids, 24)
        boxes, image_ids = boxes[ok], image_ids[ok]
        if data is None:
            return boxes[:0], np.zeros(0, np.float32), image_ids[:0]
        reg, prob = self._run("rnet", data)
        passed = prob[:, 1] > self.thresholds[1]
        boxes, scores, image_ids, reg = boxes[passed], prob[passed, 1], image_ids[passed], reg[passed]
        keep = _per_image_nms(boxes, scores, image_ids, 0.7)
        boxes = _square(_regress(boxes[keep], reg[keep]))
        return boxes, scores[keep], image_ids[keep]

    def _output(self, batch: np.ndarray, boxes: np.ndarray, image_ids: np.ndarray):
        """O-Net: final scores, box offsets and the five landmarks; NMS by overlap of the smaller box."""
        data, ok = self._patches(batch, boxes, image_ids, 48)
        boxes, image_ids = boxes[ok], image_ids[ok]
        if data is None:
            return boxes[:0], np.zeros(0, np.float32), image_ids[:0], np.zeros((0, 5, 2), np.float32)
        reg, marks, prob = self._run("onet", data)
        passed = prob[:, 1] > self.thresholds[2]
        boxes, scores, image_ids = boxes[passed], prob[passed, 1], image_ids[passed]
        reg, marks = reg[passed], marks[passed]
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        points = np.stack(
            [w[:, None] * marks[:, :5] + boxes[:, :1] - 1, h[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], 2
        )
        boxes = _regress(boxes, reg)
        keep = _per_image_nms(boxes, scores, image_ids, 0.7, min_overlap=True)
        return boxes[keep], scores[keep], image_ids[keep], points[keep].astype(np.float32)
