"""The environment the README installs: registry torch + torchvision whose compiled ops load."""

import torch
from typer.testing import CliRunner

from faceattr.cli import app


def test_torchvision_nms_works():
    from torchvision.ops import nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]], dtype=torch.float32)
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


COMMANDS = [
    *("labels", "prepare", "check", "suspects", "crop", "framing", "cache", "stats", "synth-masks"),
    *("train", "cv", "tune", "demo"),
    *("evaluate", "predict", "pseudo-label", "export", "serve", "cam", "submit"),
]


def test_help_lists_every_command_in_pipeline_order():
    """Each command is registered and has its own row in --help (a deleted command fails, whatever else the
    help text mentions)."""
    import typer

    assert list(typer.main.get_command(app).commands) == COMMANDS
    result = CliRunner().invoke(app, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    rows = [  # a command's row starts "│ name"; wrapped description lines start "│" and many spaces
        line[2:].split(" ")[0] for line in result.output.splitlines() if line.startswith("│ ") and line[2] != " "
    ]
    assert [r for r in rows if r in COMMANDS] == COMMANDS


def test_prepare_help_lists_exactly_the_registered_sources():
    """The CLI spells the layouts out (importing the readers would slow every command by ~1 s); this keeps the
    spelling equal to the reader registry."""
    import inspect

    from faceattr.cli import data_commands
    from faceattr.data.prepare import SOURCES

    assert f'help="{" | ".join(SOURCES)}"' in inspect.getsource(data_commands.prepare)
