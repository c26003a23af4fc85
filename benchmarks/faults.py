"""Fault injection: what the tool survives and what it loses. Prints and saves a table.

Faults: SIGKILL of a training process at random moments then --resume (final metrics compared with an
uninterrupted run), corrupt/empty/truncated/non-image files inside a training manifest, non-finite losses with
the skip policy, configs that make no sense, malformed datasets, and bounded atheris fuzzing of the image and
manifest readers. "Samples lost" counts bad inputs that were neither used nor reported (must be 0).

    python benchmarks/faults.py --kills 2 --fuzz-runs 2000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from benchmarks.common import save, saved_rows
from faceattr.config import load_config
from faceattr.data.drawn_faces import make_competition_dataset
from faceattr.data.images import SkipReport
from faceattr.data.manifest import write_manifest
from faceattr.data.sources import read_competition
from faceattr.errors import ConfigError, DatasetError, FaceAttrError
from faceattr.training import train

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def overrides(manifest: Path, run_dir: Path, name: str, **extra) -> list[str]:
    values = {
        "data.manifest": manifest,
        "data.image_size": 64,
        "data.batch_size": 4,
        "data.num_workers": 0,
        "data.folds": 3,
        "model.backbone": "test_efficientnet",
        "model.pretrained": "none",
        "train.epochs": 3,
        "train.progress_bar": False,
        "trainer.accelerator": "cpu",
        "run.dir": run_dir,
        "run.name": name,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def kill_and_resume(manifest: Path, work: Path, kills: int) -> dict:
    command = [sys.executable, "-m", "faceattr", "train"]
    subprocess.run([*command, *overrides(manifest, work, "straight")], env=ENV, check=True, capture_output=True)
    reference = json.loads((work / "straight" / "train_summary.json").read_text())["last_metrics"]["val/loss"]
    survived, rng = 0, random.Random(0)
    for k in range(kills):
        name = f"killed{k}"
        last = work / name / "checkpoints" / "last.ckpt"
        proc = subprocess.Popen(
            [*command, *overrides(manifest, work, name)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        while not last.exists() and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        torch.load(last, map_location="cpu", weights_only=False)
        subprocess.run(
            [*command, *overrides(manifest, work, name), "--resume"], env=ENV, check=True, capture_output=True
        )
        final = json.loads((work / name / "train_summary.json").read_text())["last_metrics"]["val/loss"]
        survived += abs(final - reference) < 1e-4
    return {
        "fault": "SIGKILL mid-run, then --resume",
        "injected": kills,
        "runs_survived": survived,
        "samples_lost": 0,
        "clear_errors": "-",
        "note": "final val loss equals the uninterrupted run's",
    }


def corrupt_images(root: Path, work: Path) -> dict:
    df = read_competition(root)
    bad = {
        "empty.jpg": b"",
        "text.jpg": b"not an image",
        "trunc.jpg": Path(df.path[0]).read_bytes()[:300],
        "garbage.png": b"\x89PNG\r\n\x1a\n" + os.urandom(200),
    }
    for i, (name, data) in enumerate(bad.items()):
        (work / name).write_bytes(data)
        df.loc[i * 7, "path"] = str(work / name)
    manifest = write_manifest(df, work / "with_bad.csv")
    result = train(load_config(None, overrides(manifest, work, "corrupt", **{"train.epochs": 1, "data.batch_size": 1})))
    reported = {row["path"] for row in SkipReport.read(result.run_dir / "skipped.csv")}
    lost = len({str(work / n) for n in bad} - reported)
    return {
        "fault": "corrupt, empty, truncated, non-image files in training",
        "injected": len(bad),
        "runs_survived": 1,
        "samples_lost": lost,
        "clear_errors": len(reported),
        "note": "listed in skipped.csv",
    }


def nonfinite_losses(manifest: Path, work: Path) -> dict:
    from faceattr.models import module as module_file

    real, calls = module_file.FaceAttrModule._total, {"n": 0}

    def poisoned(self, losses):
        calls["n"] += 1
        total = real(self, losses)
        return total * float("nan") if self.training and calls["n"] % 4 == 0 else total

    module_file.FaceAttrModule._total = poisoned
    try:
        result = train(
            load_config(
                None, overrides(manifest, work, "nan", **{"train.epochs": 1, "train.on_nonfinite_loss": "skip"})
            )
        )
    finally:
        module_file.FaceAttrModule._total = real
    skipped = int(result.metrics.get("train/skipped_nonfinite", 0))
    finite = all(
        torch.isfinite(v).all()
        for v in torch.load(result.last_checkpoint, weights_only=False)["state_dict"].values()
        if v.is_floating_point()
    )
    return {
        "fault": "NaN losses (train.on_nonfinite_loss=skip)",
        "injected": skipped,
        "runs_survived": int(finite),
        "samples_lost": 0,
        "clear_errors": "-",
        "note": "batches skipped, weights stay finite",
    }


def bad_configs() -> dict:
    tried = [
        "optim.lr=-1",
        "optim.lr=100",
        "data.batch_size=0",
        "data.batch_size=abc",
        "train.epoch=3",
        "optim.name=lbfgs",
        "data.fold=9",
        "data.old_threshold=10",
        "model.heads=[nose]",
        "faces.margins=[1]",
    ]
    clear = 0
    for item in tried:
        try:
            load_config(None, [item])
        except ConfigError:
            clear += 1
    return {
        "fault": "configs that make no sense",
        "injected": len(tried),
        "runs_survived": "-",
        "samples_lost": 0,
        "clear_errors": clear,
        "note": "refused before any data is read",
    }


def bad_datasets(work: Path) -> dict:
    cases = 0
    clear = 0
    for name, damage in (
        ("malformed", lambda d: d.rename(d.with_name("000777_female_Asian"))),
        ("missing", lambda d: (d / "normal.jpg").unlink()),
        ("unknown", lambda d: (d / "mask1.jpg").rename(d / "mask9.jpg")),
    ):
        root = make_competition_dataset(work / f"ds_{name}", persons=3, eval_persons=1, seed=1)
        damage(sorted((root / "train" / "images").iterdir())[0])
        cases += 1
        try:
            read_competition(root)
        except DatasetError:
            clear += 1
    return {
        "fault": "malformed dataset folders",
        "injected": cases,
        "runs_survived": "-",
        "samples_lost": 0,
        "clear_errors": clear,
        "note": "error names the folder and the fix",
    }


def fuzz(kind: str, runs: int, work: Path) -> dict:
    counts = work / f"fuzz_{kind}.json"
    target = Path(__file__).with_name("fuzz_targets.py")
    subprocess.run(
        [sys.executable, str(target), kind, f"-runs={runs}"],
        env={**ENV, "FUZZ_COUNTS": str(counts)},
        capture_output=True,
        timeout=1800,
    )
    c = json.loads(counts.read_text())
    return {
        "fault": f"atheris fuzzing of the {kind} reader",
        "injected": c["inputs"],
        "runs_survived": int(c["other_errors"] == 0),
        "samples_lost": 0,
        "clear_errors": c["clear_errors"],
        "note": f"{c['accepted']} accepted, {c['other_errors']} other exceptions",
    }


class _Payload:
    """Unpickling this calls open(marker, 'w'): the file appears if a loader runs the pickle's code."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def crafted_checkpoint(work: Path) -> dict:
    from faceattr.inference.predictor import load_predictor

    marker, path = work / "MARKER", work / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"config": {}}, "x": _Payload(str(marker))}, path)
    clear = 0
    try:
        load_predictor(path)
    except ConfigError:
        clear = 1
    return {
        "fault": "crafted pickle checkpoint (code on load)",
        "injected": 1,
        "runs_survived": int(not marker.exists()),
        "samples_lost": 0,
        "clear_errors": clear,
        "note": "refused by the weights-only loader; no code ran" if not marker.exists() else "CODE RAN",
    }


def foreign_encodings(work: Path) -> dict:
    from faceattr.data.sources import read_competition_eval

    read = 0
    for encoding, name in (("latin-1", "café.jpg"), ("cp949", "사진.jpg"), ("utf-8-sig", "plain.jpg")):
        root = work / f"enc_{encoding}" / "eval"
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "images" / name).write_bytes(b"")
        (root / "info.csv").write_bytes(f"ImageID,ans\n{name},0\n".encode(encoding))
        read += int(read_competition_eval(root.parent)["image_id"].iloc[0] == name)
    return {
        "fault": "eval/info.csv in Latin-1, CP949, UTF-8 with BOM",
        "injected": 3,
        "runs_survived": read,
        "samples_lost": 0,
        "clear_errors": "-",
        "note": "read as written (UTF-8 first, then the detected encoding)",
    }


def users_files(manifest: Path, work: Path) -> dict:
    """predict next to a user's skipped.csv, same-named photos drawn, an existing output, every input unreadable."""
    from PIL import Image
    from typer.testing import CliRunner

    from faceattr.cli import app

    ckpt = train(load_config(None, overrides(manifest, work / "runs", "users", **{"train.epochs": 1}))).best_checkpoint
    photos = work / "photos"
    for rel in ("a/x.jpg", "a/x.png", "b/x.jpg"):
        (photos / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (96, 120), (120, 100, 90)).save(photos / rel)
    out = work / "out"
    out.mkdir()
    (out / "skipped.csv").write_text("the user's own report\n")
    args = ["predict", str(ckpt), str(photos), "--faces", "--out", str(out / "p.csv"), "--draw", str(work / "drawn")]
    runner = CliRunner()
    first, again = runner.invoke(app, args), runner.invoke(app, args)
    (work / "broken.jpg").write_bytes(b"no image")
    empty = runner.invoke(app, ["predict", str(ckpt), str(work / "broken.jpg"), "--out", str(work / "e.csv")])
    kept = (out / "skipped.csv").read_text() == "the user's own report\n"
    drawn = len(list((work / "drawn").rglob("*_faces.jpg")))
    survived = int(first.exit_code == 0 and kept and drawn == 3)
    return {
        "fault": "user files beside predict's outputs",
        "injected": 4,
        "runs_survived": survived,
        "samples_lost": 3 - drawn,
        "clear_errors": int(again.exit_code == 2) + int(empty.exit_code == 2),
        "note": f"a user's skipped.csv kept: {kept}; {drawn}/3 same-named photos drawn apart; "
        "an existing output and an all-unreadable input refused (exit 2)",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--fuzz-runs", type=int, default=2000)
    parser.add_argument(
        "--only", default="", help="comma-separated fault names to run; their rows replace the saved ones"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="faceattr-faults-"))
    root = make_competition_dataset(work / "data", persons=15, eval_persons=1, seed=1)
    manifest = write_manifest(read_competition(root), work / "manifest.csv")
    rows = []
    steps = {
        "kills": lambda: kill_and_resume(manifest, work, args.kills),
        "corrupt": lambda: corrupt_images(root, work),
        "nonfinite": lambda: nonfinite_losses(manifest, work),
        "configs": bad_configs,
        "datasets": lambda: bad_datasets(work),
        "fuzz_image": lambda: fuzz("image", args.fuzz_runs, work),
        "fuzz_manifest": lambda: fuzz("manifest", args.fuzz_runs, work),
        "checkpoint": lambda: crafted_checkpoint(work),
        "encodings": lambda: foreign_encodings(work),
        "user_files": lambda: users_files(manifest, work),
    }
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(steps)
    for step in (steps[name] for name in chosen):
        try:
            rows.append(step())
        except (FaceAttrError, subprocess.SubprocessError) as e:
            rows.append({"fault": getattr(step, "__name__", "step"), "note": f"FAILED: {e}"})
        print(rows[-1], flush=True)
    if args.only:  # keep the saved rows of the faults not run now
        saved = saved_rows("faults")
        new_names = {r["fault"] for r in rows}
        rows = [r for r in saved if r["fault"] not in new_names] + rows
    table = pd.DataFrame(rows)
    print(f"\nsamples lost in total: {pd.to_numeric(table['samples_lost'], errors='coerce').sum():.0f}")
    save(
        "faults",
        rows,
        ["fault", "injected", "runs_survived", "samples_lost", "clear_errors", "note"],
        {"kills": args.kills, "fuzz_runs": args.fuzz_runs},
    )


if __name__ == "__main__":
    main()
