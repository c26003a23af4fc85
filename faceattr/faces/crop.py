"""`faceattr crop`: every image of a manifest -> a face crop in a cache folder, and a manifest of the crops.

The cache is keyed by the source file (path, size, mtime) and the crop settings, and its index is appended
after every batch: a second run does no detection for crops already present, and an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from rich.progress import Progress

from faceattr.atomic import appending_csv, read_appended_csv, refuse_file_as_folder, write_json
from faceattr.config import FacesConfig
from faceattr.data.images import SkipReport, load_rgb, save_jpeg
from faceattr.data.landmarks import format_points, parse_points  # noqa: F401  (parse_points re-exported)
from faceattr.data.sources.boxes import BOX_COLUMNS
from faceattr.errors import ImageLoadError
from faceattr.faces.detect import Face, FaceDetector, Found, crop_face
from faceattr.faces.detectors import box_iou

INDEX_FIELDS = (
    "source_path",
    "source_size",
    "source_mtime_ns",
    "crop_path",
    "face_found",
    "detection",
    "face_score",
    "crop_x1",
    "crop_y1",
    "crop_x2",
    "crop_y2",
    "face_box",
    "landmarks",
)
CACHE_FORMAT = 3  # 2: face box and landmarks recorded in crop coordinates; 3: how each face was found


@dataclass
class CropResult:
    manifest: pd.DataFrame
    detected_now: int  # images sent to the detector in this run
    reused: int  # crops taken from the cache
    skipped: int  # unreadable images (listed in skipped.csv)
    face_rate_by_mask: dict[int, float]
    detections_by_mask: dict[int, dict[str, float]] = field(default_factory=dict)  # mask -> how found -> share
    box_to_detector_width: float | None = None  # boxed faces: median annotated box width / detector box width


SHAPING_KEYS = (
    "detector",  # the margins are relative to its box
    "margins",
    "margin_unit",
    "fallback_size",
    "min_face_size",
    "min_score",
    "thresholds",
    "second_pass",
    "relaxed_thresholds",
    "relaxed_min_score",
    "upscale_to",
    "whole_image_max_side",
)


def shaping_settings(cfg: FacesConfig) -> str:
    """The settings that shape a crop, as compact JSON; `crop` stores it in the manifest's `crop_settings` column."""
    return json.dumps({k: asdict(cfg)[k] for k in SHAPING_KEYS}, sort_keys=True, separators=(",", ":"))


def settings_key(cfg: FacesConfig) -> str:
    """Short hash of the settings that shape a crop; a change makes new crops instead of reusing old ones."""
    blob = json.dumps({"format": CACHE_FORMAT, **json.loads(shaping_settings(cfg))}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:8]


def adopt_crop_settings(faces: FacesConfig, frame: pd.DataFrame) -> list[str]:
    """Set `faces` to the settings the manifest's crops were made with, so prediction crops the same way.

    Returns what changed ('faces.margins: [30, 30, 60, 30] -> [0.15, 0.15, 0.2, 0.1]'); a manifest mixing crops
    made with different settings is left alone, with a warning from the caller.
    """
    if "crop_settings" not in frame.columns:
        return []
    values = frame["crop_settings"].dropna().astype(str).unique()
    if len(values) != 1:
        raise ValueError(f"the manifest mixes crops made with {len(values)} different face settings")
    try:
        settings = json.loads(values[0])
    except json.JSONDecodeError as e:
        raise ValueError(f"unreadable crop_settings value {values[0]!r}: {e}") from e
    if not isinstance(settings, dict):
        raise ValueError(f"crop_settings value {values[0]!r} is not a mapping of face settings")
    settings.setdefault("detector", "auto")  # crops made before the key was stored were framed on MTCNN's box
    changed = []
    for key in SHAPING_KEYS:
        if key in settings and settings[key] != getattr(faces, key):
            changed.append(f"faces.{key}: {getattr(faces, key)} -> {settings[key]}")
            setattr(faces, key, settings[key])
    return changed


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _read_index(index_path: Path) -> dict[str, dict]:
    """Cache entries whose crop file is present and whose source file has not changed since. A row a killed run
    cut short is left out and its face cropped again."""
    valid: dict[str, dict] = {}
    for row in read_appended_csv(index_path):
        source, crop = Path(row["source_path"]), Path(row["crop_path"])
        try:
            unchanged = _stamp(source) == (int(row["source_size"]), int(row["source_mtime_ns"]))
        except (OSError, ValueError):
            continue
        if unchanged and crop.is_file() and crop.stat().st_size > 0:
            valid[row["source_path"]] = row
    return valid


def _in_crop(points: np.ndarray, box: tuple[int, int, int, int]) -> str:
    """Points (N x 2, image pixels) as 'x y x y ...' relative to the crop's top-left corner."""
    return format_points(np.asarray(points, dtype=np.float64).reshape(-1, 2) - np.array(box[:2], dtype=np.float64))


def face_in_box(detector: FaceDetector, image: np.ndarray, box: tuple[float, ...]) -> Face | None:
    """The detected face that best matches an annotated box (IoU >= 0.3), found on the region around the box, in
    the photo's pixels; None where the detector finds none there (a small or turned face)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    rx, ry = int(max(0, x1 - w)), int(max(0, y1 - h))
    region = image[ry : int(min(image.shape[0], y2 + h)), rx : int(min(image.shape[1], x2 + w))]
    best, best_iou = None, 0.3
    for face in detector.detect([region])[0]:
        fx1, fy1, fx2, fy2 = face.box[0] + rx, face.box[1] + ry, face.box[2] + rx, face.box[3] + ry
        overlap = float(box_iou(np.array(box), np.array([fx1, fy1, fx2, fy2]))[0, 0])
        if overlap >= best_iou:
            best_iou = overlap
            best = Face((fx1, fy1, fx2, fy2), face.score, face.landmarks + np.array([rx, ry], np.float32))
    return best


def crop_boxes(
    df: pd.DataFrame,
    cache_dir: str | Path,
    cfg: FacesConfig,
    detector_factory: Callable[[], FaceDetector] | None = None,
    skips: SkipReport | None = None,
) -> CropResult:
    """Every boxed face of a manifest from `prepare boxes|voc|yolo` -> a crop framed as prediction frames faces:
    the detector's box where it finds the face inside the annotated one ("detected"), else the annotated box itself
    ("box"); the recipe's margins around either. Crops are made afresh on every run (no detection is cached)."""
    cache = Path(cache_dir).resolve() / settings_key(cfg) / "boxes"
    cache.mkdir(parents=True, exist_ok=True)
    skips = skips if skips is not None else SkipReport()
    detector = (detector_factory or (lambda: FaceDetector(cfg)))()
    rows, ratios = [], []
    for source, faces in df.groupby("path", sort=False):
        try:
            image = load_rgb(source, cfg.max_pixels)
        except ImageLoadError as e:
            skips.add(e)
            continue
        for index, row in faces.iterrows():
            box = tuple(float(row[c]) for c in BOX_COLUMNS)
            face = face_in_box(detector, image, box)
            if face is not None:
                ratios.append((box[2] - box[0]) / max(1e-6, face.box[2] - face.box[0]))
            framed = face or Face(box, 0.0, np.zeros((5, 2), np.float32))
            crop, crop_box = crop_face(image, framed, cfg)
            path = cache / f"{hashlib.sha1(f'{source}#{box}'.encode()).hexdigest()[:20]}.jpg"
            save_jpeg(crop, path)
            rows.append(
                {
                    "index": index,
                    "crop": str(path),
                    "detection": Found.DETECTED if face is not None else Found.BOX,
                    "face_score": round(face.score, 4) if face is not None else np.nan,
                    **dict(zip(("crop_x1", "crop_y1", "crop_x2", "crop_y2"), crop_box, strict=True)),
                    "face_box": _in_crop(np.asarray(framed.box).reshape(2, 2), crop_box),
                    "landmarks": _in_crop(face.landmarks, crop_box) if face is not None else "",
                }
            )
    columns = ["crop", "detection", "face_score", "crop_x1", "crop_y1", "crop_x2", "crop_y2", "face_box", "landmarks"]
    made = pd.DataFrame(rows, columns=["index", *columns]).set_index("index")
    out = df.loc[made.index].assign(source_path=lambda f: f["path"], **{c: made[c] for c in columns})
    out["path"] = out.pop("crop")
    out["face_found"] = True  # every boxed face is a face: found by the detector or given by its box
    out["crop_settings"] = shaping_settings(cfg)
    out = out.reset_index(drop=True)
    how = {m: g.value_counts(normalize=True).to_dict() for m, g in out.groupby("mask")["detection"]}
    width = float(np.median(ratios)) if ratios else None
    return CropResult(out, len(out), 0, len(skips), {m: 1.0 for m in how}, how, box_to_detector_width=width)


def crop_manifest(
    df: pd.DataFrame,
    cache_dir: str | Path,
    cfg: FacesConfig | None = None,
    detector_factory: Callable[[], FaceDetector] | None = None,
    batch_size: int = 16,
    skips: SkipReport | None = None,
    progress: bool = True,
) -> CropResult:
    """Crop every row's image; rows whose image cannot be read are reported in `skips` and left out. A manifest of
    boxed faces (`prepare boxes|voc|yolo`) is cropped face by face from its boxes (`crop_boxes`)."""
    cfg = cfg or FacesConfig()
    refuse_file_as_folder(cache_dir, "--cache")
    if all(c in df.columns for c in BOX_COLUMNS):
        return crop_boxes(df, cache_dir, cfg, detector_factory, skips)
    cache = Path(cache_dir).resolve() / settings_key(cfg)  # absolute: the crops manifest works from any folder
    (cache / "crops").mkdir(parents=True, exist_ok=True)
    write_json(asdict(cfg), cache / "settings.json")
    index_path = cache / "index.csv"
    index = _read_index(index_path)
    skips = skips if skips is not None else SkipReport()
    sources = list(dict.fromkeys(str(Path(p).resolve()) for p in df["path"]))
    todo = [s for s in sources if s not in index]
    detector: FaceDetector | None = None
    with appending_csv(index_path, INDEX_FIELDS) as append, Progress(disable=not progress) as bar:
        task = bar.add_task("cropping faces", total=len(todo))
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            loaded: list[tuple[str, np.ndarray]] = []
            for source in chunk:
                try:
                    loaded.append((source, load_rgb(source, cfg.max_pixels)))
                except ImageLoadError as e:
                    skips.add(e)
            if loaded:
                detector = detector or (detector_factory or (lambda: FaceDetector(cfg)))()
                detections = detector.detect_one_each([image for _, image in loaded])
                for (source, image), detection in zip(loaded, detections, strict=True):
                    row = _crop_one(source, image, detection, cache, cfg)
                    append(row)
                    index[source] = row
            bar.advance(task, len(chunk))
    out = _cropped_rows(df, index, cfg)
    rates = out.groupby("mask")["face_found"].mean().to_dict() if len(out) else {}
    how = {m: g.value_counts(normalize=True).to_dict() for m, g in out.groupby("mask")["detection"]} if len(out) else {}
    reused = len(sources) - len(todo)
    return CropResult(out, detector.calls if detector else 0, reused, len(skips), rates, how)


def _crop_one(source: str, image: np.ndarray, detection, cache: Path, cfg: FacesConfig) -> dict:
    """Save one image's face crop in the cache; its index row (where the crop is, how the face was found, its box
    and landmarks in the crop's pixels)."""
    face = detection.face if detection.how != Found.WHOLE_IMAGE else None
    crop, box = crop_face(image, detection.face, cfg)
    crop_path = cache / "crops" / f"{hashlib.sha1(source.encode()).hexdigest()[:20]}.jpg"
    save_jpeg(crop, crop_path)
    size, mtime = _stamp(Path(source))
    return {
        "source_path": source,
        "source_size": size,
        "source_mtime_ns": mtime,
        "crop_path": str(crop_path),
        "face_found": face is not None,
        "detection": detection.how,
        "face_score": round(face.score, 4) if face else "",
        "crop_x1": box[0],
        "crop_y1": box[1],
        "crop_x2": box[2],
        "crop_y2": box[3],
        "face_box": _in_crop(np.asarray(face.box).reshape(2, 2), box) if face else "",
        "landmarks": _in_crop(face.landmarks, box) if face else "",
    }


def _cropped_rows(df: pd.DataFrame, index: dict[str, dict], cfg: FacesConfig) -> pd.DataFrame:
    """The manifest's rows whose image was cropped, pointing at their crops, with how each face was found."""
    out = df.copy()
    out["source_path"] = [str(Path(p).resolve()) for p in df["path"]]
    out = out[out["source_path"].isin(index)].reset_index(drop=True)
    entries = [index[s] for s in out["source_path"]]
    out["path"] = [e["crop_path"] for e in entries]
    out["face_found"] = [str(e["face_found"]) == "True" for e in entries]
    out["detection"] = [
        e.get("detection") or (Found.DETECTED if str(e["face_found"]) == "True" else Found.NONE) for e in entries
    ]
    out["face_score"] = pd.to_numeric(pd.Series([e["face_score"] for e in entries]), errors="coerce")
    for col in ("crop_x1", "crop_y1", "crop_x2", "crop_y2"):
        out[col] = [int(e[col]) for e in entries]
    out["face_box"] = [e["face_box"] for e in entries]
    out["landmarks"] = [e["landmarks"] for e in entries]
    out["crop_settings"] = shaping_settings(cfg)
    return out
