"""Issue 35: the drawn-only model seen through pitch views (`tta.pitch`) on masks-crowd's dev half, faces >= 32 px.

A drawn-only model calls many real worn masks "incorrect", with confidence, on faces looking down (Grad-CAM puts
its attention between the eyes and the mask's top edge): drawn masks sit on frontal UTKFace faces, crowd cameras
above the faces they see. Remapping a crop's rows y -> y ** g (`augment.pitch`'s op) with g < 1 shows such a face
as if seen from lower, its lower face taller. This study predicts each face as it is and through views of a few
exponents, alone and averaged with the image, and gives each combination the decision rule with the best macro F1
over the seeds' models together (`benchmarks.real_masks.best_class_weights`, as `--choose-priors` chooses the
recipe's): the exponent and the combination are chosen here, on dev, before the test half is read.

    python -m docs.experiments.real_masks_pitch_views --crowd W/crowd.crops.csv \
        --checkpoint W/runs/drawn_s42/checkpoints/best.ckpt --checkpoint ...  # seeds of configs/mask_drawn.yaml
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.common import STUDIES, save
from benchmarks.real_masks import best_class_weights, load_predictor, wide_faces
from faceattr.config import TTAConfig
from faceattr.data.images import load_rgb
from faceattr.data.manifest import read_manifest
from faceattr.inference.tta import pitch

EXPONENTS = (1.0, 0.8, 0.7, 1.25)  # 1.0: the image itself; < 1 tips a face up, > 1 down
COMBINATIONS = ((1.0,), (1.0, 0.8), (1.0, 0.7), (1.0, 0.8, 1.25), (0.8,), (0.7,))


def view_probabilities(checkpoint: Path, paths: list[str]) -> dict[float, np.ndarray]:
    """The model's mask probabilities as trained (no rule, no views of its own) for each exponent's view."""
    predictor = load_predictor(checkpoint, priors={}, tta=[])
    batch = np.stack([predictor.transform(image=load_rgb(p))["image"] for p in paths])
    out = {}
    for exponent in EXPONENTS:
        views = batch if exponent == 1.0 else pitch(batch, TTAConfig(pitch=exponent), None, None)
        out[exponent] = np.concatenate(
            [predictor.predict_array(views[i : i + 128])["mask"] for i in range(0, len(views), 128)]
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crowd", type=Path, required=True, help="masks-crowd's crops manifest")
    parser.add_argument("--checkpoint", type=Path, action="append", required=True, help="seeds of one recipe")
    parser.add_argument("--name", default="real_masks_crowd_drawn_pitch_views")
    args = parser.parse_args()
    crops = read_manifest(args.crowd)
    dev = wide_faces(crops[crops["split"] == "dev"])
    truth = dev["mask"].to_numpy()
    probabilities = [view_probabilities(c, dev["path"].tolist()) for c in args.checkpoint]
    rows = []
    for combination in COMBINATIONS:
        answers = [(truth, np.mean([p[e] for e in combination], axis=0)) for p in probabilities]
        f1, w_incorrect, w_bare = best_class_weights(answers)
        rows.append(
            {
                "views (exponents averaged)": " + ".join("image" if e == 1.0 else f"pitch {e}" for e in combination),
                "dev macro F1, one rule for the seeds": round(f1, 4),
                "class weights (worn 1)": f"{w_incorrect:.3f} / {w_bare:.3f}",
            }
        )
        print(rows[-1], flush=True)
    settings = {"crowd": str(args.crowd), "checkpoints": [str(c) for c in args.checkpoint], "faces": len(dev)}
    save(args.name, rows, list(rows[0]), settings, folder=STUDIES)


if __name__ == "__main__":
    main()
