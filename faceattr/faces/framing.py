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

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import Progress

from faceattr.atomic import appending_csv, read_appended_csv
from faceattr.config import FacesConfig
from faceattr.data.images import SkipReport, load_rgb
from faceattr.data.landmarks import format_points, parse_points
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
    journal: Path | None = None,
) -> Framing:
    """Detect the face in up to `limit` random images of the manifest and summarize where the images' edges lie.

    `found`, when given, receives each image's face (path -> Face), e.g. for `face_points`; `progress` shows a bar
    (a whole set, as `framing --landmarks` reads, takes minutes). With `journal` (a CSV), each image's face is
    noted there as it is found and the images already noted are not detected again: a run cut short goes on."""
    cfg = cfg or FacesConfig()
    if frame.empty:
        raise DatasetError("the manifest has no rows: nothing to measure the framing of")
    sample = frame.sample(n=min(limit, len(frame)), random_state=seed) if limit else frame
    skips = skips if skips is not None else SkipReport()
    paths = sample["path"].astype(str).tolist()
    done = read_journal(journal) if journal is not None else {}
    sizes_and_faces = {path: done[path] for path in paths if path in done}
    todo = [path for path in paths if path not in done]
    detector = (detector or FaceDetector(cfg)) if todo else None
    with Progress(disable=not progress) as bar, journal_writer(journal) as note:
        task = bar.add_task("finding faces", total=len(paths), completed=len(paths) - len(todo))
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            images, read_paths = [], []
            for path in chunk:
                try:
                    images.append(load_rgb(path, cfg.max_pixels))
                    read_paths.append(path)
                except ImageLoadError as e:
                    skips.add(e)
            faces = detect_padded(detector, images, pad, fill=None)
            for path, image, face in zip(read_paths, images, faces, strict=True):
                sizes_and_faces[path] = (image.shape[1], image.shape[0]), face
                note(path, *sizes_and_faces[path])
            bar.advance(task, len(chunk))
    margins = [image_margins(face, size) for size, face in sizes_and_faces.values() if face is not None]
    if found is not None:
        found.update({path: face for path, (_, face) in sizes_and_faces.items() if face is not None})
    return summarize(margins, len(sizes_and_faces))


JOURNAL_FIELDS = ("path", "width", "height", "face_box", "score", "landmarks")  # face_box empty: no face found


@contextmanager
def journal_writer(journal: Path | None) -> Iterator[Callable[[str, tuple[int, int], Face | None], None]]:
    """`note(path, size, face)` appends an image's size and face to `journal` as it is found (nothing without one)."""
    if journal is None:
        yield lambda path, size, face: None
        return
    with appending_csv(journal, JOURNAL_FIELDS) as append:

        def note(path: str, size: tuple[int, int], face: Face | None) -> None:
            exact = "{:.4f}".format  # the journal keeps the detector's values, not the manifest's 0.1 px
            append(
                {
                    "path": path,
                    "width": size[0],
                    "height": size[1],
                    "face_box": " ".join(map(exact, face.box)) if face else "",
                    "score": exact(face.score) if face else "",
                    "landmarks": " ".join(map(exact, np.ravel(face.landmarks))) if face else "",
                }
            )

        yield note


def read_journal(journal: Path) -> dict[str, tuple[tuple[int, int], Face | None]]:
    """What a cut-short run noted in `journal`, per image: its size and its face (None: no face found). A row that
    does not read back whole is left out, so its image is detected again."""
    done: dict[str, tuple[tuple[int, int], Face | None]] = {}
    for row in read_appended_csv(journal) if journal.is_file() else []:
        try:
            size = (int(row["width"]), int(row["height"]))
            box, points = parse_points(row["face_box"], 2), parse_points(row["landmarks"], 5)
            face = None if not row["face_box"] else Face(tuple(box.ravel()), float(row["score"]), points)
        except (ValueError, TypeError, AttributeError):
            continue
        done[row["path"]] = size, face
    return done


def face_points(frame: pd.DataFrame, found: dict[str, Face]) -> pd.DataFrame:
    """The manifest with `face_box` and `landmarks` columns (image pixels, 'x y ...', empty where no face), the
    format `faceattr crop` writes: what `augment.synthetic_mask_p` needs to draw masks on training faces."""
    faces = [found.get(str(p)) for p in frame["path"]]
    return frame.assign(
        face_box=[format_points(f.box) if f else "" for f in faces],
        landmarks=[format_points(f.landmarks) if f else "" for f in faces],
    )
