"""Commands of the training stage: train, cv, tune, and the demo that runs the whole pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faceattr.cli.common import ConfigPath, Overrides, _fail, app, console
from faceattr.errors import FaceAttrError

PrepareOnnx = Annotated[
    bool,
    typer.Option(
        "--onnx-cache/--no-onnx-cache",
        help="on a CPU-only machine, export the best checkpoint's ONNX copy into the user cache ($FACEATTR_CACHE) "
        "once trained, so the first `predict` with it starts without torch",
    ),
]


def prepare_fast_predict(checkpoints: list[Path | None]) -> None:
    """Export each checkpoint's ONNX copy now (a few seconds after a run of minutes) rather than on the user's first
    `predict`, which would otherwise wait for torch and the export; a failed export only costs that later speed, and
    so does an exporter that cannot be imported any more (faceattr upgraded during a long run): the run succeeded."""
    from faceattr.training.fit import launched_rank

    try:
        from faceattr.inference.onnx_cache import gpu_present, onnx_copy
    except ImportError as e:
        console.print(f"[yellow]no ONNX copy ({e}); predict will run the checkpoint on torch[/]")
        return

    if gpu_present() or launched_rank() != 0:  # with a GPU, predict runs checkpoints on torch; one rank exports
        return
    for checkpoint in checkpoints:
        if checkpoint is None or not checkpoint.is_file():
            continue
        try:
            copy = onnx_copy(checkpoint)
        except Exception as e:  # the exporter's own failures: the torch path still predicts
            console.print(f"[yellow]{checkpoint}: no ONNX copy ({e}); predict will run it on torch[/]")
        else:
            console.print(f"ONNX copy for a fast predict on this machine: {copy}")


@app.command()
def train(
    config: ConfigPath = None,
    overrides: Overrides = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run from its last.ckpt")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing run folder")] = False,
    onnx_cache: PrepareOnnx = True,
    print_config: Annotated[
        bool,
        typer.Option(
            "--print-config",
            help="print the config this would train with (its base: files, the overrides, the defaults) and stop",
        ),
    ] = False,
) -> None:
    """Train a multi-task model: faceattr train -c configs/mask.yaml train.epochs=5 model.backbone=resnet18"""
    from faceattr.config import config_yaml, load_config
    from faceattr.training import train as run_training

    try:
        cfg = load_config(config, overrides)
        if print_config:
            print(config_yaml(cfg), end="")
            return
        if cfg.per_task:
            from faceattr.training.per_task import train_per_task

            results = train_per_task(cfg, overwrite=overwrite, resume=resume)
            for task, r in results.items():
                console.print(f"{task}: {r.best_checkpoint} ({r.best_score})")
            models = " --also ".join(str(r.best_checkpoint) for r in results.values())
            console.print(f"combine them: faceattr evaluate {models}")
            if onnx_cache:
                prepare_fast_predict([r.best_checkpoint for r in results.values()])
            return
        result = run_training(cfg, overwrite=overwrite, resume=resume)
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"run folder: [bold]{result.run_dir}[/]")
    console.print(f"best checkpoint: {result.best_checkpoint} ({cfg.train.monitor} = {result.best_score})")
    if result.skipped:
        console.print(f"[yellow]{result.skipped} unreadable image(s) skipped; see {result.run_dir / 'skipped.csv'}[/]")
    if onnx_cache:
        prepare_fast_predict([result.best_checkpoint])


def _fold_numbers(text: str) -> list[int]:
    """`--folds 0,2` as fold numbers, each once, in the order given."""
    try:
        return list(dict.fromkeys(int(part) for part in text.split(",")))
    except ValueError:
        raise FaceAttrError(f"--folds {text}: fold numbers separated by commas, e.g. 0,2") from None


@app.command()
def cv(
    config: ConfigPath = None,
    overrides: Overrides = None,
    folds: Annotated[str | None, typer.Option(help="folds to run, e.g. 0,2 (default: all)")] = None,
    full: Annotated[bool, typer.Option("--full", help="then train on all data for the median best epoch")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace existing fold run folders")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="keep the folds that finished, resume or start the others")
    ] = False,
) -> None:
    """Cross-validation: train every fold, report each and mean +- std, best epochs, out-of-fold predictions."""
    from faceattr.config import load_config
    from faceattr.training.cross_validation import cross_validate

    try:
        cfg = load_config(config, overrides)
        chosen = _fold_numbers(folds) if folds else None
        result = cross_validate(cfg, chosen, overwrite=overwrite, full_data=full, resume=resume)
    except FaceAttrError as e:
        _fail(e)
        return
    table = Table(title=f"cross-validation ({len(result.folds)} folds)")
    columns = ["fold", "best_epoch", *[c for c in result.folds.columns if c.startswith(("f1_", "age_mae"))]]
    for col in columns:
        table.add_column(col, justify="right")
    for _, row in result.folds.iterrows():
        table.add_row(*[f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns])
    table.add_row("mean", "", *[f"{result.summary['mean'][c]:.4f}" for c in columns[2:]])
    table.add_row("std", "", *[f"{result.summary['std'][c]:.4f}" for c in columns[2:]])
    console.print(table)
    console.print(
        f"median best epoch {result.summary['median_best_epoch']}; written to [bold]{result.out_dir}[/]"
        " (folds.csv, cv_summary.json, oof_predictions.csv)"
    )
    if full:
        console.print(f"full-data model: {result.summary['full_data_checkpoint']}")


@app.command()
def tune(
    config: ConfigPath = None,
    overrides: Overrides = None,
    trials: Annotated[
        int | None, typer.Option(min=1, help="finished trials wanted in the study (default: tune.trials)")
    ] = None,
) -> None:
    """Optuna study over tune.space with pruning; resumable from its SQLite file; writes best.yaml."""
    from faceattr.config import load_config
    from faceattr.training.tune import tune as run_tune

    try:
        result = run_tune(load_config(config, overrides), trials)
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"{result.finished} trials finished; best {result.best_value:.4f} with {result.best_params}")
    console.print(f"best config: [bold]{result.best_config}[/]  (faceattr train -c {result.best_config})")


@app.command()
def demo(
    workdir: Annotated[Path | None, typer.Option("--dir", help="where to build (default: a temp folder)")] = None,
    persons: Annotated[int, typer.Option(min=10, help="synthetic people (7 photos each)")] = 60,
    epochs: Annotated[int, typer.Option(min=1)] = 4,
    overrides: Overrides = None,
) -> None:
    """Smoke run on a shipped synthetic dataset: build it, prepare, train, evaluate, predict, submit (CPU, <3 min)."""
    from faceattr.demo import run_demo

    try:
        run_demo(workdir, persons=persons, epochs=epochs, overrides=overrides or [], console=console)
    except FaceAttrError as e:
        _fail(e)
