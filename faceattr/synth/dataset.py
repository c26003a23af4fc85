"""`faceattr synth-masks`: unmasked faces with gender and age -> a dataset in the mask-competition layout.

Per person: `mask1..mask5` (correctly worn, five different masks), `incorrect_mask` (one of the incorrect ways,
at random) and `normal` (the original photo), in `<out>/train/images/<id>_<gender>_<race>_<age>/`, which
`faceattr prepare competition <out>` reads back. Each person's draws come from (seed, person index) alone, so a
rerun writes the same files. Photos the detector finds no face in, or a face whose points cannot place a
mask (eyes on one spot), are skipped and listed in `skipped.csv`.
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw
from rich.progress import Progress

from faceattr.atomic import refuse_file_as_folder, save_image
from faceattr.data.images import SkipReport, load_rgb, save_jpeg
from faceattr.errors import DatasetError, ImageLoadError
from faceattr.faces.detect import Face, FaceDetector, detect_padded
from faceattr.labels import GENDER_NAMES
from faceattr.synth.masks import INCORRECT_WEARS, FaceFrame, random_style, render_mask
from faceattr.synth.occluders import OCCLUDERS, render_occluder

MASKED_FILES = tuple(f"mask{i}" for i in range(1, 6))
DETECT_PAD = 0.25  # tight face crops (UTKFace) need context around the face for the detector to find it
OCCLUDED_NORMAL_P = 0.25  # share of `normal` photos with a hand or scarf over the lower face (still not worn)
DEGRADE_P = 0.5  # share of images (every file, `normal` too) given a real capture's losses
PREVIEW_NAME = "preview.png"  # the contact sheet `synth-masks` draws beside the dataset


def degrade(image: np.ndarray, face_width: float, rng: np.random.Generator) -> np.ndarray:
    """What crowd and phone photos do to a face, each at random: the face shrunk to 28-80 px and enlarged back,
    blur, JPEG at quality 25-90. Applied alike to masked and bare photos, so none of it tells the label."""
    import cv2

    out = image
    h, w = out.shape[:2]
    if rng.random() < 0.5 and face_width > 30:
        scale = min(1.0, rng.uniform(28, 80) / face_width)
        small = cv2.resize(out, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.6, 1.8)))
    if rng.random() < 0.5:
        ok, encoded = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 91))])
        out = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1] if ok else out
    return np.ascontiguousarray(out)


@dataclass
class SynthResult:
    root: Path
    persons: int
    skipped: int
    log: Path


def _person_folder(index: int, row: pd.Series) -> str:
    race = str(row.get("race", "unknown") or "unknown").replace("_", "-").replace(" ", "-")
    return f"{index:06d}_{GENDER_NAMES[int(row['gender'])]}_{race}_{int(row['age'])}"


def _maybe_degraded(image: np.ndarray, face_width: float, rng: np.random.Generator) -> np.ndarray:
    """The image given a real capture's losses with probability DEGRADE_P, else as it is."""
    return degrade(image, face_width, rng) if rng.random() < DEGRADE_P else image


def _draw_person(image: np.ndarray, face: Face, folder: Path, rng: np.random.Generator, source: str) -> list[list]:
    """One person's seven images in `folder`: five correct fits, one incorrect wear and the bare photo (a hand or a
    scarf over some of them), each degraded as crowd photos are with probability DEGRADE_P; their log rows."""
    folder.mkdir(exist_ok=True)
    wears = [("correct", name) for name in MASKED_FILES]
    wears.append((INCORRECT_WEARS[rng.integers(len(INCORRECT_WEARS))], "incorrect_mask"))
    face_width = float(face.box[2] - face.box[0])
    rows = []
    for wear, name in wears:
        style = random_style(rng)
        rendered = render_mask(image, face.landmarks, face.box, wear, style, rng)
        save_jpeg(_maybe_degraded(rendered.image, face_width, rng), folder / f"{name}.jpg")
        rows.append([folder.name, name, source, wear, style.shape, style.color, style.pattern])
    normal, cover = image, "none"
    if rng.random() < OCCLUDED_NORMAL_P:
        cover = OCCLUDERS[rng.integers(len(OCCLUDERS))]
        normal = render_occluder(image, face.landmarks, face.box, cover, rng).image
    save_jpeg(_maybe_degraded(normal, face_width, rng), folder / "normal.jpg")
    rows.append([folder.name, "normal", source, cover, "", "", ""])
    return rows


def fresh_out_dir(root: Path, overwrite: bool) -> tuple[Path, Path, Path]:
    """`root`'s train/images, emptied, and where the drawing log and skip report go. A set already there is
    replaced only with `overwrite`, and only one synth-masks drew (its log beside it): never a user's dataset."""
    images_dir = root / "train" / "images"
    log_path, skips_path = root / "synth_masks.csv", root / "skipped.csv"
    holds_people = images_dir.is_dir() and any(images_dir.iterdir())
    present = [p.name for p in (log_path, skips_path, root / PREVIEW_NAME) if p.exists()]
    if (holds_people or present) and not overwrite:
        what = "person folders under train/images" if holds_people else ", ".join(present)
        raise DatasetError(f"{root} already holds {what}; pick another --out or pass --overwrite")
    if holds_people and not log_path.is_file():
        raise DatasetError(
            f"--overwrite: {images_dir} holds person folders that synth-masks did not draw (no {log_path.name} in "
            f"{root}), so they are not replaced; pick another --out"
        )
    if holds_people:
        shutil.rmtree(images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    skips_path.unlink(missing_ok=True)
    return images_dir, log_path, skips_path


def synthesize_dataset(
    manifest: pd.DataFrame,
    out_dir: str | Path,
    persons: int = 500,
    seed: int = 0,
    detector: FaceDetector | None = None,
    batch_size: int = 16,
    progress: bool = True,
    overwrite: bool = False,
) -> SynthResult:
    """Write the competition layout for up to `persons` unmasked faces of `manifest` (one photo per person)."""
    if persons < 1:
        raise DatasetError(f"persons={persons}: draw masks on at least one person, e.g. --persons 500")
    refuse_file_as_folder(out_dir, "--out")
    needed = [c for c in ("path", "person_id", "mask", "gender", "age") if c not in manifest.columns]
    if needed:
        raise DatasetError(f"manifest lacks column(s) {', '.join(needed)}; build it with `faceattr prepare`")
    bare = manifest[(manifest["mask"] == 2) & manifest["age"].notna() & manifest["gender"].isin([0, 1])]
    if bare.empty:
        raise DatasetError("no unmasked faces with known gender and age (mask == 2) in the manifest to draw masks on")
    bare = bare.drop_duplicates("person_id").sample(frac=1.0, random_state=seed).reset_index(drop=True)
    root = Path(out_dir)
    images_dir, log_path, skips_path = fresh_out_dir(root, overwrite)
    skips = SkipReport(skips_path)
    detector = detector or FaceDetector()
    written = 0
    with log_path.open("w", newline="") as log, Progress(disable=not progress) as bar:
        writer = csv.writer(log)
        writer.writerow(["person", "file", "source", "wear", "shape", "color", "pattern"])
        task = bar.add_task("drawing masks", total=persons)
        for start in range(0, len(bare), batch_size):
            if written >= persons:
                break
            chunk = bare.iloc[start : start + batch_size]
            loaded = []
            for _, row in chunk.iterrows():
                try:
                    loaded.append((row, load_rgb(row["path"])))
                except ImageLoadError as e:
                    skips.add(e)
            faces = detect_padded(detector, [image for _, image in loaded], DETECT_PAD) if loaded else []
            for (row, image), face in zip(loaded, faces, strict=True):
                if written >= persons:
                    break
                if face is None:
                    skips.add(ImageLoadError(row["path"], "no_face", "the detector found no face to place a mask on"))
                    continue
                try:  # checked before any file is written: a person is drawn whole or not at all
                    FaceFrame.from_landmarks(face.landmarks)
                except ValueError as e:  # e.g. a tiny or turned face whose eyes land on one point
                    skips.add(ImageLoadError(row["path"], "degenerate_face", str(e)))
                    continue
                folder = images_dir / _person_folder(written + 1, row)
                rng = np.random.default_rng([seed, written])
                writer.writerows(_draw_person(image, face, folder, rng, row["path"]))
                written += 1
                bar.advance(task)
    if written == 0:
        raise DatasetError(f"no face found in any photo; see {skips.csv_path} for each photo and its reason")
    return SynthResult(root, written, len(skips), log_path)


def contact_sheet(dataset: pd.DataFrame, out_path: str | Path, count: int = 24, seed: int = 0, tile: int = 160):
    """A grid of `count` random images with their mask label, to judge the masks at a glance."""
    from faceattr.labels import MASK_NAMES

    if dataset.empty:
        raise DatasetError("nothing to preview: the dataset has no images")
    pick = dataset.sample(n=min(count, len(dataset)), random_state=seed)
    columns = min(8, len(pick))
    rows = -(-len(pick) // columns)
    sheet = Image.new("RGB", (columns * tile, rows * (tile + 18)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (_, row) in enumerate(pick.iterrows()):
        image = Image.fromarray(load_rgb(row["path"])).resize((tile, tile))
        x, y = (k % columns) * tile, (k // columns) * (tile + 18)
        sheet.paste(image, (x, y))
        label = f"{MASK_NAMES[int(row['mask'])]} {Path(row['path']).stem}"
        draw.text((x + 4, y + tile + 3), label, fill="black")
    return save_image(sheet, out_path)
