"""Face detection through the cascade every command uses (first pass, second pass, whole image) with the configured
detector (faces/detectors.py, or MTCNN here), and the crop geometry around a face.

MTCNN (facenet-pytorch, whose wheel ships the weights) runs either as facenet-pytorch's modules or as the same
networks on onnxruntime (faces/mtcnn_onnx.py): `faces.detector`. We call MTCNN.detect() rather than its batched
forward(), which crashes on an image without a face. Images of the same size are detected in one batch; others
one by one.
"""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from faceattr.config import FacesConfig
from faceattr.config.choices import Detector
from faceattr.data.align import Alignment
from faceattr.errors import ConfigError
from faceattr.faces.detectors import Face, FaceFinder, create_finder

__all__ = ["Detection", "Face", "FaceDetector", "Found"]

log = logging.getLogger(__name__)


class Found(StrEnum):
    """How a face was found: the `detection` column of crops and predictions, and serve's JSON field."""

    DETECTED = "detected"  # the detector's first pass
    SECOND_PASS = "second pass"  # the image enlarged, relaxed thresholds
    WHOLE_IMAGE = "whole image"  # a small, roughly square image taken whole as the face: a guess
    NONE = "none"  # no face: the centred fallback crop, a guess
    BOX = "box"  # boxed photos (crop): the annotated box, where the detector found no face inside it

    @property
    def guess(self) -> str:
        """What a caption or a count says of a guessed face ("" for a face really found)."""
        return {Found.WHOLE_IMAGE: "whole image", Found.NONE: "no face found, centre crop"}.get(self, "")


@dataclass(frozen=True)
class Detection:
    """An image's main face and how it was found."""

    face: Face | None
    how: Found


FACE_CROP_ASPECT = (0.6, 1.7)  # width / height of images taken for face crops by the whole-image fallback


MIN_FACE_CROP_SIDE = 16  # below this an image holds no face anyone could label (a 1x1 pixel, a tracking dot)


def looks_like_face_crop(image: np.ndarray, max_side: int) -> bool:
    """Small and roughly square (or portrait): many real sets are tight face crops of about 100 px. Not a speck:
    an image under MIN_FACE_CROP_SIDE pixels a side is no face crop."""
    h, w = image.shape[:2]
    if max_side <= 0 or min(h, w) < MIN_FACE_CROP_SIDE or max(h, w) > max_side:
        return False
    return FACE_CROP_ASPECT[0] <= w / h <= FACE_CROP_ASPECT[1]


class FaceDetector:
    """The configured detector (faces.detector: a registered one, or MTCNN batched on CPU or GPU) and the cascade
    around it; `calls` counts images sent to the detector (the cache tests read it)."""

    def __init__(
        self, cfg: FacesConfig | None = None, device: str = "auto", batch_size: int = 16, onnx_dir: Path | None = None
    ) -> None:
        """`onnx_dir`: MTCNN's networks as ONNX (`faceattr export` writes them beside a model); default, the
        user cache, filled once from facenet-pytorch's weights."""
        self.cfg = cfg or FacesConfig()
        self.batch_size = batch_size
        self.calls = 0
        self.finder: FaceFinder | None = None
        if self.cfg.detector not in MTCNN_NAMES:  # a registered detector (faces/detectors.py) for both passes
            self.finder = create_finder(self.cfg.detector)
            self.backend = self.cfg.detector
            self.min_score, self.relaxed_min_score = scores(self.cfg, self.finder)
            return
        self.min_score, self.relaxed_min_score = scores(self.cfg, MTCNN_SCORES)
        mtcnn_backend = {Detector.MTCNN: Detector.AUTO}.get(self.cfg.detector, self.cfg.detector)
        self.backend = mtcnn_backend if mtcnn_backend != Detector.AUTO else _auto_backend(device)
        strict = (self.cfg.min_face_size, list(self.cfg.thresholds))
        relaxed = (max(12, self.cfg.min_face_size // 2), list(self.cfg.relaxed_thresholds))
        if self.backend == Detector.ONNX:
            from faceattr.faces.mtcnn_onnx import OnnxMTCNN, mtcnn_folder

            try:
                self.mtcnn = OnnxMTCNN(onnx_dir or mtcnn_folder(), *strict)
                self.relaxed = self.mtcnn.with_settings(*relaxed)  # the same sessions, other thresholds
            except (OSError, ImportError) as e:  # e.g. a read-only home for the exported networks
                if mtcnn_backend == Detector.ONNX:
                    raise
                log.warning("MTCNN on onnxruntime unavailable (%s); using facenet-pytorch", e)
                self.backend = Detector.TORCH
        if self.backend == Detector.TORCH:
            import torch
            from facenet_pytorch import MTCNN

            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            self.mtcnn, self.relaxed = (
                MTCNN(keep_all=True, min_face_size=size, thresholds=t, device=device, post_process=False)
                for size, t in (strict, relaxed)
            )
            self.relaxed.load_state_dict(self.mtcnn.state_dict())  # the same weights, other thresholds

    def detect_one_each(self, images: list[np.ndarray]) -> list[Detection]:
        """The main face of each image, through the cascade masked and tight faces need:
        1. MTCNN as configured ("detected");
        2. where it found none, `rescue`: the second pass, then whole-image framing, else no face ("none": callers
           use the centred fallback crop)."""
        return [Detection(faces[0] if faces else None, how) for faces, how in self.detect_every(images)]

    def detect_every(self, images: list[np.ndarray]) -> list[tuple[list[Face], Found]]:
        """Every face MTCNN finds per image ("detected"); where it finds none, the one face `rescue` gives (or
        none), with how it was found. The one cascade behind `detect_one_each` and prediction on photos."""
        out = [(faces, Found.DETECTED) for faces in self.detect(images)]
        missing = [i for i, (faces, _) in enumerate(out) if not faces]
        for i, detection in zip(missing, self.rescue([images[i] for i in missing]), strict=True):
            out[i] = ([detection.face] if detection.face is not None else [], detection.how)
        return out

    def rescue(self, images: list[np.ndarray]) -> list[Detection]:
        """The cascade's later steps, for images the first pass found no face in:
        - with `faces.second_pass`: the image enlarged to `upscale_to` when smaller, padded with its mean colour,
          detected with relaxed thresholds ("second pass");
        - else, if small and roughly square, it is taken to be a face crop already: the whole image ("whole image");
        - else "none"."""
        found = self.detect_enlarged(images) if self.cfg.second_pass and images else [None] * len(images)
        out = []
        for image, face in zip(images, found, strict=True):
            if face is not None:
                out.append(Detection(face, Found.SECOND_PASS))
            elif looks_like_face_crop(image, self.cfg.whole_image_max_side):
                h, w = image.shape[:2]
                whole = Face((0.0, 0.0, float(w), float(h)), 0.0, np.zeros((5, 2), np.float32))
                out.append(Detection(whole, Found.WHOLE_IMAGE))
            else:
                out.append(Detection(None, Found.NONE))
        return out

    def detect_enlarged(self, images: list[np.ndarray], pad: float = 0.2) -> list[Face | None]:
        """Second pass: small images enlarged to `upscale_to` (large ones shrunk to `detect_max_side`, so its cost is
        bounded whatever the photo's size), padded with their mean colour (MTCNN wants context around a face that
        fills the frame), relaxed thresholds; boxes mapped back to the original pixels."""
        import cv2

        results: list[Face | None] = []
        for image in images:
            h, w = image.shape[:2]
            scale = max(1.0, self.cfg.upscale_to / max(h, w))
            if self.cfg.detect_max_side > 0 and max(h, w) > self.cfg.detect_max_side:
                scale = self.cfg.detect_max_side / max(h, w)  # a large photo: the same bounded copy as the first pass
            big = (
                cv2.resize(
                    image,
                    (max(1, round(w * scale)), max(1, round(h * scale))),
                    interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA,
                )
                if scale != 1
                else image
            )
            canvas, side = pad_image(big, pad, fill=None)
            self.calls += 1
            if self.finder is not None:
                faces = self.finder.find(canvas, self.relaxed_min_score)
            else:
                boxes, probs, landmarks = self.relaxed.detect(canvas[None], landmarks=True)
                faces = self._faces(boxes[0], probs[0], landmarks[0], self.relaxed_min_score)
            if faces:
                f = faces[0]  # the largest
                results.append(Face(tuple((v - side) / scale for v in f.box), f.score, (f.landmarks - side) / scale))
            else:
                results.append(None)
        return results

    def detect(self, images: list[np.ndarray]) -> list[list[Face]]:
        """Faces per image (HxWx3 uint8 RGB), best first by area; detections under min_score dropped. With
        `faces.detect_max_side`, larger images are detected on a downscaled copy and the faces mapped back."""
        shrunk = [downscale(image, self.cfg.detect_max_side) for image in images]
        if self.finder is not None:
            self.calls += len(images)
            return [[scaled(f, 1 / scale) for f in self.finder.find(image, self.min_score)] for image, scale in shrunk]
        results: list[list[Face]] = [[] for _ in images]
        by_shape: dict[tuple, list[int]] = defaultdict(list)
        for i, (image, _) in enumerate(shrunk):
            if min(image.shape[:2]) >= self.cfg.min_face_size:  # smaller: MTCNN has no scale to search (and crashes)
                by_shape[image.shape].append(i)
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                batch = np.stack([shrunk[i][0] for i in chunk])
                boxes, probs, landmarks = self.mtcnn.detect(batch, landmarks=True)
                self.calls += len(chunk)
                for j, i in enumerate(chunk):
                    scale = shrunk[i][1]
                    results[i] = [
                        Face(tuple(v / scale for v in f.box), f.score, f.landmarks / scale) if scale != 1 else f
                        for f in self._faces(boxes[j], probs[j], landmarks[j])
                    ]
        return results

    def _faces(self, boxes, probs, landmarks, min_score: float | None = None) -> list[Face]:
        """One image's MTCNN output as Faces scoring at least `min_score` (default: the first pass's), largest first."""
        if boxes is None:
            return []
        floor = self.min_score if min_score is None else min_score
        faces = [
            Face(tuple(float(v) for v in box), float(p), np.asarray(lm, dtype=np.float32))
            for box, p, lm in zip(boxes, probs, landmarks, strict=True)
            if p is not None and float(p) >= floor
        ]
        return sorted(faces, key=lambda f: f.area, reverse=True)


# faces.detector values run by MTCNN (auto/onnx/torch: its backend)
MTCNN_NAMES = (Detector.MTCNN, Detector.AUTO, Detector.ONNX, Detector.TORCH)


@dataclass(frozen=True)
class DetectorScores:
    min_score: float
    relaxed_min_score: float


MTCNN_SCORES = DetectorScores(0.9, 0.6)  # MTCNN's O-net probability: first pass, second pass


def scores(cfg: FacesConfig, defaults: FaceFinder | DetectorScores) -> tuple[float, float]:
    """The first and second pass's score floors: the config's, else the detector's own (each scores on its scale)."""
    return (
        cfg.min_score if cfg.min_score is not None else defaults.min_score,
        cfg.relaxed_min_score if cfg.relaxed_min_score is not None else defaults.relaxed_min_score,
    )


def detector_family(name: str) -> str:
    """`mtcnn` for every name MTCNN runs under (its backends give the same boxes), else the detector's own name:
    what a framing depends on."""
    return Detector.MTCNN.value if name in MTCNN_NAMES else name


def switch_detector(cfg: FacesConfig, name: str, margins_given: bool) -> FacesConfig:
    """`cfg` with another detector, refused when the model's framing came from a different one: its margins are
    relative to that detector's box (UTKFace's framing measured on CenterFace's box and on MTCNN's differs by
    8 % of the face's height at the top), so the crops would not be the ones it was trained on. Margins measured
    with the new detector (`faceattr framing`, given as --margins) make the switch sound."""
    from dataclasses import replace

    if detector_family(name) != detector_family(cfg.detector) and not margins_given:
        raise ConfigError(
            f"--detector {name}: this model frames faces on {detector_family(cfg.detector)}'s box (its training "
            f"crops or framing were made with it), and {detector_family(name)}'s box sits elsewhere on the face, so "
            f"its crops would differ from training. Leave --detector out (the model's own detector), or measure the "
            f"framing with the new one (`faceattr framing M.csv faces.detector={name}`) and pass it as --margins"
        )
    return replace(cfg, detector=name, min_score=None, relaxed_min_score=None)


def scaled(face: Face, factor: float) -> Face:
    """`face` with its box and landmarks multiplied by `factor` (back to the original photo's pixels)."""
    if factor == 1:
        return face
    return Face(tuple(v * factor for v in face.box), face.score, face.landmarks * factor)


def _auto_backend(device: str) -> str:
    """torch when MTCNN would run on a GPU (already imported torch says so), else onnxruntime on the CPU."""
    if device != "auto" and not device.startswith("cpu"):
        return Detector.TORCH
    torch = sys.modules.get("torch")
    if device == "auto" and torch is not None and torch.cuda.is_available():
        return Detector.TORCH
    return Detector.ONNX


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """`image` shrunk (area interpolation) so its longer side is at most `max_side` (0: unchanged), and the scale."""
    h, w = image.shape[:2]
    if max_side <= 0 or max(h, w) <= max_side:
        return image, 1.0
    import cv2

    scale = max_side / max(h, w)
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA), scale


def pad_image(image: np.ndarray, pad: float, fill: int | None) -> tuple[np.ndarray, int]:
    """`image` on a canvas grown by `pad` x its longer side on every side, filled with grey level `fill` or, for
    None, the image's mean colour; returns the canvas and the margin in pixels."""
    side = round(pad * max(image.shape[:2]))
    colour = image.reshape(-1, 3).mean(axis=0).astype(np.uint8) if fill is None else np.full(3, fill, np.uint8)
    canvas = np.empty((image.shape[0] + 2 * side, image.shape[1] + 2 * side, 3), np.uint8)
    canvas[:] = colour
    canvas[side : side + image.shape[0], side : side + image.shape[1]] = image
    return canvas, side


def detect_padded(
    detector: FaceDetector, images: list[np.ndarray], pad: float = 0.25, fill: int | None = 127
) -> list[Face | None]:
    """The largest face per image, detected on a padded copy and mapped back to the image's pixels.

    Tight face crops (UTKFace) need context around the face: without it MTCNN misses faces or, on a face that
    fills the frame, extrapolates a box about 25 % taller than it finds for the same face inside a photo.
    `pad` is a fraction of the image's longer side, added on every side; `fill` a grey level, or None for the
    image's mean colour (no hard border for MTCNN to fit the box to: `faceattr framing` needs the box a photo gets).
    """
    padded, pads = zip(*(pad_image(image, pad, fill) for image in images), strict=True) if images else ((), ())
    faces: list[Face | None] = []
    for found, side in zip(detector.detect(list(padded)), pads, strict=True):
        if not found:
            faces.append(None)
            continue
        f = found[0]
        faces.append(Face(tuple(v - side for v in f.box), f.score, f.landmarks - side))
    return faces


def grow_box(face_box, cfg: FacesConfig) -> tuple[float, float, float, float]:
    """The face box grown by the configured margins, not clipped: it may run past the photo's edge."""
    x1, y1, x2, y2 = face_box
    left, right, top, bottom = cfg.margins
    if cfg.margin_unit == "fraction":
        w, h = x2 - x1, y2 - y1
        left, right, top, bottom = left * w, right * w, top * h, bottom * h
    return x1 - left, y1 - top, x2 + right, y2 + bottom


def margin_box(face_box, image_size: tuple[int, int], cfg: FacesConfig) -> tuple[int, int, int, int]:
    """The face box grown by the configured margins and clipped to the image (width, height)."""
    return clip_box(grow_box(face_box, cfg), image_size)


def fallback_box(image_size: tuple[int, int], cfg: FacesConfig) -> tuple[int, int, int, int]:
    """A centred crop of faces.fallback_size, clipped to the image, for when no face is found."""
    width, height = image_size
    fw, fh = cfg.fallback_size
    cx, cy = width / 2, height / 2
    return clip_box((cx - fw / 2, cy - fh / 2, cx + fw / 2, cy + fh / 2), image_size)


def clip_box(box, image_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Round to whole pixels inside the image; never empty."""
    width, height = image_size
    x1 = int(np.clip(np.floor(box[0]), 0, width - 1))
    y1 = int(np.clip(np.floor(box[1]), 0, height - 1))
    x2 = int(np.clip(np.ceil(box[2]), x1 + 1, width))
    y2 = int(np.clip(np.ceil(box[3]), y1 + 1, height))
    return x1, y1, x2, y2


def crop_face(image: np.ndarray, face: Face | None, cfg: FacesConfig) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The margin crop around `face`, or the fallback crop when it is None."""
    size = (image.shape[1], image.shape[0])
    box = margin_box(face.box, size, cfg) if face is not None else fallback_box(size, cfg)
    x1, y1, x2, y2 = box
    return image[y1:y2, x1:x2], box


def face_chip(image: np.ndarray, face: Face | None, cfg: FacesConfig) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """What a model sees of a face in a photo: its chip aligned by the landmarks when the model was trained aligned
    (faces.align) and the face has them, else its margin crop; and the margin box, which drawings show. (`faceattr
    crop` keeps margin crops and their landmarks: training aligns them itself.)"""
    crop, box = crop_face(image, face, cfg)
    alignment = Alignment.of(cfg)
    if alignment is not None and face is not None and face.landmarks is not None:
        return alignment(image, face.landmarks), box
    return crop, box
