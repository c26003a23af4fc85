"""How fast `faceattr predict` answers: start-up on one photo and photos/s on 300, whole processes, per stage.

Photos: 300 held-out UTKFace faces (fold 0 of the union) pasted at 120-280 px on 384x512 textured canvases (the
competition's photo size), one face each, JPEG quality 92, made once under --work. Without ../shared the
benchmark stops and says so (drawn faces would time a different detector workload).

Rows, each a whole `python -m faceattr.cli predict --faces` process on this machine:
  start-up      one photo (median of --repeats runs): imports, model load, detector load, one photo, CSV
  300 photos    all photos: wall time, photos/s over the whole process and past start-up
Then the per-stage table of one in-process run (`faceattr predict --profile` prints the same table): decode,
detect, crop, resize + normalise, model, write, as seconds and ms per photo.
`--code NAME` labels the rows (e.g. before / after a change); rows of other labels already in the results file
are kept, so one table shows both. The model is a checkpoint (default: EfficientNet-Lite0 at 128 px briefly
trained on the synthetic demo data, as benchmarks/serve.py; speed does not depend on accuracy) three ways: on torch
(`--no-onnx-cache`), from its ONNX copy in the user cache (`predict`'s default on CPU; a "first run" row times the
run that exports it), and its ONNX export (`--onnx`). The runs use their own cache, --work/cache.

    python -m benchmarks.predict_speed --code after
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from benchmarks.common import SHARED_UTKFACE, reframe, refuse_saved_code, save, utkface_union, with_code_rows
from faceattr.labels import CLASSIFICATION_TASKS

COLUMNS = [
    "code",
    "model",
    "row",
    "photos",
    "wall_s",
    "photos_per_s",
    "photos_per_s_past_startup",
    "faces_found",
    "labels_as_before",
]
STAGE_COLUMNS = ["code", "model", "stage", "seconds", "ms_per_photo", "share"]


def make_photos(work: Path, n: int, seed: int = 0) -> list[Path]:
    """`n` held-out faces on 384x512 canvases, written once and reused."""
    out = work / f"photos-{n}"
    existing = sorted(out.glob("*.jpg"))
    if len(existing) == n:
        return existing
    if not SHARED_UTKFACE.is_dir():
        raise SystemExit(f"UTKFace not found at {SHARED_UTKFACE}: the photos are made from held-out UTKFace faces")
    _, frame = utkface_union(work)
    test = frame[frame["fold"] == 0].sample(n=n, random_state=seed)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, path in enumerate(test["path"]):
        photo, _ = reframe(Image.open(path).convert("RGB"), rng)
        dst = out / f"{k:04d}.jpg"
        Image.fromarray(photo).save(dst, quality=92)
        paths.append(dst)
    return paths


def run_predict(model: list[str], photos: list[Path] | Path, out: Path, *extra: str) -> float:
    """Wall seconds of one whole `faceattr predict --faces` process."""
    inputs = [str(photos)] if isinstance(photos, Path) else [str(p) for p in photos]
    cmd = [sys.executable, "-m", "faceattr.cli", "predict", *model, *inputs, "--faces", "--out", str(out), *extra]
    start = time.perf_counter()
    subprocess.run([*cmd, "--overwrite"], check=True, capture_output=True)
    return time.perf_counter() - start


MODELS = {  # row name -> how `predict` is given the model (CHECKPOINT / ONNX filled in)
    "checkpoint": ["{checkpoint}", "--no-onnx-cache"],  # on torch, as every row before the ONNX copy
    "checkpoint, ONNX copy": ["{checkpoint}"],
    "onnx": ["--onnx", "{onnx}"],
}


def stage_rows(code: str, name: str, model: list[str], photos: list[Path], out: Path) -> list[dict]:
    """One in-process run with the stage clock: where each photo's time goes."""
    from faceattr.inference.faces_in_photos import predict_faces
    from faceattr.inference.load import load_predictor
    from faceattr.inference.profile import StageClock

    predictor = load_predictor(
        model[1] if model[0] == "--onnx" else model[0], onnx_cache="--no-onnx-cache" not in model
    )
    detector = predictor.face_detector()
    predict_faces(predictor, [str(p) for p in photos[:8]], detector)  # warm-up (allocators, first-call paths)
    clock = StageClock()  # stages one after another (overlap off), so the table adds up
    table = predict_faces(predictor, [str(p) for p in photos], detector, clock=clock, overlap=False)
    with clock.stage("write"):
        table.to_csv(out, index=False)
    return [{"code": code, "model": name, **row} for row in clock.rows(len(photos))]


def same_labels(table: pd.DataFrame, reference: Path) -> float | None:
    """Share of photos whose labels equal those the `before` code wrote for the same model (None: no reference)."""
    if not reference.is_file():
        return None
    before = pd.read_csv(reference)
    both = before.merge(table, on=["path", "face"], how="left", suffixes=("_before", ""))  # a face lost: unequal
    tasks = [t for t in CLASSIFICATION_TASKS if t in table and f"{t}_before" in both]
    return float(np.all([both[t].to_numpy() == both[f"{t}_before"].to_numpy() for t in tasks], axis=0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", default="current", help="label of this code state (before / after ...)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="default: a lite0 128 px demo model")
    parser.add_argument("--photos", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-predict-speed"))
    parser.add_argument("--no-onnx", action="store_true", help="skip the exported ONNX model")
    parser.add_argument("--replace", action="store_true", help="overwrite the saved rows of this --code")
    args = parser.parse_args()
    refuse_saved_code(["predict_speed", "predict_speed_stages"], args.code, args.replace)
    args.work.mkdir(parents=True, exist_ok=True)
    photos = make_photos(args.work, args.photos)
    built = (args.work / "model/serve/checkpoints/best.ckpt", args.work / "model/model.onnx")
    if args.checkpoint is None and all(p.is_file() for p in built):
        checkpoint, onnx = built  # the demo model of an earlier run: the same weights for before and after
    elif args.checkpoint is None:
        from benchmarks.serve import build_model

        checkpoint, onnx = build_model(args.work / "model", 128)
    else:
        checkpoint, onnx = args.checkpoint, args.work / "model.onnx"
        if not args.no_onnx and not onnx.is_file():
            from faceattr.inference.export import export_onnx

            export_onnx(checkpoint, onnx)
    models = {
        name: [arg.format(checkpoint=checkpoint, onnx=onnx) for arg in given]
        for name, given in MODELS.items()
        if not (args.no_onnx and name == "onnx")
    }
    os.environ["FACEATTR_CACHE"] = str(args.work / "cache")  # the runs' own user cache (subprocesses inherit it)
    rows, stages = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            if name == "checkpoint, ONNX copy":  # the one run that exports the checkpoint's ONNX copy
                from faceattr.inference.onnx_cache import cached_model_path

                copy = cached_model_path(checkpoint)
                copy.unlink(missing_ok=True)
                first = run_predict(model, photos[0], Path(tmp) / "one.csv")
                assert copy.is_file(), f"predict on CPU did not write the ONNX copy {copy}"
                rows.append(
                    {"code": args.code, "model": name, "row": "first run (exports)", "photos": 1, "wall_s": first}
                )
            start = statistics.median(
                run_predict(model, photos[k % len(photos)], Path(tmp) / "one.csv") for k in range(args.repeats)
            )
            rows.append({"code": args.code, "model": name, "row": "start-up (1 photo)", "photos": 1, "wall_s": start})
            variants = {f"{len(photos)} photos": []}
            if name.startswith("checkpoint"):
                variants[f"{len(photos)} photos, --detect-max-side 320"] = ["--detect-max-side", "320"]
            for row, extra in variants.items():
                out = Path(tmp) / "all.csv"
                wall = run_predict(model, photos[0].parent, out, *extra)
                table = pd.read_csv(out)
                reference = args.work / f"labels-before-{name.split(',')[0]}.csv"  # full-size detection, code `before`
                if args.code == "before" and not extra:
                    table.to_csv(reference, index=False)
                rows.append(
                    {
                        "code": args.code,
                        "model": name,
                        "row": row,
                        "photos": len(photos),
                        "wall_s": wall,
                        "photos_per_s": len(photos) / wall,
                        "photos_per_s_past_startup": (len(photos) - 1) / max(wall - start, 1e-6),
                        "faces_found": float(table["face_found"].mean()),
                        "labels_as_before": same_labels(table, reference) if args.code != "before" else None,
                    }
                )
                print(rows[-1])
            stages += stage_rows(args.code, name, model, photos, Path(tmp) / "stages.csv")
    rows = [{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in rows]
    stages = [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in stages]
    settings = {"photos": f"{len(photos)} held-out UTKFace faces on 384x512 canvases", "repeats": args.repeats}
    save("predict_speed", with_code_rows("predict_speed", args.code, rows), COLUMNS, settings)
    save(
        "predict_speed_stages",
        with_code_rows("predict_speed_stages", args.code, stages),
        STAGE_COLUMNS,
        settings,
    )


if __name__ == "__main__":
    main()
