"""What every command module of the CLI shares: the Typer app, the console, option types, error exit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from faceattr.config.schema import SEED_MAX
from faceattr.errors import Interrupted
from faceattr.labels import MAX_AGE, YOUNG_THRESHOLD

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Train, evaluate and serve face-attribute classifiers: mask state, gender and age.",
    pretty_exceptions_enable=False,
)
console = Console()
OldThreshold = Annotated[
    int, typer.Option(min=YOUNG_THRESHOLD + 1, max=MAX_AGE, help="age at or over which a person is 'old'")
]
SEED_RANGE = {"min": 0, "max": SEED_MAX}

Overrides = Annotated[list[str] | None, typer.Argument(help="config overrides, e.g. train.epochs=5 optim.lr=3e-4")]
ConfigPath = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (see configs/)")]
Also = Annotated[list[Path] | None, typer.Option("--also", help="more models to ensemble with (repeat the option)")]
Voting = Annotated[str, typer.Option(help="ensemble voting: soft (mean probabilities) or hard (majority)")]
TTA = Annotated[
    str | None,
    typer.Option(
        help="test-time views, e.g. hflip,shift,scale,brightness; none: the image alone; default: the model's own"
    ),
]
Priors = Annotated[
    str | None,
    typer.Option(
        help="class shares where the model is used, instead of the model's own priors.target: "
        "mask=0.83,0.05,0.12 (';' between heads), or none for the probabilities as trained",
    ),
]
Peers = Annotated[
    bool,
    typer.Option(
        "--peers/--no-peers",
        help="include the other projects' models the checkpoint's ensemble.peers names (e.g. a second gender vote)",
    ),
]
OnnxCache = Annotated[
    bool,
    typer.Option(
        "--onnx-cache/--no-onnx-cache",
        help="on CPU, run a checkpoint from its ONNX copy in the user cache ($FACEATTR_CACHE; exported on first use): "
        "starts without torch",
    ),
]


def _tta(value: str | None) -> list[str] | None:
    from faceattr.inference.tta import parse_views

    return parse_views(value)


def _priors(value: str | None) -> dict[str, list[float]] | None:
    from faceattr.inference.priors import parse_priors

    return parse_priors(value) if value is not None else None


OverwriteFlag = Annotated[bool, typer.Option("--overwrite", help="replace outputs already there")]


@contextmanager
def on_ctrl_c(message: str) -> Iterator[None]:
    """A Ctrl-C inside becomes `Interrupted(message)`: what the command keeps and how it goes on, exit code 130."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(message) from None


def _fail(error: Exception) -> None:
    if isinstance(error, Interrupted):  # the user's own Ctrl-C: no error, and the shell's code for it
        console.print(f"[yellow]{error}[/]")
        raise typer.Exit(code=130)
    console.print(f"[bold red]error:[/] {error}")
    raise typer.Exit(code=2)


def print_metrics(metrics: dict, title: str) -> None:
    table = Table(title=title)
    for col in ("task", "macro F1", "accuracy", "images"):
        table.add_column(col, justify="right" if col != "task" else "left")
    for task, m in metrics.items():
        if "f1" in m:
            table.add_row(task, f"{m['f1']:.4f}", f"{m['accuracy']:.4f}", str(m["n"]))
    console.print(table)
    if "age" in metrics and metrics["age"]["n"]:
        age = metrics["age"]
        extra = f", MAE vs apparent age {age['mae_apparent']:.2f}" if "mae_apparent" in age else ""
        console.print(f"exact age: MAE {age['mae']:.2f} years, CS@5 {age['cs5']:.3f}{extra} ({age['n']} images)")
