"""Class shares where a model is used (priors): train records the shares each head saw, predict moves the
probabilities to `priors.target` by Bayes' rule, and labels follow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.config import PriorsConfig, load_config
from faceattr.errors import ConfigError
from faceattr.inference.inputs import collect_images
from faceattr.inference.load import load_predictor
from faceattr.inference.priors import apply_priors, check_priors, parse_priors, reweight


def test_reweight_is_bayes_rule_for_other_class_shares():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.8, 0.1]])
    trained, target = [5 / 7, 1 / 7, 1 / 7], [0.83, 0.05, 0.12]
    expected = probs * np.array(target) / np.array(trained)
    expected /= expected.sum(1, keepdims=True)
    assert np.allclose(reweight(probs, trained, target), expected)
    assert np.allclose(reweight(probs, trained, trained), probs)  # the same shares change nothing


def test_a_rarer_incorrect_class_frees_borderline_calls_but_not_confident_ones():
    cfg = PriorsConfig(target={"mask": [0.83, 0.05, 0.12]}, trained={"mask": [5 / 7, 1 / 7, 1 / 7]})
    probs = {"mask": np.array([[0.40, 0.55, 0.05], [0.02, 0.97, 0.01]]), "gender": np.array([[0.6, 0.4]] * 2)}
    out = apply_priors(probs, cfg)
    assert out["mask"].argmax(1).tolist() == [0, 1]  # borderline -> worn; a confident "incorrect" stays
    assert out["gender"] is probs["gender"]  # heads without target shares are untouched
    assert apply_priors(probs, PriorsConfig()) is probs


def test_priors_config_refuses_shares_that_are_not_shares():
    for bad in ("[0.9,0.1]", "[0.5,0.5,0.5]", "[1.0,0.0,0.0]"):
        with pytest.raises(ConfigError, match=r"priors\.target\.mask"):
            load_config(None, [f"priors.target.mask={bad}"])
    with pytest.raises(ConfigError, match="unknown head"):
        load_config(None, ["priors.target.age=[1.0]"])
    with pytest.raises(ConfigError, match=r"not in model\.heads"):
        load_config(None, ["model.heads=[gender]", "priors.target.mask=[0.8,0.1,0.1]"])


def test_the_drawn_mask_recipe_predicts_with_real_photos_class_shares():
    target = load_config("configs/mask_drawn.yaml").priors.target["mask"]
    assert target[1] < 1 / 7  # fewer "incorrect" than the drawn set's 1 in 7
    assert load_config("configs/mask.yaml").priors.target == {}  # the competition's own photos keep 5 : 1 : 1


def test_priors_text_from_the_command_line():
    assert parse_priors("mask=0.83,0.05,0.12; gender=0.5,0.5") == {"mask": [0.83, 0.05, 0.12], "gender": [0.5, 0.5]}
    assert parse_priors("none") == {}
    with pytest.raises(ConfigError, match="HEAD=share"):
        parse_priors("mask=lots")


def test_a_model_without_recorded_training_shares_is_refused_with_the_fix():
    cfg = PriorsConfig(target={"mask": [0.83, 0.05, 0.12]})
    with pytest.raises(ConfigError, match="retrain it"):
        check_priors(cfg, ["mask"], "old.ckpt")
    with pytest.raises(ConfigError, match="heads are gender"):
        check_priors(PriorsConfig(target={"mask": [0.8, 0.1, 0.1]}, trained={"mask": [0.8, 0.1, 0.1]}), ["gender"], "x")


def test_label_shares_follow_what_the_sampler_and_drawn_masks_show_the_model(tmp_path):
    from faceattr.data.datamodule import FaceDataModule

    rows = []
    for person in range(20):  # 5 worn, 1 incorrect, 1 bare per person, as the competition and synth-masks have
        for k, mask in enumerate([0] * 5 + [1, 2]):
            rows.append(
                {
                    "path": f"p{person}_{k}.jpg",
                    "person_id": f"p{person}",
                    "mask": mask,
                    "gender": person % 2,
                    "age_bin": 0,
                    "age": 20.0,
                    "landmarks": "1 1 2 2 3 3 4 4 5 5",
                    "face_box": "0 0 9 9",
                    "label18": mask * 6 + (person % 2) * 3,
                    "source": "test",
                }
            )
    manifest = tmp_path / "m.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)

    def shares(*overrides: str) -> list[float]:
        cfg = load_config(None, [f"data.manifest={manifest}", "train.full_data=true", *overrides])
        module = FaceDataModule(cfg, [0.5] * 3, [0.5] * 3)
        module.setup("fit")
        return module.label_shares(["mask"])["mask"]

    assert np.allclose(shares(), [5 / 7, 1 / 7, 1 / 7], atol=1e-5)
    assert np.allclose(shares("data.keep_masked=2"), [2 / 4, 1 / 4, 1 / 4], atol=1e-5)
    assert np.allclose(shares("sampler.name=weighted", "sampler.by=mask"), [1 / 3] * 3, atol=1e-5)
    # half the bare faces get a drawn mask, a quarter of those worn incorrectly
    drawn = shares("augment.synthetic_mask_p=0.5", "augment.synthetic_mask_incorrect=0.25")
    assert np.allclose(drawn, [(5 + 0.375) / 7, (1 + 0.125) / 7, 0.5 / 7], atol=1e-5)


def test_training_records_the_shares_and_predict_applies_target_shares(trained_run, competition_root, tmp_path):
    checkpoint = trained_run.best_checkpoint
    model = load_predictor(checkpoint)
    trained = model.cfg.priors.trained
    assert set(trained) == {"mask", "gender", "age_bin"}
    assert np.allclose(trained["mask"], [5 / 7, 1 / 7, 1 / 7], atol=0.05)  # the synthetic set's 5 : 1 : 1

    photos = collect_images([competition_root / "train" / "images"])[:21]
    plain = model.predict_paths(photos).probs["mask"]
    rare = {"mask": [0.9, 0.001, 0.099]}
    shifted = load_predictor(checkpoint, priors=rare).predict_paths(photos).probs["mask"]
    assert np.allclose(shifted, reweight(plain, trained["mask"], rare["mask"]), atol=1e-5)

    own = load_predictor(checkpoint)  # a model whose config carries target shares applies them by itself
    own.cfg.priors.target = rare
    assert np.allclose(own.predict_paths(photos).probs["mask"], shifted, atol=1e-5)
    own.cfg.priors.target = {}

    out = tmp_path / "p.csv"
    args = ["predict", str(checkpoint), *photos, "--no-faces", "--out", str(out), "--priors", "mask=0.9,0.001,0.099"]
    assert CliRunner().invoke(app, args).exit_code == 0
    table = pd.read_csv(out)
    assert (table["mask"] == 1).sum() <= (plain.argmax(1) == 1).sum()
    assert np.allclose(table[["p_mask_0", "p_mask_1", "p_mask_2"]].to_numpy(), shifted, atol=1e-4)

    from faceattr.reports.evaluate import evaluate

    evaluate(checkpoint, out_dir=tmp_path / "eval", priors=rare)
    assert "priors.target" in (tmp_path / "eval" / "model_card.md").read_text()  # the card says what it scored

    bad = CliRunner().invoke(
        app, ["predict", str(checkpoint), *photos, "--out", str(tmp_path / "q.csv"), "--priors", "mask=1,2"]
    )
    assert bad.exit_code == 2 and "priors.target.mask" in bad.output


def test_each_per_task_model_keeps_only_its_own_target_shares():
    from faceattr.training.per_task import task_config

    cfg = load_config(
        None,
        [
            "per_task={mask: {}, gender: {}}",
            "priors.target.mask=[0.83,0.05,0.12]",
            "priors.target.gender=[0.4,0.6]",
        ],
    )
    assert task_config(cfg, "mask").priors.target == {"mask": [0.83, 0.05, 0.12]}
    assert task_config(cfg, "gender").priors.target == {"gender": [0.4, 0.6]}
    assert task_config(cfg, "age_bin").priors.target == {}
