"""Photos with boxed faces, the way most public mask sets ship: a CSV of boxes, Pascal VOC XML, or YOLO text files.

One manifest row per face: `path` is the photo, the face's box is `box_x1..box_y2` (pixels of the stored photo),
the mask label comes from the box's class name (MASK_FOLDER_NAMES, or --classes), and `person_id` is the photo, so
every split keeps a photo's faces on one side. A `split` column puts each photo in `dev` or `test` by a hash of
its file name: a fixed split that does not move when photos are added. `faceattr crop` then crops each face
from its box.
"""

from __future__ import annotations

import hashlib
import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from faceattr.data.images import IMAGE_SUFFIXES
from faceattr.data.manifest import UNKNOWN, derive_labels
from faceattr.data.sources.image_folder import MASK_FOLDER_NAMES
from faceattr.data.text_tables import read_text_table
from faceattr.errors import DatasetError
from faceattr.labels import DEFAULT_OLD_THRESHOLD

BOX_COLUMNS = ("box_x1", "box_y1", "box_x2", "box_y2")
log = logging.getLogger(__name__)


def photo_half(name: str) -> str:
    """dev or test for a photo, from a hash of its file name (half of the photos each)."""
    return "dev" if int(hashlib.sha1(Path(name).name.encode()).hexdigest(), 16) % 2 == 0 else "test"


def _label(name: str | None, classes: dict[str, int], where: str) -> int:
    """The mask label a box's class name means; UNKNOWN for a box given without one (unlabelled faces)."""
    if name is None:
        return UNKNOWN
    key = str(name).strip().lower()
    if key not in classes:
        raise DatasetError(
            f"{where}: unknown class name '{name}'; valid: {', '.join(sorted(classes))} (or map it: "
            f"--classes {name}=wear|incorrect|not_wear)"
        )
    return classes[key]


def _image_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, ValueError) as e:
        raise DatasetError(f"{path}: cannot be read as an image ({e}); fix or remove it") from None


def _rows(faces: list[dict], classes: dict[str, int], source: str, old_threshold: int) -> pd.DataFrame:
    """Checked face dicts (path, x1..y2, cls, where) -> manifest rows; boxes must lie inside their photo."""
    if not faces:
        raise DatasetError(f"{source}: no boxed faces found")
    sizes: dict[str, tuple[int, int]] = {}
    rows, clipped = [], 0
    for face in faces:
        path = Path(face["path"])
        if str(path) not in sizes:
            if not path.is_file():
                raise DatasetError(f"{face['where']}: photo {path} not found; fix the path or remove its boxes")
            sizes[str(path)] = _image_size(path)
        width, height = sizes[str(path)]
        x1, y1, x2, y2 = (float(face[k]) for k in ("x1", "y1", "x2", "y2"))
        cx1, cy1, cx2, cy2 = max(0.0, x1), max(0.0, y1), min(float(width), x2), min(float(height), y2)
        inside = max(0.0, cx2 - cx1) * max(0.0, cy2 - cy1)
        if not (x1 < x2 and y1 < y2) or inside < 0.5 * (x2 - x1) * (y2 - y1):
            raise DatasetError(
                f"{face['where']}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) is empty or mostly outside the "
                f"{width}x{height} photo {path.name}; fix the box (x1 < x2 and y1 < y2, in the photo's pixels)"
            )
        clipped += (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2)
        x1, y1, x2, y2 = cx1, cy1, cx2, cy2
        rows.append(
            {
                "path": str(path.resolve()),
                "person_id": path.stem,
                "mask": _label(face["cls"], classes, face["where"]),
                "gender": UNKNOWN,
                "age": np.nan,
                "age_bin": UNKNOWN,
                "source": source,
                "box_x1": round(x1, 1),
                "box_y1": round(y1, 1),
                "box_x2": round(x2, 1),
                "box_y2": round(y2, 1),
                "split": photo_half(path.name),
            }
        )
    if clipped:
        log.warning("%s: %d box(es) ran past their photo's edge and were clipped to it", source, clipped)
    return derive_labels(pd.DataFrame(rows), old_threshold)


def _classes(extra: dict[str, int] | None) -> dict[str, int]:
    return {k.lower(): v for k, v in {**MASK_FOLDER_NAMES, **(extra or {})}.items()}


def read_boxes_csv(
    root: str | Path, old_threshold: int = DEFAULT_OLD_THRESHOLD, classes: dict[str, int] | None = None
) -> pd.DataFrame:
    """A CSV with `photo,x1,y1,x2,y2,mask` (`path` for `photo` and `class`/`label` for `mask` work too); photo
    paths relative to the CSV's folder. Without a `mask` column the faces are unlabelled (mask unknown), for
    `faceattr pseudo-label` to label."""
    path = Path(root)
    if not path.is_file():
        raise DatasetError(f"{path}: CSV file not found; the header needs photo,x1,y1,x2,y2,mask")
    table = read_text_table(path)
    photo = next((c for c in ("photo", "path", "image", "filename") if c in table), None)
    label = next((c for c in ("mask", "class", "label", "name") if c in table), None)
    missing = [c for c in ("x1", "y1", "x2", "y2") if c not in table] + (["photo"] if photo is None else [])
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(map(str, table))})")
    if table.empty:
        raise DatasetError(f"{path}: no rows; one row per boxed face: photo,x1,y1,x2,y2,mask")
    coords = table[["x1", "y1", "x2", "y2"]].apply(pd.to_numeric, errors="coerce")
    bad = coords.isna().any(axis=1)
    if bad.any():
        raise DatasetError(f"{path}: line {int(np.flatnonzero(bad)[0]) + 2}: a box coordinate is not a number")
    faces = [
        {
            "path": path.parent / str(row[photo]),
            **dict(zip(("x1", "y1", "x2", "y2"), xy, strict=True)),
            "cls": row[label] if label is not None else None,
            "where": f"{path}: line {i + 2}",
        }
        for i, (row, xy) in enumerate(zip(table.to_dict("records"), coords.to_numpy(), strict=True))
    ]
    return _rows(faces, _classes(classes), "boxes", old_threshold)


def read_voc(
    root: str | Path, old_threshold: int = DEFAULT_OLD_THRESHOLD, classes: dict[str, int] | None = None
) -> pd.DataFrame:
    """Pascal VOC: one XML per photo (`<filename>`, `<object><name>` and `<bndbox>`), photos beside the XML files
    or in a sibling `images/` folder."""
    root = Path(root)
    files = sorted(root.rglob("*.xml")) if root.is_dir() else []
    if not files:
        raise DatasetError(f"{root}: no Pascal VOC .xml files; pass the folder holding them")
    faces = []
    for xml in files:
        if xml.stat().st_size == 0:
            raise DatasetError(f"{xml}: empty file; remove it or write its boxes")
        try:
            tree = ET.parse(xml).getroot()
        except ET.ParseError as e:
            raise DatasetError(f"{xml}: not readable XML ({e})") from None
        name = tree.findtext("filename") or xml.with_suffix(".jpg").name
        candidates = [xml.parent / name, xml.parent.parent / "images" / name, root / "images" / name]
        photo = next((c for c in candidates if c.is_file()), candidates[0])
        for k, obj in enumerate(tree.iter("object")):
            box = obj.find("bndbox")
            if box is None:
                raise DatasetError(f"{xml}: object {k} has no <bndbox>")
            try:
                coords = {
                    c: float(box.findtext(f"{c[0]}{'min' if c[1] == '1' else 'max'}")) for c in ("x1", "y1", "x2", "y2")
                }
            except (TypeError, ValueError):
                raise DatasetError(f"{xml}: object {k}: xmin/ymin/xmax/ymax must be numbers") from None
            faces.append({"path": photo, **coords, "cls": obj.findtext("name"), "where": f"{xml}: object {k}"})
    return _rows(faces, _classes(classes), "voc", old_threshold)


def _yolo_names(root: Path) -> list[str]:
    """Class names of a YOLO set: classes.txt (one per line) or data.yaml's `names` (a list or an index map)."""
    if (root / "classes.txt").is_file():
        return [line.strip() for line in (root / "classes.txt").read_text().splitlines() if line.strip()]
    data = next((p for p in (root / "data.yaml", root / "dataset.yaml") if p.is_file()), None)
    if data is None:
        raise DatasetError(f"{root}: no classes.txt or data.yaml naming the YOLO classes")
    import yaml

    names = (yaml.safe_load(data.read_text()) or {}).get("names")
    if isinstance(names, dict):
        return [str(names[k]) for k in sorted(names)]
    if not isinstance(names, list):
        raise DatasetError(f"{data}: no 'names' list")
    return [str(n) for n in names]


def read_yolo(
    root: str | Path, old_threshold: int = DEFAULT_OLD_THRESHOLD, classes: dict[str, int] | None = None
) -> pd.DataFrame:
    """YOLO: `images/` and `labels/` (one `class cx cy w h` line per box, coordinates as fractions of the photo),
    class names from classes.txt or data.yaml."""
    root = Path(root)
    names = _yolo_names(root)
    labels = sorted((root / "labels").rglob("*.txt")) if (root / "labels").is_dir() else []
    if not labels:
        raise DatasetError(f"{root}: no labels/*.txt; the layout is images/NAME.jpg + labels/NAME.txt")
    faces = []
    for label_file in labels:
        rel = label_file.relative_to(root / "labels").with_suffix("")
        photo = next(
            (
                root / "images" / rel.with_suffix(s)
                for s in IMAGE_SUFFIXES
                if (root / "images" / rel.with_suffix(s)).is_file()
            ),
            root / "images" / rel.with_suffix(".jpg"),
        )
        lines = [line.split() for line in label_file.read_text().splitlines() if line.strip()]
        if not lines:
            continue  # a photo with no face: nothing to crop
        width, height = _image_size(photo) if photo.is_file() else (0, 0)
        for k, parts in enumerate(lines):
            where = f"{label_file}: line {k + 1}"
            try:
                cls, cx, cy, w, h = int(parts[0]), *(float(v) for v in parts[1:5])
            except (ValueError, IndexError):
                raise DatasetError(f"{where}: expected 'class cx cy w h', got {' '.join(parts)!r}") from None
            if not 0 <= cls < len(names):
                raise DatasetError(f"{where}: class {cls} is not one of the {len(names)} named: {', '.join(names)}")
            box = {"x1": (cx - w / 2) * width, "y1": (cy - h / 2) * height, "x2": (cx + w / 2) * width}
            box["y2"] = (cy + h / 2) * height
            faces.append({"path": photo, **box, "cls": names[cls], "where": where})
    return _rows(faces, _classes(classes), "yolo", old_threshold)
