"""Pseudo-labels (`faceattr pseudo-label`): a trained model labels faces that have none, keeping the share of each
class it predicts that it is surest of, as a manifest the next training joins to its own data."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.data.images import SkipReport
from faceattr.data.manifest import read_manifest, write_manifest
from faceattr.errors import FaceAttrError
from faceattr.inference.load import load_predictor
from faceattr.inference.pseudo_labels import SOURCE, pseudo_labels
from faceattr.labels import known_code18


@pytest.fixture()
def unlabelled(competition_manifest, tmp_path):
    """The tiny set's faces with their mask labels taken away, one unreadable image among them."""
    faces = read_manifest(competition_manifest).head(40).assign(mask=-1)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    faces.loc[faces.index[0], "path"] = str(broken)
    return write_manifest(faces, tmp_path / "faces.csv")


def test_each_predicted_class_keeps_its_most_confident_share_with_the_models_label(trained_run, unlabelled, tmp_path):
    checkpoint = trained_run.best_checkpoint
    faces = read_manifest(unlabelled)
    skips = SkipReport(tmp_path / "skipped.csv")
    taught = pseudo_labels(checkpoint, faces, "mask", keep=0.5, skips=skips)

    preds = load_predictor(checkpoint).predict_paths(faces["path"].tolist())
    label, confidence = preds.labels()["mask"], preds.probs["mask"].max(1)
    assert len(skips) == 1 and len(preds.indices) == len(faces) - 1
    for c in range(3):
        predicted = np.flatnonzero(label == c)
        kept = taught[taught["mask"] == c]
        assert len(kept) == round(0.5 * len(predicted))
        if len(kept):  # the kept faces are the class's surest: none left out is surer than the least sure kept
            left_out = [i for i in predicted if preds.paths[i] not in set(kept["path"])]
            assert all(confidence[i] <= kept["pseudo_confidence"].min() + 1e-4 for i in left_out)
            assert set(kept["path"]) <= {preds.paths[i] for i in predicted}
    assert (taught["source"] == SOURCE).all()
    assert taught["gender"].tolist() == faces.set_index("path").loc[taught["path"], "gender"].tolist()  # kept
    expected18 = known_code18(taught["mask"].to_numpy(), taught["gender"].to_numpy(), taught["age_bin"].to_numpy())
    assert taught["label18"].tolist() == expected18.tolist()


def test_keep_one_labels_every_readable_face(trained_run, unlabelled):
    taught = pseudo_labels(trained_run.best_checkpoint, read_manifest(unlabelled), keep=1.0)
    assert len(taught) == len(read_manifest(unlabelled)) - 1 and (taught["mask"] >= 0).all()


def test_the_labelling_views_are_the_ones_asked_for(trained_run, unlabelled):
    faces = read_manifest(unlabelled)
    taught = pseudo_labels(trained_run.best_checkpoint, faces, keep=1.0, tta=["hflip"])
    preds = load_predictor(trained_run.best_checkpoint, tta=["hflip"]).predict_paths(faces["path"].tolist())
    confidence = dict(zip(preds.paths, preds.probs["mask"].max(1).round(4), strict=True))
    assert taught["pseudo_confidence"].tolist() == [confidence[path] for path in taught["path"]]


def test_the_labelling_class_shares_are_the_ones_asked_for(trained_run, unlabelled):
    faces, shares = read_manifest(unlabelled), {"mask": [0.02, 0.96, 0.02]}
    taught = pseudo_labels(trained_run.best_checkpoint, faces, keep=1.0, priors=shares)
    preds = load_predictor(trained_run.best_checkpoint, priors=shares).predict_paths(faces["path"].tolist())
    label = dict(zip(preds.paths, preds.labels()["mask"], strict=True))
    assert taught["mask"].tolist() == [label[path] for path in taught["path"]]
    as_configured = pseudo_labels(trained_run.best_checkpoint, faces, keep=1.0).set_index("path")["mask"]
    assert (taught.set_index("path")["mask"] != as_configured.loc[taught["path"]]).any()  # the shares moved labels


def test_the_command_labels_with_the_views_and_class_shares_asked_for(trained_run, unlabelled, tmp_path):
    shares, out = {"mask": [0.02, 0.96, 0.02]}, tmp_path / "taught.csv"
    args = ["pseudo-label", str(trained_run.best_checkpoint), str(unlabelled), "--out", str(out), "--keep", "1"]
    done = CliRunner().invoke(app, [*args, "--tta", "hflip", "--priors", "mask=0.02,0.96,0.02"])
    assert done.exit_code == 0, done.output
    faces = read_manifest(unlabelled)
    expected = pseudo_labels(trained_run.best_checkpoint, faces, keep=1.0, tta=["hflip"], priors=shares)
    assert read_manifest(out)["mask"].tolist() == expected["mask"].tolist()


@pytest.mark.parametrize("keep", [0.0, 1.5])
def test_a_share_outside_zero_to_one_is_refused(trained_run, unlabelled, keep):
    with pytest.raises(FaceAttrError, match="must be in"):
        pseudo_labels(trained_run.best_checkpoint, read_manifest(unlabelled), keep=keep)


def test_the_command_writes_a_manifest_training_reads_and_keeps_an_existing_one(trained_run, unlabelled, tmp_path):
    out = tmp_path / "taught.csv"
    args = ["pseudo-label", str(trained_run.best_checkpoint), str(unlabelled), "--out", str(out), "--keep", "0.5"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "faces labelled" in done.output and "1 unreadable image(s) skipped" in done.output
    written = read_manifest(out)
    assert (written["source"] == SOURCE).all() and (written["mask"] >= 0).all()
    before = out.read_bytes()
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "--overwrite" in again.output and out.read_bytes() == before


def test_the_command_refuses_a_head_that_is_not_a_class_with_the_valid_ones(trained_run, unlabelled, tmp_path):
    args = ["pseudo-label", str(trained_run.best_checkpoint), str(unlabelled), "--task", "age"]
    done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "t.csv")])
    assert done.exit_code != 0 and "mask, gender, age_bin" in done.output
    assert not (tmp_path / "t.csv").exists()


def test_the_command_warns_that_labels_a_person_gave_are_replaced_in_its_output(
    trained_run, competition_manifest, tmp_path
):
    out = tmp_path / "taught.csv"
    done = CliRunner().invoke(
        app, ["pseudo-label", str(trained_run.best_checkpoint), str(competition_manifest), "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())
    assert f"{len(read_manifest(competition_manifest))} of the faces already had a mask label" in said
    assert "the model's answer replaces it" in said
