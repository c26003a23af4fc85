"""`augment.synthetic_mask_p`: masks drawn on unmasked training faces on the fly, relabelled worn or worn
incorrectly. The training step hands it to the data module (which knows nothing of drawing)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from faceattr.data.landmarks import parse_points
from faceattr.errors import ManifestError
from faceattr.labels import known_code18
from faceattr.synth.masks import INCORRECT_WEARS, render_mask


class SyntheticMasker:
    """`augment.synthetic_mask_p`: draws a mask on an unmasked face and relabels it (worn, or worn incorrectly).

    Uses the landmarks and face box that `faceattr crop` records; rows without them are left as they are.
    """

    def __init__(self, frame: pd.DataFrame, p: float, incorrect: float) -> None:
        if "landmarks" not in frame or "face_box" not in frame:
            raise ManifestError(
                "augment.synthetic_mask_p needs face landmarks in the manifest: record them with `faceattr framing "
                "MANIFEST --landmarks` (face crops, e.g. UTKFace) or `faceattr crop MANIFEST` (photos), and train on "
                "the manifest it writes"
            )
        self.p, self.incorrect = p, incorrect
        self.landmarks = [parse_points(t, 5) for t in frame["landmarks"]]
        self.boxes = [parse_points(t, 2) for t in frame["face_box"]]
        self.bare = (frame["mask"] == 2).to_numpy()

    def eligible(self) -> int:
        return int(sum(b and lm is not None for b, lm in zip(self.bare, self.landmarks, strict=True)))

    def __call__(self, i: int, image: np.ndarray, targets: dict, seed: int | None, scale=(1.0, 1.0)):
        if not self.bare[i] or self.landmarks[i] is None or self.boxes[i] is None:
            return image, targets
        rng = np.random.default_rng(None if seed is None else [seed, i])
        if rng.random() >= self.p:
            return image, targets
        wrong = rng.random() < self.incorrect
        wear = INCORRECT_WEARS[rng.integers(len(INCORRECT_WEARS))] if wrong else "correct"
        try:
            factor = np.asarray(scale, dtype=np.float64)  # landmarks are in the original image's pixels
            box = (self.boxes[i] * factor).ravel()
            image = render_mask(image, self.landmarks[i] * factor, box, wear, rng=rng).image
        except ValueError:  # degenerate landmarks: keep the photo as it is
            return image, targets
        mask = 1 if wrong else 0
        targets = dict(targets, mask=torch.tensor(mask))
        if "label18" in targets:
            # a photo whose gender or age is unknown (an image-folder row, say) keeps label18 unknown
            targets["label18"] = torch.tensor(known_code18(mask, int(targets["gender"]), int(targets["age_bin"])))
        return image, targets
