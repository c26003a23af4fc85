"""How an already-cropped dataset frames its faces, as margins that make `predict` crop photos the same way.

UTKFace, APPA-REAL's `*_face.jpg` and many other sets ship face crops made by their own aligner. Running `faceattr
crop` on them cannot reproduce a wider crop (UTKFace's 200x200 images are tighter than MTCNN's own box: the
forehead is cut), so a model trained on them sees one framing while `predict` on a photo would hand it another.
Instead we measure where each image's edges lie relative to the face MTCNN finds in it: as fractions of that box
(negative = the image cuts into the box), the median over the dataset is the crop `predict` should make.

Each image is first placed in the middle of a larger plain canvas: on a face that fills the frame MTCNN
extrapolates a box about 25 % taller than the one it finds for the same face inside a photo, and the photo's box is
the one `predict` will crop around.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from faceattr.config import FacesConfig
from faceattr.data.images import SkipReport, load_rgb
from faceattr.errors import DatasetError, ImageLoadError
from faceattr.faces.detect import Face, FaceDetector

SIDES = ("left", "right", "top", "bottom")


def on_canvas(image: np.ndarray, pad: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The image in the middle of a canvas `pad` x its size larger on each side, filled with its mean colour."""
    height, width = image.shape[:2]
    dx, dy = round(width * pad), round(height * pad)
    canvas = np.empty((height + 2 * dy, width + 2 * dx, 3), np.uint8)
    canvas[:] = image.reshape(-1, 3).mean(axis=0).astype(np.uint8)
    canvas[dy : dy + height, dx : dx + width] = image
    return canvas, (dx, dy)


def image_margins(face: Face, image_size: tuple[int, int]) -> np.ndarray:
    """The image's edges as margins around `face` (left, right, top, bottom), in fractions of the box."""
    width, height = image_size
    x1, y1, x2, y2 = face.box
    w, h = x2 - x1, y2 - y1
    return np.array([x1 / w, (width - x2) / w, y1 / h, (height - y2) / h])


@dataclass
class Framing:
    margins: list[float]  # median left, right, top, bottom, as fractions of the face box
    spread: list[list[float]]  # 25th and 75th percentile per side
    measured: int  # images with a face
    read: int  # images read

    @property
    def face_rate(self) -> float:
        return self.measured / self.read if self.read else 0.0

    def faces_config(self, base: FacesConfig | None = None) -> FacesConfig:
        """`base` (or the defaults) with these margins, in fractions: the crop `predict` makes."""
        cfg = FacesConfig(**asdict(base)) if base else FacesConfig()
        cfg.margins, cfg.margin_unit = list(self.margins), "fraction"
        return cfg


def summarize(margins: list[np.ndarray], read: int) -> Framing:
    """Median margins (and their quartiles) over the images where a face was found."""
    if not margins:
        raise DatasetError(
            f"no face found in any of the {read} images read, so their framing cannot be measured; "
            "check that the manifest points at face images, or lower faces.min_score / faces.min_face_size"
        )
    table = np.stack(margins)
    low, mid, high = np.percentile(table, [25, 50, 75], axis=0)
    return Framing(
        margins=[round(float(v), 3) for v in mid],
        spread=[[round(float(a), 3), round(float(b), 3)] for a, b in zip(low, high, strict=True)],
        measured=len(margins),
        read=read,
    )


def measure_framing(
    frame: pd.DataFrame,
    cfg: FacesConfig | None = None,
    limit: int = 500,
    seed: int = 0,
    skips: SkipReport | None = None,
    detector: FaceDetector | None = None,
    batch_size: int = 16,
    pad: float = 0.5,
) -> Framing:
    """Detect the face in up to `limit` random images of the manifest and summarize where the images' edges lie."""
    cfg = cfg or FacesConfig()
    if frame.empty:
        raise DatasetError("the manifest has no rows: nothing to measure the framing of")
    sample = frame.sample(n=min(limit, len(frame)), random_state=seed) if limit else frame
    detector = detector or FaceDetector(cfg)
    skips = skips if skips is not None else SkipReport()
    margins: list[np.ndarray] = []
    read = 0
    paths = sample["path"].astype(str).tolist()
    for start in range(0, len(paths), batch_size):
        images = []
        for path in paths[start : start + batch_size]:
            try:
                images.append(load_rgb(path, cfg.max_pixels))
            except ImageLoadError as e:
                skips.add(e)
        read += len(images)
        placed = [on_canvas(image, pad) for image in images]
        for image, (_, (dx, dy)), faces in zip(images, placed, detector.detect([c for c, _ in placed]), strict=True):
            if faces:
                x1, y1, x2, y2 = faces[0].box
                face = Face((x1 - dx, y1 - dy, x2 - dx, y2 - dy), faces[0].score, faces[0].landmarks)
                margins.append(image_margins(face, (image.shape[1], image.shape[0])))
    return summarize(margins, read)
