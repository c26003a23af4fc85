"""Helpers shared by the benchmark scripts and the studies in docs/experiments/: machine facts, writing a result table
as JSON and Markdown, and faces re-framed on photo-sized canvases (how `predict` meets a face crop in a photo)."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageFilter

from faceattr.faces.detect import Face
from faceattr.labels import decide
from faceattr.training.runinfo import git_commit, versions

RESULTS = Path(__file__).parent / "results"  # the current table of each benchmark (earlier ones: git's history)
STUDIES = Path(__file__).resolve().parents[1] / "docs" / "experiments" / "results"  # one-off studies' tables
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_UTKFACE = SHARED_DATA / "utkface"
SHARED_UTKFACE_ROOTS = (SHARED_UTKFACE, SHARED_DATA / "utkface-extra")
SHARED_MASKS_REAL = SHARED_DATA / "masks-real"
HELD_OUT_RULE = "utkface + utkface-extra, byte-identical duplicates dropped, person-level 5-fold, split_seed 42, fold 0"


def utkface_union(work: Path, roots: tuple[Path, ...] = SHARED_UTKFACE_ROOTS) -> tuple[Path, pd.DataFrame]:
    """The manifest `faceattr prepare utkface utkface/ utkface-extra/` writes, with its folds (fold 0 held out)."""
    from faceattr.data.dedupe import drop_duplicate_images
    from faceattr.data.manifest import read_manifest, write_manifest
    from faceattr.data.sources import read_utkface
    from faceattr.data.split import load_or_make_folds

    manifest = work / "utkface-union.csv"
    if manifest.is_file():
        frame = read_manifest(manifest)
    else:
        missing = [r for r in roots if not r.is_dir()]
        if missing:
            raise SystemExit(f"UTKFace not found at {missing[0]}; pass --data")
        frames = [read_utkface(r).assign(source_root=r.name) for r in roots]
        frame, _ = drop_duplicate_images(pd.concat(frames, ignore_index=True))
        work.mkdir(parents=True, exist_ok=True)
        write_manifest(frame, manifest)
    frame["fold"] = load_or_make_folds(frame, manifest, 5, 42)
    return manifest, frame


def machine() -> dict:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "git_commit": git_commit(Path(__file__).parent),
        "versions": versions(),
    }


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def mean_std(values, digits: int = 3) -> str:
    """'mean ± std' over training seeds (population std: half the range for two seeds); one value as it is."""
    values = [float(v) for v in values]
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{sum(values) / len(values):.{digits}f} ± {pd.Series(values).std(ddof=0):.{digits}f}"


def save(name: str, rows: list[dict], columns: list[str], settings: dict, folder: Path = RESULTS) -> str:
    """Print the table and write <folder>/<name>.json and .md (benchmarks/results; a study passes STUDIES)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows, columns)
    (folder / f"{name}.json").write_text(
        json.dumps({"settings": settings, "machine": machine(), "rows": rows}, indent=2, default=str)
    )
    (folder / f"{name}.md").write_text(f"# {name}\n\nsettings: `{json.dumps(settings, default=str)}`\n\n{table}\n")
    print(table)
    return table


def saved_file(name: str) -> Path:
    """Where results called `name` lie: benchmarks/results, else the studies' folder (a benchmark run under a
    study's --name, written there with --study)."""
    path = RESULTS / f"{name}.json"
    return path if path.is_file() else STUDIES / f"{name}.json"


def after_saved(name: str, rows: list[dict], settings: dict) -> tuple[list[dict], dict]:
    """A benchmark's --append: the saved table's rows, then these; its settings kept under "earlier"."""
    earlier = json.loads(saved_file(name).read_text())
    return earlier["rows"] + rows, {"earlier": earlier["settings"], **settings}


def saved_rows(name: str) -> list[dict]:
    path = saved_file(name)
    return json.loads(path.read_text())["rows"] if path.is_file() else []


def refuse_saved_code(names: list[str], code: str, replace: bool) -> None:
    """Stop before measuring when `code` already labels saved rows of these results (a re-run under the same
    --code would silently replace published numbers), unless `replace`."""
    taken = [n for n in names if any(r.get("code", "before") == code for r in saved_rows(n))]
    if taken and not replace:
        raise SystemExit(
            f"--code {code!r} already labels rows in benchmarks/results/{taken[0]}.json: "
            "pick a new --code, or pass --replace to overwrite those rows"
        )


def with_code_rows(name: str, code: str, rows: list[dict]) -> list[dict]:
    """The saved rows of other --code labels, then this run's (older rows without a code count as 'before')."""
    return [r for r in saved_rows(name) if r.get("code", "before") != code] + rows


def manifest_with_landmarks(work: Path) -> Path:
    """The union manifest with UTKFace's framing and every face's landmarks (synthetic masks need them)."""
    out = work / "utkface-union.framed.csv"
    if out.is_file():
        return out
    from faceattr.data.manifest import write_manifest
    from faceattr.faces.framing import face_points, measure_framing

    manifest, frame = utkface_union(work)
    found: dict = {}
    framing = measure_framing(frame.drop(columns="fold"), limit=0, found=found)
    framed = face_points(frame.drop(columns="fold"), found).assign(crop_settings=framing.crop_settings())
    write_manifest(framed, out)
    (work / f"{out.name}.folds-k5-seed42.csv").write_bytes((work / f"{manifest.name}.folds-k5-seed42.csv").read_bytes())
    print(f"framing {framing.margins}; landmarks for {len(found)} of {len(frame)} faces")
    return out


CANVAS = (384, 512)  # width, height: the competition's photo size


def textured_background(rng: np.random.Generator) -> Image.Image:
    """A smooth random colour field with noise: no second face, no flat colour the detector could key on."""
    coarse = rng.integers(30, 220, size=(6, 5, 3), dtype=np.uint8)
    field = Image.fromarray(coarse).resize(CANVAS, Image.Resampling.BICUBIC)
    noisy = np.asarray(field, dtype=np.int16) + rng.integers(-18, 18, size=(CANVAS[1], CANVAS[0], 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.5))


def reframe(face: Image.Image, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
    """The face scaled and pasted at a random place on a photo-sized canvas; returns it and the face centre."""
    side = int(rng.integers(120, 281))
    x, y = int(rng.integers(0, CANVAS[0] - side + 1)), int(rng.integers(0, CANVAS[1] - side + 1))
    canvas = textured_background(rng)
    canvas.paste(face.resize((side, side), Image.Resampling.BICUBIC), (x, y))
    return np.asarray(canvas), (x + side / 2, y + side / 2)


def nearest_face(faces: list[Face], centre: tuple[float, float], tolerance: float) -> Face | None:
    """The detected face whose box centre is nearest the true one, if within `tolerance` pixels."""
    best, best_d = None, tolerance
    for face in faces:
        x1, y1, x2, y2 = face.box
        d = float(np.hypot((x1 + x2) / 2 - centre[0], (y1 + y2) / 2 - centre[1]))
        if d < best_d:
            best, best_d = face, d
    return best


def probabilities(predictor, crops: list[np.ndarray], batch: int = 64) -> dict[str, np.ndarray]:
    """Each head's probabilities for face crops, `batch` at a time."""
    parts = [predictor.predict_crops(crops[i : i + batch]) for i in range(0, len(crops), batch)]
    return {task: np.concatenate([p[task] for p in parts]) for task in parts[0]}


def predict(predictor, crops: list[np.ndarray], batch: int = 64) -> dict[str, np.ndarray]:
    """Labels for face crops, `batch` at a time (argmax per head, the age bin from the expected age)."""
    return decide(probabilities(predictor, crops, batch), predictor.cfg.data.old_threshold)


def take(loader, n: int):
    """`n` batches from a loader, epoch after epoch (with persistent workers, no restart cost between epochs)."""
    while True:
        for batch in loader:
            yield batch
            n -= 1
            if n == 0:
                return
