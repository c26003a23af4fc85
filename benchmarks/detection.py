"""Face detection on real crowd photos: how many boxed faces each detector finds, by face width and mask class.

Data: ../shared/data/masks-crowd (1,054 photos, 2,670 boxed faces: worn, incorrect, not worn). Photos are split by a
hash of the file name into dev (settings are picked there) and test (reported). Per detector and setting: recall at
IoU >= 0.5 by face width (< 24, 24-48, 48-96, > 96 px) and mask class, recall of masked faces (worn + incorrect,
>= 24 px), detections per photo that match no boxed face (some faces in these photos are not boxed: an upper
bound on false positives), average precision, photos/s and ms per megapixel on this machine (one process).
Also the share of masks-real photos (one face each, real masks) where a face is found.

`--landmarks N`: where each detector puts the 5 points against MTCNN on UTKFace faces (padded, as `faceattr
framing` detects them): the median offsets in the face's eye frame, fitted on N faces, and the mean distance to
MTCNN's points on N other faces before and after adding them (what `landmark_offsets` in faces/detectors.py holds).

    python -m benchmarks.detection --settings all
    python -m benchmarks.detection --settings yunet,centerface --half dev
    python -m benchmarks.detection --landmarks 400
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import RESULTS, SHARED_DATA, SHARED_UTKFACE, save
from faceattr.config import FacesConfig
from faceattr.data.images import load_rgb
from faceattr.data.sources.boxes import photo_half
from faceattr.faces.detect import FaceDetector, detect_padded
from faceattr.faces.detectors import DETECTORS, box_iou, eye_frame, in_mtcnn_meaning, nms

CROWD = SHARED_DATA / "masks-crowd"
REAL = SHARED_DATA / "masks-real"
WIDTHS = ((0, 24), (24, 48), (48, 96), (96, 10_000))
CLASSES = ("worn", "incorrect", "not_worn")


def upscaled(detector: FaceDetector, factor: float):
    """Detection on the photo enlarged `factor` times (small faces), boxes mapped back."""
    import cv2

    def detect(image: np.ndarray):
        h, w = image.shape[:2]
        big = cv2.resize(image, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_LINEAR)
        faces = detector.detect([big])[0]
        return [(tuple(v / factor for v in f.box), f.score) for f in faces]

    return detect


def pyramid(detector: FaceDetector, factor: float):
    """Detection on the photo as it is and enlarged `factor` times, merged by non-maximum suppression."""
    large = upscaled(detector, factor)

    def detect(image: np.ndarray):
        found = plain(detector)(image) + large(image)
        if not found:
            return []
        keep = nms(np.array([b for b, _ in found], np.float32), np.array([s for _, s in found], np.float32), 0.4)
        return [found[i] for i in keep]

    return detect


def plain(detector: FaceDetector):
    return lambda image: [(f.box, f.score) for f in detector.detect([image])[0]]


def joined(first: FaceDetector, second: FaceDetector, iou: float = 0.3):
    """`first`'s faces, then `second`'s faces that overlap none of them (IoU < `iou`), scored 0: what a second
    detector adds (its scores are on another scale, so they rank below every face of the first)."""

    def detect(image: np.ndarray):
        found, more = plain(first)(image), plain(second)(image)
        if not found or not more:
            return found or [(box, 0.0) for box, _ in more]
        overlap = box_iou(np.array([b for b, _ in more]), np.array([b for b, _ in found])).max(axis=1)
        return found + [(box, 0.0) for (box, _), o in zip(more, overlap, strict=True) if o < iou]

    return detect


# name -> (what it is, a function image -> [(box, score)])
def settings() -> dict:
    def make(detector: str, **faces):
        return FaceDetector(FacesConfig(detector=detector, detect_max_side=0, **faces), device="cpu")

    return {
        "mtcnn": ("MTCNN, presets' settings (min face 40 px)", lambda: plain(make("mtcnn"))),
        "mtcnn_min20": ("MTCNN, min face 20 px", lambda: plain(make("mtcnn", min_face_size=20))),
        "yunet": ("YuNet, photo as it is", lambda: plain(make("yunet", min_score=0.5))),
        "yunet_x2": ("YuNet, photo enlarged x2", lambda: upscaled(make("yunet", min_score=0.5), 2.0)),
        "centerface": ("CenterFace, photo as it is", lambda: plain(make("centerface", min_score=0.5))),
        "centerface_x2": ("CenterFace, photo enlarged x2", lambda: upscaled(make("centerface", min_score=0.5), 2.0)),
        "centerface_t35": ("CenterFace, score >= 0.35", lambda: plain(make("centerface", min_score=0.35))),
        "centerface_1x2x": (
            "CenterFace, as it is and enlarged x2, merged",
            lambda: pyramid(make("centerface", min_score=0.5), 2.0),
        ),
        "centerface_t35_yunet": (
            "CenterFace (score >= 0.35), then YuNet's faces it missed",
            lambda: joined(make("centerface", min_score=0.35), make("yunet", min_score=0.5)),
        ),
        "centerface_640": (
            "CenterFace on a copy at most 640 px a side",
            lambda: plain(FaceDetector(FacesConfig(detector="centerface", detect_max_side=640, min_score=0.5))),
        ),
    }


def match_pairs(truth: np.ndarray, found: list, threshold: float = 0.5) -> list[int]:
    """Greedy matching, highest score first: per detection (in the order given), the index of the boxed face it
    matched, or -1."""
    pairs, hit = [-1] * len(found), np.zeros(len(truth), bool)
    if not found:
        return pairs
    scores = np.array([s for _, s in found], np.float32)
    overlaps = box_iou(np.array([b for b, _ in found], np.float32), truth) if len(truth) else np.zeros((len(found), 0))
    for i in np.argsort(-scores):
        j = int(np.argmax(overlaps[i])) if overlaps.shape[1] else -1
        if j >= 0 and overlaps[i, j] >= threshold and not hit[j]:
            hit[j], pairs[i] = True, j
    return pairs


def match(truth: np.ndarray, found: list, threshold: float = 0.5) -> tuple[np.ndarray, list[bool]]:
    """Which boxed faces were found, and per detection whether it matched a boxed face (`match_pairs`)."""
    pairs = match_pairs(truth, found, threshold)
    hit = np.zeros(len(truth), bool)
    hit[[j for j in pairs if j >= 0]] = True
    return hit, [j >= 0 for j in pairs]


def average_precision(scored: list[tuple[float, bool]], positives: int) -> float:
    if not scored or positives == 0:
        return 0.0
    order = sorted(scored, key=lambda t: -t[0])
    tp = np.cumsum([ok for _, ok in order])
    precision = tp / np.arange(1, len(order) + 1)
    recall = tp / positives
    # area under the interpolated precision-recall curve
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * envelope))


def evaluate(name: str, detect, faces: pd.DataFrame, photos: list[str], unmatched_out: list | None = None) -> dict:
    """One setting on some photos; `unmatched_out` collects (photo, box, score) of detections matching no box."""
    found_rows, scored, unmatched, seconds, pixels = [], [], 0, 0.0, 0
    for photo in photos:
        image = load_rgb(CROWD / photo)
        truth = faces[faces["photo"] == photo]
        start = time.perf_counter()
        found = detect(image)
        seconds += time.perf_counter() - start
        pixels += image.shape[0] * image.shape[1]
        boxes = truth[["x1", "y1", "x2", "y2"]].to_numpy(np.float32)
        hit, matched = match(boxes, found)
        loose, _ = match(boxes, found, threshold=0.4)  # the first measurement used IoU >= 0.4
        found_rows.append(truth.assign(found=hit, found_iou40=loose))
        if unmatched_out is not None:
            unmatched_out += [(photo, box, score) for (box, score), ok in zip(found, matched, strict=True) if not ok]
        scored += [(float(np.float32(score)), ok) for (_, score), ok in zip(found, matched, strict=True)]
        unmatched += matched.count(False)
    table = pd.concat(found_rows)
    width = table["x2"] - table["x1"]
    row = {"setting": name, "photos": len(photos), "faces": len(table), "recall": round(table["found"].mean(), 3)}
    row["recall_iou40"] = round(table["found_iou40"].mean(), 3)
    for lo, hi in WIDTHS:
        part = table[(width >= lo) & (width < hi)]
        row[f"recall_{lo}_{hi if hi < 10_000 else 'up'}"] = round(part["found"].mean(), 3) if len(part) else None
    for cls in CLASSES:
        row[f"recall_{cls}"] = round(table.loc[table["mask"] == cls, "found"].mean(), 3)
    masked = table[table["mask"].isin(["worn", "incorrect"]) & (width >= 24)]
    row["recall_masked"] = round(masked["found"].mean(), 3)
    row["unmatched_per_photo"] = round(unmatched / len(photos), 3)
    row["ap"] = round(average_precision(scored, len(table)), 3)
    row["photos_per_s"] = round(len(photos) / seconds, 2)
    row["ms_per_megapixel"] = round(1000 * seconds / (pixels / 1e6), 1)
    return row


def unmatched_sheet(unmatched: list, path: Path, count: int = 48, seed: int = 0) -> Path:
    """A numbered contact sheet of `count` random detections that match no boxed face, to be looked at by eye (some
    faces in these photos are not boxed, so unmatched is only an upper bound on false positives). Never commit it:
    it is made of the research-only photos."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    picked = [unmatched[i] for i in rng.choice(len(unmatched), min(count, len(unmatched)), replace=False)]
    sheet = Image.new("RGB", (8 * 110, -(-len(picked) // 8) * 124), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (photo, box, score) in enumerate(picked):
        image = Image.open(CROWD / photo).convert("RGB")
        x1, y1, x2, y2 = box
        pad = 0.3 * max(x2 - x1, y2 - y1)
        tile = image.crop((int(x1 - pad), int(y1 - pad), int(x2 + pad), int(y2 + pad))).resize((100, 100))
        sheet.paste(tile, (110 * (k % 8) + 5, 124 * (k // 8) + 5))
        draw.text((110 * (k % 8) + 5, 124 * (k // 8) + 107), f"{k} {score:.2f} {int(x2 - x1)}px", fill="black")
    sheet.save(path)
    return path


def real_mask_rate(detect, limit: int) -> float:
    """Share of masks-real's with_mask photos in which at least one face is found (a face each)."""
    files = sorted((REAL / "with_mask").iterdir())[:limit]
    return round(float(np.mean([bool(detect(load_rgb(f))) for f in files])), 3)


def eye_frame_offsets(theirs: np.ndarray, mtcnn: np.ndarray) -> np.ndarray:
    """(N, 5, 2) offsets of MTCNN's points from `theirs`, in the eye frame of `theirs` (unit: its eye distance)."""
    ex, ey, distance = eye_frame(theirs)
    diff = mtcnn - theirs
    return np.stack([(diff * ex[:, None]).sum(-1), (diff * ey[:, None]).sum(-1)], axis=-1) / distance[:, None]


def point_error(points: np.ndarray, mtcnn: np.ndarray) -> float:
    """Mean distance of (N, 5, 2) points to MTCNN's, in MTCNN's eye distances."""
    eye = np.linalg.norm(mtcnn[:, 1] - mtcnn[:, 0], axis=1)[:, None]
    return round(float((np.linalg.norm(points - mtcnn, axis=-1) / eye).mean()), 4)


def landmark_rows(n: int) -> list[dict]:
    """Per registered detector: median offsets to MTCNN's points fitted on `n` UTKFace faces, and the mean point
    distance to MTCNN's (in eye distances) on `n` other faces without and with them."""
    if not SHARED_UTKFACE.is_dir():
        raise SystemExit(f"{SHARED_UTKFACE} not found: the landmark comparison needs UTKFace faces")
    files = sorted(SHARED_UTKFACE.glob("*.jpg"))
    rng = np.random.default_rng(0)
    picked = rng.choice(len(files), size=2 * n, replace=False)
    fit, held = [files[i] for i in picked[:n]], [files[i] for i in picked[n:]]

    def points(name: str, paths: list[Path]) -> list[np.ndarray | None]:
        detector = FaceDetector(FacesConfig(detector=name))
        if detector.finder is not None:
            detector.finder.landmark_offsets = None  # the detector's own points
        found = detect_padded(detector, [load_rgb(p) for p in paths], 0.5, fill=None)
        return [f.landmarks if f is not None else None for f in found]

    rows = []
    reference = {"fit": points("mtcnn", fit), "held": points("mtcnn", held)}
    for name in DETECTORS:
        theirs = {"fit": points(name, fit), "held": points(name, held)}
        pairs = {
            part: [(t, m) for t, m in zip(theirs[part], ref, strict=True) if t is not None and m is not None]
            for part, ref in reference.items()
        }
        fit_t, fit_m = (np.stack(x) for x in zip(*pairs["fit"], strict=True))
        offsets = np.median(eye_frame_offsets(fit_t, fit_m), axis=0)
        held_t, held_m = (np.stack(x) for x in zip(*pairs["held"], strict=True))
        mapped = in_mtcnn_meaning(held_t, offsets)

        rows.append(
            {
                "detector": name,
                "faces_fit": len(pairs["fit"]),
                "faces_held_out": len(pairs["held"]),
                "offsets": json.dumps(np.round(offsets.astype(float), 3).tolist()),
                "error_as_found": point_error(held_t, held_m),
                "error_mapped": point_error(mapped, held_m),
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default="all", help=f"comma-separated, or all: {', '.join(settings())}")
    parser.add_argument("--half", default="dev,test", help="dev, test or both")
    parser.add_argument("--limit", type=int, default=0, help="photos per half (0: all)")
    parser.add_argument("--real", type=int, default=300, help="masks-real with_mask photos for the single-face rate")
    parser.add_argument("--name", default="detection")
    parser.add_argument(
        "--sheet", type=Path, help="a contact sheet of unmatched test-half detections (outside the repo)"
    )
    parser.add_argument("--landmarks", type=int, default=0, help="compare the 5 points with MTCNN's on N faces")
    args = parser.parse_args()
    if args.landmarks:
        rows = landmark_rows(args.landmarks)
        save("detection_landmarks", rows, list(rows[0]), {"faces": args.landmarks, "data": "shared/data/utkface"})
        return
    if not CROWD.is_dir():
        raise SystemExit(f"{CROWD} not found: this benchmark needs the shared masks-crowd photos")
    faces = pd.read_csv(CROWD / "faces.csv")
    faces["half"] = faces["photo"].map(photo_half)
    chosen = list(settings()) if args.settings == "all" else args.settings.split(",")
    rows = []
    for name in chosen:
        what, build = settings()[name]
        detect = build()
        for half in args.half.split(","):
            photos = sorted(faces.loc[faces["half"] == half, "photo"].unique())
            photos = photos[: args.limit] if args.limit else photos
            unmatched: list = []
            row = {"half": half, "what": what, **evaluate(name, detect, faces, photos, unmatched)}
            if args.sheet and half == "test":
                print(
                    f"unmatched sheet: {unmatched_sheet(unmatched, args.sheet.with_name(f'{name}_{args.sheet.name}'))}"
                )
            if half == "test" and args.real:
                row["masks_real_found"] = real_mask_rate(detect, args.real)
            rows.append(row)
            print(row, flush=True)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    save(args.name, rows, columns, {**vars(args), "data": "shared/data/masks-crowd, split by photo name hash"})
    summary = {  # per detector setting, the test half's headline figures under the names issue 34 asks for
        r["setting"]: {
            "recall_masked": r["recall_masked"],
            "recall_by_width": {
                k.removeprefix("recall_"): r[k] for k in r if k.startswith("recall_") and k[7].isdigit()
            },
            "false_positives_per_photo": r["unmatched_per_photo"],
            "photos_per_s": r["photos_per_s"],
            "recall": r["recall"],
            "recall_iou40": r["recall_iou40"],
        }
        for r in rows
        if r["half"] == "test"
    }
    path = RESULTS / f"{args.name}.json"
    path.write_text(json.dumps({"detectors": summary, **json.loads(path.read_text())}, indent=2, default=str))


if __name__ == "__main__":
    main()
