"""How an already-cropped dataset frames its faces, as margins that make `predict` crop photos the same way.

UTKFace, APPA-REAL's `*_face.jpg` and many other sets ship face crops made by their own aligner. Running `faceattr
crop` on them cannot reproduce a wider crop (UTKFace's 200x200 images are tighter than MTCNN's own box: the
forehead is cut), so a model trained on them sees one framing while `predict` on a photo would hand it another.
Instead we measure where each image's edges lie relative to the face the detector finds in it: as fractions of that box
(negative = the image cuts into the box), the median over the dataset is the crop `predict` should make.

Faces are detected on a copy of each image padded with its mean colour (`detect_padded`): on a face that fills
the frame MTCNN extrapolates a box about 25 % taller than the one it finds for the same face inside a photo, and
the photo's box is the one `predict` will crop around.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from rich.progress import Progress

from faceattr.config import FacesConfig
from faceattr.data.images import SkipReport, load_rgb
from faceattr.data.landmarks import format_points
from faceattr.errors import DatasetError, ImageLoadError
from faceattr.faces.crop import shaping_settings
from faceattr.faces.detect import Face, FaceDetector, detect_padded

SIDES = ("left", "right", "top", "bottom")


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
        return replace(base or FacesConfig(), margins=list(self.margins), margin_unit="fraction")

    def crop_settings(self, base: FacesConfig | None = None) -> str:
        """The manifest's `crop_settings` value, which `train` adopts so that `predict` crops with this framing."""
        return shaping_settings(self.faces_config(base))


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
    found: dict[str, Face] | None = None,
    progress: bool = True,
) -> Framing:
    """Detect the face in up to `limit` random images of the manifest and summarize where the images' edges lie.

    `found`, when given, receives each image's face (path -> Face), e.g. for `face_points`; `progress` shows a bar
    (a whole set, as `framing --landmarks` reads, takes minutes)."""
    cfg = cfg or FacesConfig()
    if frame.empty:
        raise DatasetError("the manifest has no rows: nothing to measure the framing of")
    sample = frame.sample(n=min(limit, len(frame)), random_state=seed) if limit else frame
    detector = detector or FaceDetector(cfg)
    skips = skips if skips is not None else SkipReport()
    margins: list[np.ndarray] = []
    read = 0
    paths = sample["path"].astype(str).tolist()
    with Progress(disable=not progress) as bar:
        task = bar.add_task("finding faces", total=len(paths))
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            images, read_paths = [], []
            for path in chunk:
                try:
                    images.append(load_rgb(path, cfg.max_pixels))
                    read_paths.append(path)
                except ImageLoadError as e:
                    skips.add(e)
            read += len(images)
            faces = detect_padded(detector, images, pad, fill=None)
            for path, image, face in zip(read_paths, images, faces, strict=True):
                if face is not None:
                    margins.append(image_margins(face, (image.shape[1], image.shape[0])))
                    if found is not None:
                        found[path] = face
            bar.advance(task, len(chunk))
    return summarize(margins, read)


def face_points(frame: pd.DataFrame, found: dict[str, Face]) -> pd.DataFrame:
    """The manifest with `face_box` and `landmarks` columns (image pixels, 'x y ...', empty where no face), the
    format `faceattr crop` writes: what `augment.synthetic_mask_p` needs to draw masks on training faces."""
    faces = [found.get(str(p)) for p in frame["path"]]
    return frame.assign(
        face_box=[format_points(f.box) if f else "" for f in faces],
        landmarks=[format_points(f.landmarks) if f else "" for f in faces],
    )
