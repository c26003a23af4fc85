"""Knowledge distillation from a peer model (`distill.peer`): the peer's probabilities on each training face.

The shipped gender vote (`ensemble.peers`) averages dlib's gender network into every prediction; distilling it
instead puts that knowledge into the model's own gender head, so the model alone carries the gain and predicts
without a second network. The peer sees each training face once, un-augmented, as it would in a vote; the
blended target then follows the face through every augmentation (a drawn mask included), which is where a model
can learn more than the peer. Validation faces never reach the peer: they stay scored against their labels only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.atomic import write_csv
from faceattr.data.images import SkipReport, load_rgb
from faceattr.errors import ImageLoadError
from faceattr.models.dlib_wheel import WHEEL_NETWORKS

BATCH = 256


def peer_targets(peer: str, frame: pd.DataFrame, skips: SkipReport | None = None) -> dict[str, np.ndarray]:
    """{head: (len(frame), classes) float32} from `peer` on each row's image; an unreadable image gets a row of
    NaN (no distillation for it) and is reported to `skips`."""
    network = WHEEL_NETWORKS[peer]
    session, transform = network.session(), network.transform()
    out: np.ndarray | None = None
    paths = frame["path"].astype(str).tolist()
    for start in range(0, len(paths), BATCH):
        chips, rows = [], []
        for i, path in enumerate(paths[start : start + BATCH], start):
            try:
                chips.append(transform(image=load_rgb(path))["image"])
                rows.append(i)
            except ImageLoadError as e:
                if skips is not None:
                    skips.add(e)
        if not chips:
            continue
        probabilities = network.probabilities(session, np.stack(chips))
        if out is None:
            out = np.full((len(paths), probabilities.shape[1]), np.nan, dtype=np.float32)
        out[rows] = probabilities
    if out is None:
        out = np.full((len(paths), 1), np.nan, dtype=np.float32)
    return {network.task: out}


def save_peer_targets(targets: dict[str, np.ndarray], frame: pd.DataFrame, path: Path) -> Path:
    """The targets beside the run (`peer_targets.csv`: path, head_class columns), so what was taught can be read."""
    table = pd.DataFrame({"path": frame["path"].astype(str).to_numpy()})
    for head, probabilities in targets.items():
        for k in range(probabilities.shape[1]):
            table[f"{head}_{k}"] = probabilities[:, k]
    return write_csv(table, path)
