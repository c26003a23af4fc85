"""MTCNN without torch: facenet-pytorch's three networks exported to ONNX, the cascade around them in NumPy.

`faceattr export` writes the networks beside the model (`export_mtcnn`), so `predict --onnx` and `serve` with an
ONNX model detect faces through onnxruntime and never import torch (about 2 s of start-up on a laptop CPU).
`OnnxMTCNN.detect` answers like facenet-pytorch's `MTCNN(keep_all=True).detect(batch, landmarks=True)`: the same
image pyramid, thresholds, non-maximum suppression and box regression, so the faces found are the same (equal
boxes to a pixel on real photos: tests/test_mtcnn_onnx.py).
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from faceattr.atomic import atomic_path
from faceattr.user_cache import user_cache

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
    for name, (net, shape, outputs, axes) in specs.items():  # outputs vary along the same axes as the input
        net.eval()
        dynamic = {"images": axes} | {o: axes for o in outputs}
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

    folder = user_cache() / f"mtcnn-onnx-facenet-{version('facenet-pytorch')}"
    return folder if has_mtcnn(folder) else export_mtcnn(folder)


def integral_image(image: np.ndarray) -> np.ndarray:
    """Summed-area table of an H x W x C image: (H+1) x (W+1) x C float64 (exact for 8-bit pixels; OpenCV's
    `integral`), from which any box's mean is four lookups: every pyramid level and every candidate patch."""
    import cv2

    table = cv2.integral(np.ascontiguousarray(image), sdepth=cv2.CV_64F)
    return table if table.ndim == 3 else table[..., None]


def _windows(start: np.ndarray, length: np.ndarray, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive-pooling windows: output cell i of a span covers [start + floor(i*n/out), start + ceil((i+1)*n/out))."""
    i = np.arange(out)
    n = length[:, None]
    return start[:, None] + (i * n) // out, start[:, None] - ((-(i + 1) * n) // out)


def pooled(table: np.ndarray, y, h, x, w, out_h: int, out_w: int) -> np.ndarray:
    """The boxes (top y, height h, left x, width w; arrays of K) resized to out_h x out_w as torch's
    `interpolate(mode="area")` does (adaptive average pooling: each output pixel is the plain mean of its window),
    which MTCNN's scores were trained with (OpenCV's INTER_AREA weighs partial cells). K x C x out_h x out_w."""
    r0, r1 = _windows(np.asarray(y), np.asarray(h), out_h)
    c0, c1 = _windows(np.asarray(x), np.asarray(w), out_w)
    if len(r0) == 1:  # one box (a pyramid level): rows, then columns; two small gathers instead of four large
        rows = table[r1[0]] - table[r0[0]]
        total = rows[:, c1[0]] - rows[:, c0[0]]
        area = ((r1[0] - r0[0])[:, None] * (c1[0] - c0[0])[None, :])[..., None]
        return (total / area).astype(np.float32).transpose(2, 0, 1)[None]
    r0, r1, c0, c1 = r0[:, :, None], r1[:, :, None], c0[:, None, :], c1[:, None, :]
    total = table[r1, c1] - table[r0, c1] - table[r1, c0] + table[r0, c0]
    area = ((r1 - r0) * (c1 - c0))[..., None]
    return (total / area).astype(np.float32).transpose(0, 3, 1, 2)


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


def _normalise(pixels: np.ndarray) -> np.ndarray:
    """MTCNN's input scaling: 0..255 -> about -1..1."""
    return (pixels - 127.5) * 0.0078125


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


def load_sessions(folder: Path) -> dict:
    """An onnxruntime session per network, one intra-op thread each: for these small convolutions one thread beats
    the thread pool's hand-offs (8.8 against 17 ms a 384x512 photo on 2 cores)."""
    import onnxruntime as ort

    if not has_mtcnn(folder):
        raise FileNotFoundError(
            f"MTCNN's networks are not in {folder} (pnet/rnet/onet.onnx); `faceattr export` writes them beside "
            "a model, or set faces.detector=torch"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return {
        n: ort.InferenceSession(str(folder / f"{n}.onnx"), options, providers=["CPUExecutionProvider"]) for n in NETS
    }


class OnnxMTCNN:
    """facenet-pytorch's MTCNN cascade on onnxruntime: `detect(batch, landmarks=True)` -> boxes, probs, points."""

    def __init__(self, folder: str | Path, min_face_size: int = 20, thresholds=(0.6, 0.7, 0.7)):
        self.sessions = load_sessions(Path(folder))
        self.min_face_size = min_face_size
        self.thresholds = list(thresholds)

    def with_settings(self, min_face_size: int, thresholds) -> OnnxMTCNN:
        """The same networks (sessions shared) with another smallest face and other thresholds."""
        other = copy.copy(self)
        other.min_face_size, other.thresholds = min_face_size, list(thresholds)
        return other

    def _run(self, name: str, images: np.ndarray) -> list[np.ndarray]:
        return self.sessions[name].run(None, {"images": np.ascontiguousarray(images, dtype=np.float32)})

    def detect(self, images: np.ndarray, landmarks: bool = True):
        """`images`: N x H x W x 3 uint8 RGB. Per image: boxes (k x 4) or None, scores (k,) or [None], points
        (k x 5 x 2) or None; largest box first. Each image runs through the three stages on its own summed-area
        table (the networks' batches are its pyramid level and its candidates)."""
        out_boxes, out_probs, out_points = [], [], []
        for image in images:
            table = integral_image(np.asarray(image))
            boxes = self._proposals(table)
            if len(boxes):
                boxes, scores = self._refine(table, boxes)
            if len(boxes):
                boxes, scores, points = self._output(table, boxes)
            if not len(boxes):
                out_boxes.append(None)
                out_probs.append([None])
                out_points.append(None)
                continue
            order = np.argsort(-((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])), kind="stable")
            out_boxes.append(boxes[order])
            out_probs.append(scores[order])
            out_points.append(points[order])
        return out_boxes, out_probs, out_points

    def _proposals(self, table: np.ndarray) -> np.ndarray:
        """P-Net over the image pyramid: candidate boxes, NMS per scale and then overall, regressed, squared."""
        h, w = table.shape[0] - 1, table.shape[1] - 1
        m = 12.0 / self.min_face_size
        side = min(h, w) * m
        scale, scales = m, []
        while side >= 12:
            scales.append(scale)
            scale *= FACTOR
            side *= FACTOR
        found = []
        for scale in scales:
            data = pooled(table, [0], [h], [0], [w], int(h * scale + 1), int(w * scale + 1))
            reg, prob = self._run("pnet", _normalise(data))
            ys, xs = np.nonzero(prob[0, 1] >= self.thresholds[0])
            if not len(ys):
                continue
            cells = np.stack([xs, ys], 1).astype(np.float32)
            q1 = np.floor((2 * cells + 1) / scale)
            q2 = np.floor((2 * cells + 12) / scale)
            candidates = np.concatenate([q1, q2, prob[0, 1, ys, xs][:, None], reg[0, :, ys, xs]], 1)
            found.append(candidates[nms(candidates[:, :4], candidates[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 4), np.float32)
        candidates = np.concatenate(found)
        candidates = candidates[nms(candidates[:, :4], candidates[:, 4], 0.7)]
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
        return _square(boxes)

    def _patches(self, table: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray | None, np.ndarray]:
        """Each box's pixels (clipped to the image, as MTCNN's `pad`) resized to size x size, normalised; and
        which boxes had any pixels."""
        h, w = table.shape[0] - 1, table.shape[1] - 1
        ints = np.trunc(boxes[:, :4]).astype(np.int64)
        x = np.maximum(ints[:, 0], 1) - 1
        y = np.maximum(ints[:, 1], 1) - 1
        ex = np.minimum(ints[:, 2], w)
        ey = np.minimum(ints[:, 3], h)
        ok = (ey > y) & (ex > x)
        if not ok.any():
            return None, ok
        x, y, width, height = x[ok], y[ok], ex[ok] - x[ok], ey[ok] - y[ok]
        chunks = [  # 256 boxes at a time bounds the gathers' memory
            pooled(table, y[part], height[part], x[part], width[part], size, size)
            for part in (slice(i, i + 256) for i in range(0, len(x), 256))
        ]
        return _normalise(np.concatenate(chunks)), ok

    def _refine(self, table: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R-Net on each candidate: keep the confident ones, NMS, regress, square."""
        data, ok = self._patches(table, boxes, 24)
        if data is None:
            return boxes[:0], np.zeros(0, np.float32)
        boxes = boxes[ok]
        reg, prob = self._run("rnet", data)
        passed = prob[:, 1] > self.thresholds[1]
        boxes, scores, reg = boxes[passed], prob[passed, 1], reg[passed]
        keep = nms(boxes, scores, 0.7)
        return _square(_regress(boxes[keep], reg[keep])), scores[keep]

    def _output(self, table: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """O-Net: final scores, box offsets and the five landmarks; NMS by overlap of the smaller box."""
        data, ok = self._patches(table, boxes, 48)
        if data is None:
            return boxes[:0], np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        boxes = boxes[ok]
        reg, marks, prob = self._run("onet", data)
        passed = prob[:, 1] > self.thresholds[2]
        boxes, scores, reg, marks = boxes[passed], prob[passed, 1], reg[passed], marks[passed]
        w = boxes[:, 2] - boxes[:, 0] + 1
        h = boxes[:, 3] - boxes[:, 1] + 1
        points = np.stack(
            [w[:, None] * marks[:, :5] + boxes[:, :1] - 1, h[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1], 2
        )
        boxes = _regress(boxes, reg)
        keep = nms(boxes, scores, 0.7, min_overlap=True)
        return boxes[keep], scores[keep], points[keep].astype(np.float32)
