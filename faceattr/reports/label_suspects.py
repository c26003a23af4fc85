"""Labels that models confidently contradict: candidates for a fix, listed for a person to review.

A model scored on faces it never trained on (`faceattr cv`'s out-of-fold predictions) is a second reader of every
label. Where it answers another class with high confidence, and another project's network trained on other photos
(`peer`) agrees, the label is more likely wrong than both readers: on UTKFace about half of the preset's most
confident gender mistakes are label errors by eye (docs/age-gender.md). Gender is judged per person (a person's
images share it), mask state per image. The result is written as a corrections file (`faceattr prepare
--corrections`) to read and edit, never applied by itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.errors import DatasetError
from faceattr.labels import CLASS_NAMES
from faceattr.reports.gallery import gallery

PER_PERSON = {"gender": True, "mask": False}  # the tasks judged, and whether a person's images share the label
COLUMNS = ["path", "field", "value", "label", "confidence", "peer_confidence", "images", "image"]


def probability_columns(task: str) -> list[str]:
    return [f"p_{task}_{c}" for c in range(len(CLASS_NAMES[task]))]


def check_predictions(predictions: pd.DataFrame, task: str, source: Path | str) -> None:
    """Refuse a table that lacks the labels and probabilities the rule reads, naming what to give instead."""
    if task not in PER_PERSON:
        raise DatasetError(f"no label check for '{task}'; choose one of {', '.join(PER_PERSON)}")
    needed = ["path", "person_id", task, *probability_columns(task)]
    missing = [c for c in needed if c not in predictions.columns]
    if missing:
        raise DatasetError(
            f"{source}: missing column(s) {', '.join(missing)}; give the out-of-fold predictions of "
            "`faceattr cv` (RUN-cv/oof_predictions.csv) or an `evaluate` run's predictions.csv"
        )
    text = [c for c in needed[2:] if not pd.api.types.is_numeric_dtype(predictions[c])]
    if text:
        raise DatasetError(f"{source}: column(s) {', '.join(text)} hold text where label codes or probabilities belong")


def find_suspects(
    predictions: pd.DataFrame,
    task: str,
    min_confidence: float = 0.95,
    peer: np.ndarray | None = None,
    min_peer_confidence: float = 0.9,
) -> pd.DataFrame:
    """Corrections rows (COLUMNS), most confident first, for labels the predictions contradict with at least
    `min_confidence` (and `peer`, a probability row per prediction row, with at least `min_peer_confidence`).

    Per person for gender: the person's images' probabilities are averaged, and `path` is the person_id, which
    `prepare --corrections` applies to all of them. Rows without a label (-1) and unreadable peer rows (NaN) are
    never suspects."""
    check_predictions(predictions, task, "predictions")
    probs = predictions[probability_columns(task)].to_numpy(dtype=np.float64)
    peer_probs = np.full_like(probs, np.nan) if peer is None else np.asarray(peer, dtype=np.float64)
    if peer_probs.shape != probs.shape:
        raise DatasetError(f"peer probabilities are {peer_probs.shape}, the predictions {probs.shape}")
    frame = pd.DataFrame(
        {
            "key": predictions["person_id" if PER_PERSON[task] else "path"].astype(str).to_numpy(),
            "image": predictions["path"].astype(str).to_numpy(),
            "label": predictions[task].to_numpy(dtype=np.int64),
        }
    )
    k = probs.shape[1]
    for c in range(k):
        frame[f"p{c}"], frame[f"q{c}"] = probs[:, c], peer_probs[:, c]
    frame = frame[frame["label"] >= 0]
    grouped = frame.groupby("key", sort=False)
    label = grouped["label"].agg(lambda s: s.mode().iloc[0])
    p = grouped[[f"p{c}" for c in range(k)]].mean().to_numpy()
    q = grouped[[f"q{c}" for c in range(k)]].mean().to_numpy()  # NaN where the peer could not read an image
    answer = p.argmax(1)
    rows = np.arange(len(answer))
    confidence, peer_confidence = p[rows, answer], q[rows, answer]
    suspect = (answer != label.to_numpy()) & (confidence >= min_confidence)
    if peer is not None:
        suspect &= peer_confidence >= min_peer_confidence  # NaN compares False: an unread face is no suspect
    names = CLASS_NAMES[task]
    table = pd.DataFrame(
        {
            "path": label.index.to_numpy(),
            "field": task,
            "value": [names[a] for a in answer],
            "label": [names[v] for v in label.to_numpy()],
            "confidence": confidence.round(4),
            "peer_confidence": peer_confidence.round(4),
            "images": grouped.size().to_numpy(),
            "image": grouped["image"].first().to_numpy(),  # one of the person's images, to look at
        }
    )[suspect]
    return table.sort_values("confidence", ascending=False, kind="stable").reset_index(drop=True)[COLUMNS]


def suspects_sheet(found: pd.DataFrame, task: str, path: Path, per_class: int = 8) -> Path:
    """The faces of `found` (find_suspects' rows, most confident first), one row per label they carry."""
    names = list(CLASS_NAMES[task])
    mistakes: dict[int, list[tuple[int, int, float]]] = {cls: [] for cls in range(len(names))}
    for i, (label, value, p) in enumerate(zip(found["label"], found["value"], found["confidence"], strict=True)):
        if len(mistakes[names.index(label)]) < per_class:
            mistakes[names.index(label)].append((i, names.index(value), float(p)))
    return gallery(found["image"].tolist(), mistakes, names, f"{task} labels contradicted", path, per_class)
