"""The environment the README installs: registry torch + torchvision whose compiled ops load."""

import torch
from typer.testing import CliRunner

from faceattr.cli import app


def test_torchvision_nms_works():
    from torchvision.ops import nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]], dtype=torch.float32)
    keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]


def test_help_lists_every_command():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("prepare", "train", "evaluate", "predict", "submit", "demo", "labels"):
        assert command in result.output
