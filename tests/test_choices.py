"""Every name a config choice takes (spelled once, in faceattr/config/choices.py) has its builder in the registry
keyed by it, and every builder answers such a name: a name cannot be accepted and then fail, or be built and
refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from faceattr.config import (
    AGE_LOSSES,
    LOSSES,
    OPTIMIZERS,
    SCHEDULERS,
    TRACKERS,
    TTA_TRANSFORMS,
    Config,
    OptimConfig,
    SchedulerConfig,
    to_dict,
)
from faceattr.config.choices import CONFIG_CHOICES, names
from faceattr.errors import ConfigError


def test_the_config_accepts_exactly_the_names_the_registries_build():
    from faceattr.models.losses import AGE_LOSSES as BUILT_AGE_LOSSES
    from faceattr.models.losses import CLASSIFICATION_LOSSES
    from faceattr.models.optim import OPTIMIZERS as BUILT_OPTIMIZERS
    from faceattr.models.optim import SCHEDULES

    assert set(OPTIMIZERS) == set(BUILT_OPTIMIZERS)
    assert set(SCHEDULERS) == set(SCHEDULES)
    assert set(LOSSES) == set(CLASSIFICATION_LOSSES)
    assert set(AGE_LOSSES) == set(BUILT_AGE_LOSSES)


def test_every_tracker_name_makes_a_logger_and_every_logger_is_accepted():
    from faceattr.training.fit import TRACKER_LOGGERS

    assert set(TRACKER_LOGGERS) == set(TRACKERS)


EXPECTED_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "adamp": "AdamP"}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_optimizer_name_builds_its_optimizer_with_the_configured_settings_and_learns(name):
    from faceattr.models.optim import create_optimizer

    torch.manual_seed(0)
    backbone, heads = nn.Linear(2, 2), nn.Linear(2, 1)
    cfg = OptimConfig(name=name, lr=0.05, weight_decay=0.01, momentum=0.8, backbone_lr_mult=0.1)
    optimizer = create_optimizer(cfg, backbone, heads)
    assert type(optimizer).__name__ == EXPECTED_OPTIMIZERS[name]
    backbone_group, head_group = optimizer.param_groups
    assert backbone_group["lr"] == pytest.approx(0.005) and head_group["lr"] == pytest.approx(0.05)
    assert head_group["weight_decay"] == pytest.approx(0.01)
    if name == "sgd":
        assert head_group["momentum"] == pytest.approx(0.8) and head_group["nesterov"]
    x, y = torch.randn(16, 2), torch.randn(16, 1)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = ((heads(backbone(x)) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_every_scheduler_name_has_a_schedule_that_starts_at_the_full_rate():
    from faceattr.models.optim import lr_factor

    for name in SCHEDULERS:
        assert lr_factor(SchedulerConfig(name=name), 0, 10) == pytest.approx(1.0), name


# (name, settings) -> the lr multiplier at epochs 0, 5 and 10 of a 10-epoch run, worked out by hand
EXPECTED_SCHEDULES = {
    ("none", ()): (1.0, 1.0, 1.0),
    ("step", (("step_size", 4), ("gamma", 0.5))): (1.0, 0.5, 0.25),
    ("exponential", (("gamma", 0.9),)): (1.0, 0.9**5, 0.9**10),
    ("cosine", (("min_lr_ratio", 0.01),)): (1.0, 0.01 + 0.99 * 0.5, 0.01),
}


@pytest.mark.parametrize(("name", "settings"), list(EXPECTED_SCHEDULES))
def test_each_schedule_is_where_it_should_be_mid_run_and_at_the_end(name, settings):
    from faceattr.models.optim import lr_factor

    cfg = SchedulerConfig(name=name, **dict(settings))
    got = tuple(lr_factor(cfg, epoch, 10) for epoch in (0, 5, 10))
    assert got == pytest.approx(EXPECTED_SCHEDULES[(name, settings)])


def test_the_quarter_schedule_steps_down_by_quarters():
    from faceattr.models.optim import lr_factor

    factors = [lr_factor(SchedulerConfig(name="quarter"), epoch, 8) for epoch in range(8)]
    assert factors == pytest.approx([1.0, 1.0, 0.2, 0.2, 0.04, 0.04, 0.008, 0.008])


def test_every_tta_name_is_a_view_and_every_view_is_accepted():
    from faceattr.inference.tta import VIEWS

    assert set(VIEWS) == set(TTA_TRANSFORMS)


@pytest.mark.parametrize("name", LOSSES)
def test_every_loss_name_gives_a_finite_loss_that_differs_from_the_others(name):
    from faceattr.models.module import FaceAttrModule

    cfg = to_dict(Config())
    cfg["model"].update(backbone="test_efficientnet", pretrained="none", heads=["mask"])
    cfg["loss"]["name"] = name
    module = FaceAttrModule(cfg, load_pretrained=False)
    logits, target = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]]), torch.tensor([0, 1])
    loss = module._task_loss("mask", logits, target)
    assert torch.isfinite(loss)
    others = {}
    for other in LOSSES:
        cfg["loss"]["name"] = other
        others[other] = FaceAttrModule(cfg, load_pretrained=False)._task_loss("mask", logits, target).item()
    assert sum(abs(v - loss.item()) < 1e-6 for v in others.values()) == 1  # only itself: no name falls through


@pytest.mark.parametrize("key", list(CONFIG_CHOICES))
def test_each_choice_key_refuses_other_names_listing_the_valid_ones_as_the_reference_does(key):
    from faceattr.config import load_config

    choice = names(CONFIG_CHOICES[key])
    section, name = key.split(".")
    default = getattr(getattr(Config(), section), name)
    wrong = "[no-such-name]" if isinstance(default, list) else "no-such-name"
    with pytest.raises(ConfigError) as refused:
        load_config(None, [f"{key}={wrong}"])
    assert key in str(refused.value) and all(valid in str(refused.value) for valid in choice)
    reference = (Path(__file__).parents[1] / "docs/reference/config.md").read_text()
    row = next(line for line in reference.splitlines() if line.startswith(f"| `{key}` |"))
    assert all(f"`{valid}`" in row for valid in choice)
