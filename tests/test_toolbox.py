"""The competition toolbox: losses, samplers, downsampling, per-task models, voting, TTA, CV, corrections."""

import json
import math
import shutil

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.config import TTAConfig, load_config
from faceattr.data.datamodule import drop_near_boundary, fixed_masked_drop, masked_groups
from faceattr.data.samplers import EpochSeededSampler, balance_labels, inverse_frequency_weights
from faceattr.errors import ManifestError
from faceattr.inference.ensemble import product18, vote
from faceattr.inference.tta import tta_views
from faceattr.labels import encode
from faceattr.models.losses import balanced_class_weights, focal_loss, masked_cross_entropy, soft_f1_loss
from faceattr.training import train
from tests.conftest import tiny_overrides

LOGITS = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.5, 0.5, 3.0]])
TARGET = torch.tensor([0, 1, 2])


def test_focal_loss_values_and_gradients():
    assert focal_loss(LOGITS, TARGET, gamma=0).item() == pytest.approx(F.cross_entropy(LOGITS, TARGET).item())
    p = LOGITS.softmax(1)[torch.arange(3), TARGET]
    expected = (-((1 - p) ** 2) * p.log()).mean()
    assert focal_loss(LOGITS, TARGET, gamma=2).item() == pytest.approx(expected.item())
    assert focal_loss(LOGITS, TARGET, gamma=2) < focal_loss(LOGITS, TARGET, gamma=0)
    x = LOGITS.clone().requires_grad_()
    focal_loss(x, torch.tensor([0, 1, -1])).backward()
    assert x.grad[:2].abs().sum() > 0 and x.grad[2].abs().sum() == 0  # unknown label: no gradient


def test_class_weighted_and_label_smoothed_cross_entropy():
    weights = balanced_class_weights(np.array([0, 0, 0, 1, -1]), 3)
    assert weights.tolist() == pytest.approx([4 / 9, 4 / 3, 1.0])
    weighted = masked_cross_entropy(LOGITS, TARGET, weight=torch.tensor([1.0, 2.0, 3.0]))
    assert weighted.item() == pytest.approx(
        F.cross_entropy(LOGITS, TARGET, weight=torch.tensor([1.0, 2.0, 3.0])).item()
    )
    smooth = masked_cross_entropy(LOGITS, TARGET, label_smoothing=0.1)
    assert smooth.item() == pytest.approx(F.cross_entropy(LOGITS, TARGET, label_smoothing=0.1).item())


def test_soft_f1_loss_is_low_when_right_and_differentiable():
    perfect = torch.eye(3) * 50
    assert soft_f1_loss(perfect, TARGET).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.zeros(3, 3)
    assert soft_f1_loss(uniform, TARGET).item() == pytest.approx(1 - 2 * (1 / 3) / (2 / 3 + 2 / 3 + 2 / 3), abs=1e-6)
    x = LOGITS.clone().requires_grad_()
    soft_f1_loss(x, TARGET).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_weighted_sampler_draws_classes_evenly():
    labels = np.array([0] * 900 + [1] * 90 + [2] * 10)
    sampler = EpochSeededSampler(len(labels), seed=0, weights=inverse_frequency_weights(labels))
    drawn = []
    for epoch in range(5):
        sampler.set_epoch(epoch)
        drawn += [labels[i] for i, _ in sampler]
    shares = np.bincount(drawn, minlength=3) / len(drawn)
    assert shares == pytest.approx([1 / 3, 1 / 3, 1 / 3], abs=0.04)


def test_sampler_balances_by_any_manifest_column_or_combination():
    frame = pd.DataFrame(
        {
            "race": ["White"] * 600 + ["Asian"] * 60 + ["Black"] * 40 + [""] * 10,
            "gender": ([0, 1] * 355),
        }
    )
    labels = balance_labels(frame, "race")
    assert (labels[-10:] == -1).all() and len(set(labels[:700])) == 3
    sampler = EpochSeededSampler(len(frame), seed=0, weights=inverse_frequency_weights(labels))
    drawn = frame["race"].to_numpy()[[i for i, _ in sampler]]
    shares = pd.Series(drawn[drawn != ""]).value_counts(normalize=True)
    assert shares.to_numpy() == pytest.approx([1 / 3] * 3, abs=0.06)
    assert len(set(balance_labels(frame, "race+gender")[:700])) == 6
    with pytest.raises(ManifestError, match=r"no column.*ethnicity"):
        balance_labels(frame, "ethnicity")


def test_sampler_order_and_seeds_depend_only_on_seed_and_epoch():
    a, b = EpochSeededSampler(50, seed=3), EpochSeededSampler(50, seed=3)
    a.set_epoch(2), b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b) and sorted(i for i, _ in b) == list(range(50))


def _people(n=4):
    rows = [{"person_id": f"p{p}", "mask": m, "age": 20 + 15 * p} for p in range(n) for m in (0, 0, 0, 0, 0, 1, 2)]
    return pd.DataFrame(rows)


def test_downsampling_keeps_k_of_the_five_masked_photos():
    frame = _people()
    sampler = EpochSeededSampler(len(frame), seed=0, groups=masked_groups(frame), keep=2)
    seen = set()
    for epoch in range(3):
        sampler.set_epoch(epoch)
        chosen = frame.iloc[[i for i, _ in sampler]]
        assert len(sampler) == len(chosen) == 4 * (2 + 2)
        assert chosen[chosen["mask"] == 0].groupby("person_id").size().eq(2).all()
        seen.add(tuple(sorted(chosen.index)))
    assert len(seen) > 1  # a new random pick each epoch
    fixed = frame[~fixed_masked_drop(frame, keep=1, seed=0)]
    assert fixed[fixed["mask"] == 0].groupby("person_id").size().eq(1).all() and len(fixed) == 4 * 3


def test_drop_near_boundary():
    frame = pd.DataFrame({"age": [27.0, 28.0, 29.0, 30.0, 31.0, 32.0, 57.0, 58.0, 61.0, 62.0, np.nan]})
    kept = drop_near_boundary(frame, years=2, old_threshold=60)
    assert kept["age"].tolist()[:4] == [27.0, 32.0, 57.0, 62.0] and len(kept) == 5


def test_per_task_combination_equals_the_18_class_code():
    rng = np.random.default_rng(0)
    probs = {t: rng.dirichlet(np.ones(n), size=50) for t, n in (("mask", 3), ("gender", 2), ("age_bin", 3))}
    p18 = product18(probs)
    assert p18.shape == (50, 18) and np.allclose(p18.sum(1), 1)
    codes = encode(probs["mask"].argmax(1), probs["gender"].argmax(1), probs["age_bin"].argmax(1))
    assert (p18.argmax(1) == codes).all()


def test_soft_and_hard_voting_on_hand_made_tables():
    a = np.array([[0.6, 0.4], [0.9, 0.1]])
    b = np.array([[0.3, 0.7], [0.6, 0.4]])
    c = np.array([[0.45, 0.55], [0.2, 0.8]])
    soft = vote([a, b, c], "soft")
    assert soft == pytest.approx(np.array([[0.45, 0.55], [1.7 / 3, 1.3 / 3]]))
    hard = vote([a, b, c], "hard")
    assert hard.argmax(1).tolist() == [1, 0]  # votes: (0,1,1) and (0,0,1)
    assert hard[0, 1] == pytest.approx(2 / 3, abs=1e-5)


def test_tta_views_shapes_and_flip_invariance():
    cfg = TTAConfig(transforms=["hflip", "shift", "scale", "brightness"])
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    views = tta_views(x, cfg, (0.5,) * 3, (0.5,) * 3)
    assert len(views) == 5 and all(v.shape == x.shape and v.dtype == np.float32 for v in views)
    original, mirrored = tta_views(x, TTAConfig(transforms=["hflip"]), (0,) * 3, (1,) * 3)
    np.testing.assert_array_equal(original, x)
    np.testing.assert_array_equal(mirrored, x[..., ::-1])  # a non-symmetric image: a flip that does nothing fails
    assert not np.array_equal(mirrored, x)


def test_the_brightness_view_brightens_the_pixels_not_the_normalised_values():
    """The view works in normalised space, so it must equal normalising pixels made (1 + b) times brighter."""
    rng = np.random.default_rng(3)
    pixels = rng.uniform(0, 1, size=(2, 3, 8, 8)).astype(np.float32)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    m, s = np.array(mean, np.float32)[:, None, None], np.array(std, np.float32)[:, None, None]
    view = tta_views((pixels - m) / s, TTAConfig(transforms=["brightness"], brightness=0.2), mean, std)[1]
    np.testing.assert_allclose(view, (pixels * 1.2 - m) / s, atol=1e-5)


def test_tta_shift_and_zoom_are_torchs_pad_and_bilinear_zoom():
    """The NumPy views (no torch at predict) move pixels exactly as torch's replicate pad and bilinear resize."""
    import torch.nn.functional as F

    cfg = TTAConfig(transforms=["shift", "scale"], shift=0.1, scale=1.2)
    x = np.random.default_rng(1).normal(size=(2, 3, 40, 40)).astype(np.float32)
    shifted, zoomed = tta_views(x, cfg, (0,) * 3, (1,) * 3)[1:]
    t = torch.from_numpy(x)
    np.testing.assert_array_equal(shifted, F.pad(t, (4, 0, 4, 0), mode="replicate")[..., :40, :40].numpy())
    big = F.interpolate(t, scale_factor=1.2, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(zoomed, big[..., 4:44, 4:44].numpy(), atol=1e-4)  # float32 rounding


def test_the_pitch_view_moves_the_rows_as_the_pitch_augmentation_does():
    """A face looking down seen as if from lower (exponent < 1: the lower face taller), the same rows as training's
    `augment.pitch` moves; the first and last rows stay."""
    from faceattr.data.transforms import Pitch

    x = np.random.default_rng(2).uniform(0, 255, size=(2, 3, 40, 40)).astype(np.float32)
    view = tta_views(x, TTAConfig(transforms=["pitch"], pitch=0.8), (0,) * 3, (1,) * 3)[1]
    for image, viewed in zip(x, view, strict=True):
        expected = Pitch([0.8, 0.8])(np.ascontiguousarray(image.transpose(1, 2, 0)))
        np.testing.assert_allclose(viewed.transpose(1, 2, 0), expected, atol=1e-3)
    np.testing.assert_array_equal(view[..., [0, -1], :], x[..., [0, -1], :])
    assert np.abs(view - x).mean() > 10  # the rows between did move


def test_tta_predictions_are_the_mean_of_the_image_and_its_mirror(trained_run):
    from faceattr.inference.checkpoint_predictor import Predictor

    plain, flipped = Predictor(trained_run.best_checkpoint, "cpu"), Predictor(trained_run.best_checkpoint, "cpu")
    flipped.tta = TTAConfig(transforms=["hflip"])
    x = np.random.default_rng(2).normal(size=(3, 3, 64, 64)).astype(np.float32)  # not left-right symmetric
    mirror = np.ascontiguousarray(x[..., ::-1])
    a, m, b = plain.predict_array(x), plain.predict_array(mirror), flipped.predict_array(x)
    for task in a:
        assert b[task].shape == a[task].shape
        np.testing.assert_allclose(b[task], (a[task] + m[task]) / 2, atol=1e-5)
        assert not np.allclose(a[task], m[task], atol=1e-6)  # the mirror is another image to this model


def test_tta_on_the_command_line_keeps_the_models_views_unless_named_and_refuses_unknown_ones(trained_run):
    from faceattr.errors import FaceAttrError
    from faceattr.inference.load import load_predictor
    from faceattr.inference.tta import parse_views

    assert parse_views(None) is None  # not given: each model keeps its own tta.transforms
    assert parse_views("none") == parse_views("") == []  # the image alone, whatever the config names
    assert parse_views(" hflip, shift ") == ["hflip", "shift"]
    with pytest.raises(FaceAttrError, match="'flipp'; valid: hflip, shift, scale, brightness"):
        parse_views("hflip,flipp")
    with pytest.raises(FaceAttrError, match="'mirror'"):  # the library's callers are checked too, before any batch
        load_predictor(trained_run.best_checkpoint, tta=["mirror"])
    assert load_predictor(trained_run.best_checkpoint, tta=[]).tta.transforms == []


def test_per_task_models_train_and_combine_into_18_classes(competition_manifest, tmp_path):
    per_task = "per_task={mask: {optim.lr: 0.005}, gender: {model.dropout: 0.1}, age_bin: {train.epochs: 1}}"
    overrides = [*tiny_overrides(competition_manifest, tmp_path), per_task]
    result = CliRunner().invoke(app, ["train", *overrides])
    assert result.exit_code == 0, result.output
    ckpts = {t: tmp_path / f"tiny-{t}" / "checkpoints" / "best.ckpt" for t in ("mask", "gender", "age_bin")}
    assert all(p.is_file() for p in ckpts.values())
    cfg = torch.load(ckpts["mask"], weights_only=False)["hyper_parameters"]["config"]
    assert cfg["model"]["heads"] == ["mask"] and cfg["optim"]["lr"] == 0.005
    out = tmp_path / "combined"
    args = ["evaluate", str(ckpts["mask"]), "--also", str(ckpts["gender"]), "--also", str(ckpts["age_bin"])]
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--tta", "hflip"])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert set(metrics) == {"mask", "gender", "age_bin", "label18"}
    preds = pd.read_csv(out / "predictions.csv")
    assert (preds.pred_label18 == preds.pred_mask * 6 + preds.pred_gender * 3 + preds.pred_age_bin).all()


def test_cv_reports_folds_oof_and_trains_full_data(competition_manifest, tmp_path):
    overrides = tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 2, "train.save_above": 0.01})
    result = CliRunner().invoke(app, ["cv", *overrides, "--folds", "0,1", "--full"])
    assert result.exit_code == 0, result.output
    assert "mean" in result.output and "std" in result.output
    out = tmp_path / "tiny-cv"
    folds = pd.read_csv(out / "folds.csv")
    assert folds["fold"].tolist() == [0, 1] and folds["best_epoch"].between(0, 1).all()
    summary = json.loads((out / "cv_summary.json").read_text())
    assert set(summary["mean"]) >= {"f1_label18", "f1_mask"} and summary["median_best_epoch"] in (0, 1)
    oof = pd.read_csv(out / "oof_predictions.csv")
    assert oof["path"].is_unique and set(oof["fold"]) == {0, 1} and "p_mask_0" in oof
    full = torch.load(summary["full_data_checkpoint"], weights_only=False)
    assert full["hyper_parameters"]["config"]["train"]["full_data"] is True
    assert full["epoch"] == summary["median_best_epoch"]
    kept = list((tmp_path / "tiny-fold0" / "checkpoints").glob("epoch*-val_f1_18*.ckpt"))  # save_above
    assert kept and all("optimizer_states" not in torch.load(k, weights_only=True) for k in kept)  # to predict with


def test_cv_refuses_to_write_over_a_finished_one_and_resume_keeps_the_folds_that_finished(
    competition_manifest, tmp_path
):
    cv = ["cv", *tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 1}), "--folds", "0,1"]
    assert CliRunner().invoke(app, cv).exit_code == 0
    fold0 = tmp_path / "tiny-fold0" / "checkpoints" / "last.ckpt"
    kept, table = fold0.read_bytes(), (tmp_path / "tiny-cv" / "folds.csv").read_bytes()
    shutil.rmtree(tmp_path / "tiny-fold1")  # stopped before the second fold began
    result = CliRunner().invoke(app, cv)
    assert result.exit_code == 2 and "--resume" in result.output
    assert (tmp_path / "tiny-cv" / "folds.csv").read_bytes() == table
    result = CliRunner().invoke(app, [*cv, "--resume"])
    assert result.exit_code == 0, result.output
    assert fold0.read_bytes() == kept and (tmp_path / "tiny-fold1" / "checkpoints" / "best.ckpt").is_file()
    assert pd.read_csv(tmp_path / "tiny-cv" / "folds.csv")["fold"].tolist() == [0, 1]


class _Probe(L.Callback):
    """Looks inside a real training run at its start: the module, the data module and the train sampler."""

    def on_train_start(self, trainer, module):
        self.module, self.datamodule = module, trainer.datamodule
        self.sampler = trainer.train_dataloader.sampler


def _train_with(competition_manifest, tmp_path, name: str, extra: dict):
    probe = _Probe()
    cfg = load_config(
        None, tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 1, "run.name": name, **extra})
    )
    result = train(cfg, callbacks=[probe])
    assert math.isfinite(result.metrics["train/loss"])
    return probe


def test_class_weights_and_the_weighted_sampler_take_effect(competition_manifest, tmp_path):
    probe = _train_with(
        competition_manifest,
        tmp_path,
        "weighted",
        {"loss.name": "focal", "loss.class_weights": True, "sampler.name": "weighted", "sampler.by": "age_bin"},
    )
    weights = probe.module.class_weights
    assert set(weights) >= {"mask", "gender", "age_bin"}
    assert not torch.allclose(weights["mask"], torch.ones_like(weights["mask"]))  # 5 worn : 1 : 1 per person
    frame = probe.datamodule.train_frame.reset_index(drop=True)
    assert probe.sampler.weights is not None
    per_bin = pd.Series(probe.sampler.weights).groupby(frame["age_bin"]).sum()
    assert np.allclose(per_bin, per_bin.iloc[0])  # every age bin drawn as often


def test_keep_masked_draws_k_masked_photos_per_person_each_epoch(competition_manifest, tmp_path):
    probe = _train_with(
        competition_manifest,
        tmp_path,
        "keep2",
        {"loss.name": "ce+soft_f1", "loss.label_smoothing": 0.1, "data.keep_masked": 2},
    )
    frame = probe.datamodule.train_frame.reset_index(drop=True)
    probe.sampler.set_epoch(3)
    drawn = frame.iloc[[i for i, _ in probe.sampler]]
    masked = drawn[drawn["mask"] == 0].groupby("person_id").size()
    assert masked.max() == 2 and len(drawn[drawn["mask"] != 0]) == len(frame[frame["mask"] != 0])


def test_fixed_keep_masked_and_boundary_dropping_shape_the_training_set(competition_manifest, tmp_path):
    probe = _train_with(
        competition_manifest,
        tmp_path,
        "fixed",
        {
            "loss.name": "soft_f1",
            "data.keep_masked": 1,
            "data.keep_masked_random": False,
            "data.drop_near_boundary": 2,
            "data.old_threshold": 58,
        },
    )
    frame = probe.datamodule.train_frame
    assert frame[frame["mask"] == 0].groupby("person_id").size().max() == 1
    near = frame["age"].between(28, 31.99) | frame["age"].between(56, 59.99)
    assert not near.any() and len(frame) > 0


def test_label_corrections_are_applied_and_logged(tmp_path, competition_root):
    from faceattr.data.sources import read_competition

    person = read_competition(competition_root)["person_id"].iloc[0]
    fixes = tmp_path / "fix.csv"
    fixes.write_text(f"path,field,value\n{person}/normal.jpg,mask,wear\n{person},age,77\n")
    out = tmp_path / "m.csv"
    args = ["prepare", "competition", str(competition_root), "--out", str(out), "--corrections", str(fixes)]
    result = CliRunner().invoke(app, [*args, "--folds", "3"])
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    rows = df[df.person_id == person]
    assert (rows.age == 77).all() and (rows.age_bin == 2).all()
    assert rows[rows.path.str.endswith("normal.jpg")]["mask"].item() == 0
    log = pd.read_csv(tmp_path / "m.csv.corrections.csv")
    assert log["field"].tolist() == ["mask", "age"] and log["rows"].tolist() == [1, 7]
    fixes.write_text("path,field,value\nnobody.jpg,mask,0\n")
    bad = CliRunner().invoke(app, [*args, "--folds", "3", "--overwrite"])
    assert bad.exit_code == 2 and "matches no image path" in bad.output


def test_seeds_of_one_recipe_vote_through_predict_also(trained_run, competition_manifest, tmp_path):
    """The masks recipe's vote (`predict A --also B`): every face's probabilities are the mean of each model's own,
    each moved to its own class shares first, and the labels follow the mean."""
    second = train(
        load_config(
            None, tiny_overrides(competition_manifest, tmp_path, seed=7, **{"priors.target.mask": [0.2, 0.5, 0.3]})
        )
    ).best_checkpoint
    photos = tmp_path / "photos"
    photos.mkdir()
    for k, path in enumerate(pd.read_csv(competition_manifest)["path"][:4]):
        shutil.copy(path, photos / f"{k}.jpg")

    def predicted(*models) -> pd.DataFrame:
        out = tmp_path / f"predictions-{len(list(tmp_path.glob('predictions-*.csv')))}.csv"
        args = ["predict", str(models[0]), *[a for m in models[1:] for a in ("--also", str(m))], str(photos)]
        result = CliRunner().invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 0, result.output
        return pd.read_csv(out).sort_values("path").reset_index(drop=True)

    a, b, both = (
        predicted(trained_run.best_checkpoint),
        predicted(second),
        predicted(trained_run.best_checkpoint, second),
    )
    columns = ["p_mask_0", "p_mask_1", "p_mask_2"]
    assert not np.allclose(a[columns], b[columns], atol=1e-3)  # two models that disagree
    assert np.allclose(both[columns], (a[columns].to_numpy() + b[columns].to_numpy()) / 2, atol=1e-4)
    assert (both["mask"] == both[columns].to_numpy().argmax(1)).all()
