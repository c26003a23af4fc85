from pathlib import Path

import pytest

from faceattr.config import AUGMENT_STEPS, load_config
from faceattr.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_then_yaml_then_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("train:\n  epochs: 7\noptim:\n  name: sgd\n  lr: 0.01\n")
    cfg = load_config(path, ["optim.lr=3e-4", "model.backbone=resnet18"])
    assert cfg.train.epochs == 7
    assert cfg.optim.name == "sgd"
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.model.backbone == "resnet18"
    assert cfg.data.batch_size == 32  # untouched default


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["train.epoch=3"])
    assert "train.epoch" in str(err.value)
    assert "train.epochs" in str(err.value)


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"optim.learning_rate.*bad.yaml.*optim.lr"):
        load_config(path)


@pytest.mark.parametrize(
    "override, key",
    [
        ("optim.lr=-1", "optim.lr"),
        ("optim.lr=50", "optim.lr"),
        ("data.batch_size=0", "data.batch_size"),
        ("optim.name=lbfgs", "optim.name"),
        ("scheduler.name=warp", "scheduler.name"),
        ("data.fold=5", "data.fold"),
        ("data.old_threshold=20", "data.old_threshold"),
        ("data.batch_size=abc", "data.batch_size"),
        ("augment.mixup=1.5", "augment.mixup"),
        ("augment.mixup_alpha=0", "augment.mixup_alpha"),
        ("model.drop_path_rate=1", "model.drop_path_rate"),
        ("seed=-1", "seed"),
        ("data.split_seed=-1", "data.split_seed"),
        ("data.image_size=100000", "data.image_size"),
        ("data.max_train_samples=-1", "data.max_train_samples"),
        ("model.dropout=1", "model.dropout"),
        ("optim.momentum=-0.5", "optim.momentum"),
        ("scheduler.gamma=0", "scheduler.gamma"),
        ("scheduler.min_lr_ratio=2", "scheduler.min_lr_ratio"),
        ("train.log_every_n_steps=0", "train.log_every_n_steps"),
        ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val"),
        ("faces.min_face_size=-1", "faces.min_face_size"),
        ("tta.scale=0.5", "tta.scale"),
        ("tta.pitch=0", "tta.pitch"),
    ],
)
def test_values_that_make_no_sense_are_refused(override, key):
    with pytest.raises(ConfigError, match=key):
        load_config(None, [override])


@pytest.mark.parametrize("key", [*AUGMENT_STEPS, "synthetic_mask_p", "synthetic_mask_incorrect", "mixup"])
def test_every_augmentation_probability_outside_0_to_1_is_refused(key):
    with pytest.raises(ConfigError, match=f"augment.{key}.*probability"):
        load_config(None, [f"augment.{key}=1.5"])


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a folder, not a YAML file"):
        load_config(tmp_path)


def test_shipped_presets_load():
    from pathlib import Path

    presets = sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml"))
    assert presets, "configs/ should ship presets"
    for preset in presets:
        load_config(preset)


def test_a_typo_inside_per_task_or_tune_space_names_where_it_is_and_the_valid_keys():
    from faceattr.training.per_task import task_config
    from faceattr.training.tune import with_params

    cfg = load_config(None, ["per_task={mask: {optim.lrr: 0.1}, gender: {optim.lr: 0.01}}"])
    with pytest.raises(ConfigError, match=r"'optim.lrr' in per_task.mask\. Valid keys here: .*optim.lr"):
        task_config(cfg, "mask")
    assert task_config(cfg, "gender").optim.lr == 0.01 and task_config(cfg, "gender").model.heads == ["gender"]
    with pytest.raises(ConfigError, match=r"'optim.lrr' in tune.space"):
        with_params(cfg, {"optim.lrr": 0.01})
    assert with_params(cfg, {"optim.lr": 0.02}, "trial-1").run.name == "trial-1"


def test_an_empty_mapping_on_the_command_line_empties_what_the_config_file_set():
    preset = ROOT / "configs" / "mask_drawn.yaml"
    assert len(load_config(preset).priors.target["mask"]) == 3  # the preset sets shares...
    assert load_config(preset, ["priors.target={}"]).priors.target == {}  # ...which `{}` empties


def test_a_mapping_written_without_spaces_after_its_colons_says_how_to_write_it():
    with pytest.raises(ConfigError, match=r"space after each colon, e\.g\. key=\{a: 1, b: 2\}"):
        load_config(None, ["model.loss_weights={mask:1.0,gender:1.0}"])
    assert load_config(None, ["model.loss_weights={mask: 1.0, gender: 2.0}"]).model.loss_weights["gender"] == 2.0


def test_a_config_builds_on_its_base_and_states_only_what_differs(tmp_path):
    (tmp_path / "parent.yaml").write_text(
        "train:\n  epochs: 3\n  monitor: val/f1_mask\noptim:\n  lr: 2.0e-3\n"
        "priors:\n  target: {mask: [0.8, 0.1, 0.1]}\n"
    )
    (tmp_path / "child").mkdir()
    (tmp_path / "child" / "recipe.yaml").write_text(
        "base: ../parent.yaml\ntrain:\n  monitor: last\npriors:\n  target: {}\n"
    )
    cfg = load_config(tmp_path / "child" / "recipe.yaml", ["train.epochs=5"])
    assert cfg.optim.lr == pytest.approx(2e-3)  # from the base
    assert cfg.train.monitor == "last"  # the file over its base
    assert cfg.train.epochs == 5  # the command line over both
    assert cfg.priors.target == {}  # `{}` empties what the base filled


def test_a_missing_or_circular_base_is_a_clear_error(tmp_path):
    (tmp_path / "a.yaml").write_text("base: gone.yaml\n")
    with pytest.raises(ConfigError, match=r"a.yaml builds on `base: gone.yaml`, which is not at .*gone.yaml"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="leads back to itself"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"optim.learning_rate.*b.yaml"):  # a slip in the base names the base
        load_config(tmp_path / "a.yaml")


def test_train_print_config_shows_the_resolved_recipe_and_trains_nothing(tmp_path):
    """A recipe that builds on a base is read as one config: `--print-config` shows what training would use."""
    import yaml
    from typer.testing import CliRunner

    from faceattr.cli import app

    result = CliRunner().invoke(
        app,
        ["train", "-c", ROOT / "configs/mask_real.yaml", "--print-config", "train.epochs=5", f"run.dir={tmp_path}"],
    )
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["model"]["heads"] == ["mask"] and shown["data"]["image_size"] == 112  # from mask_drawn.yaml
    assert shown["run"]["name"] == "mask_real" and shown["train"]["monitor"] == "last"  # its own
    assert shown["train"]["epochs"] == 5 and shown["priors"]["target"] == {}
    assert not any(tmp_path.iterdir())  # no run folder
