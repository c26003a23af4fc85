"""Mixup (`augment.mixup`): each face of a training batch is blended with another face of the same batch, and the
batch is scored against both faces' labels in the blend's shares; a batch left unblended is scored as before."""

from __future__ import annotations

import pytest
import torch

from faceattr.config import load_config
from faceattr.models.mixup import mix_batch
from faceattr.models.module import FaceAttrModule


def test_each_face_is_blended_with_another_of_the_batch_whose_labels_come_with_it():
    torch.manual_seed(0)
    faces = torch.arange(8.0)[:, None, None, None].expand(8, 3, 4, 4)  # face i is the constant i
    targets = {"mask": torch.arange(8), "age": torch.arange(8.0) * 10}
    blended, blended_in, share = mix_batch(faces, targets, alpha=0.4)
    assert 0 < share < 1
    other = (blended[:, 0, 0, 0] - share * torch.arange(8.0)) / (1 - share)  # the face blended into each
    assert sorted(blended_in["mask"].tolist()) == list(range(8))  # every face blended in once
    assert torch.allclose(other, blended_in["mask"].float(), atol=1e-4)
    assert torch.equal(blended_in["age"], blended_in["mask"].float() * 10)  # every label in the same order


def module(mixup: float) -> FaceAttrModule:
    cfg = load_config(
        None,
        [
            "model.backbone=test_efficientnet",
            "model.pretrained=none",
            "model.heads=[mask,gender]",
            f"augment.mixup={mixup}",
            "augment.mixup_alpha=0.4",
        ],
    )
    return FaceAttrModule.from_config(cfg, load_pretrained=False).eval()  # eval: batch norm as a fixed function


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")
@pytest.mark.parametrize("mixup", [0.0, 1.0])
def test_a_training_batch_is_scored_against_both_faces_labels_in_the_blends_shares(mixup):
    torch.manual_seed(1)
    images = torch.randn(6, 3, 64, 64)
    targets = {"mask": torch.tensor([0, 1, 2, 0, 1, 2]), "gender": torch.tensor([0, 1, 0, 1, -1, 0])}
    model = module(mixup)
    torch.manual_seed(2)
    loss = model.training_step((images, targets), 0)
    torch.manual_seed(2)
    blend = float(torch.rand(())) < mixup
    if blend:
        mixed, others, share = mix_batch(images, targets, 0.4)
        logits = model(mixed)
        own, other = model._losses(logits, targets), model._losses(logits, others)
        expected = sum(share * own[task] + (1 - share) * other[task] for task in own)
    else:
        expected = sum(model._losses(model(images), targets).values())
    assert blend == (mixup == 1.0)
    assert torch.allclose(loss, expected)
    if blend:  # and that is not what the unblended batch scores
        assert not torch.allclose(loss, sum(model._losses(model(images), targets).values()))
