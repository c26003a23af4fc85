"""Labels for faces that have none, from a trained model (`faceattr pseudo-label`): self-training.

A mask model trained on drawn masks has never seen a user's real photos. Labelled by that model and trained on
again beside the drawn set (each source drawn equally often, `sampler.by=source`), those photos teach the next
model what real faces, masks and cameras look like, though no person labelled them. Only the share of each
predicted class the model is surest of is kept, class by class (`keep`), so the rare class (a mask worn under the
nose) keeps its faces instead of being crowded out by the confident common ones (class-balanced self-training, Zou
et al., ECCV 2018). Measured on masks-crowd in docs/masks.md.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from faceattr.data.images import SkipReport
from faceattr.data.manifest import derive_labels
from faceattr.errors import FaceAttrError
from faceattr.inference.load import load_predictor
from faceattr.labels import CLASS_NAMES

SOURCE = "pseudo"  # the manifest's `source` for these rows, so a sampler can weigh them as one source


def pseudo_labels(
    model: Path | list[Path],
    faces: pd.DataFrame,
    task: str = "mask",
    keep: float = 0.5,
    batch_size: int = 64,
    skips: SkipReport | None = None,
    tta: list[str] | None = None,
    priors: dict[str, list[float]] | None = None,
) -> pd.DataFrame:
    """The rows of `faces` (a manifest of face crops) that `model` (several: their vote) is surest of, `keep` of
    each class it predicts, with its label in `task` (the model's own decision rule: priors and TTA as its config
    says, or the test-time views `tta` and the class shares `priors`, {} for the classes as trained), `source`
    "pseudo" and its confidence in `pseudo_confidence`. Other labels stay as given; unreadable images go to
    `skips`."""
    if not 0 < keep <= 1:
        raise FaceAttrError(f"keep={keep}: the share of each class kept must be in (0, 1], e.g. 0.5")
    predictor = load_predictor(model, tta=tta, priors=priors)
    if task not in CLASS_NAMES or task not in predictor.tasks:
        raise FaceAttrError(
            f"{model}: has no '{task}' class head to label with; its class heads: "
            f"{', '.join(t for t in predictor.tasks if t in CLASS_NAMES)}"
        )
    preds = predictor.predict_paths(faces["path"].astype(str).tolist(), batch_size=batch_size, skips=skips)
    if len(preds.indices) == 0:
        raise FaceAttrError(f"none of the {len(faces)} images could be read; see the skipped-images report")
    rows = faces.iloc[preds.indices].copy()
    rows[task] = preds.labels()[task]
    rows["source"] = SOURCE
    rows["pseudo_confidence"] = preds.probs[task].max(1)
    kept = [
        part.nlargest(round(keep * len(part)), "pseudo_confidence", keep="first")
        for _, part in rows.groupby(task, sort=True)
    ]
    taught = pd.concat(kept).round({"pseudo_confidence": 4})
    return derive_labels(taught, old_threshold=None)  # label18 from the new label
