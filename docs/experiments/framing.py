"""Framing: does a UTKFace model still work on photos framed differently from its training crops?

DEVELOPERS.md: a fine-tune on the UTKFace crops scored gender 90 % on held-out UTKFace but 73 % on another
dataset's differently framed faces (84 % once re-cropped the same way). This measures that effect on the held-out
UTKFace people (person-level 5-fold, split_seed 42, fold 0, the same people as benchmarks/utkface.py), shown two
ways:
  - as published: UTKFace's own 200x200 aligned crops;
  - re-framed: each face scaled to 120-280 px and pasted at a random place on a 384x512 canvas with a textured
    background, as a phone or competition photo frames a face.
Each checkpoint runs through three pipelines: the whole image resized (what a model trained on UTKFace's own crops
sees in training); MTCNN detection + the checkpoint's own crop margins (what `faceattr predict --faces` does); and
MTCNN detection + UTKFace's framing as `faceattr framing` measures it on 500 training images (what `predict` does
for a model trained on the manifest `faceattr framing` writes). The re-framed photo holds exactly the UTKFace crop,
so that framing recovers it; on a real photo it recovers the same region of the face, with real surroundings cut.
`default` marks the pipeline `faceattr predict` picks for that checkpoint. Scores: gender accuracy, age MAE,
age-bin macro F1, for everyone and for the Asian subset (the competition's people are Korean).

    python -m docs.experiments.framing --model raw=RUN_A/best.ckpt --model mtcnn=RUN_B/best.ckpt
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.metrics import f1_score

from benchmarks.common import SHARED_UTKFACE, STUDIES, nearest_face, predict, reframe, save
from faceattr.data.sources import read_utkface
from faceattr.data.split import load_or_make_folds
from faceattr.faces.detect import FaceDetector, crop_face
from faceattr.faces.framing import measure_framing
from faceattr.inference.load import load_predictor


def split(data: Path, work: Path, limit: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training folds and held-out fold 0 of the person-level 5-fold split (split_seed 42), as benchmarks/utkface.py."""
    manifest = work / "utkface.csv"
    frame = read_utkface(data)
    frame.to_csv(manifest, index=False)
    frame["fold"] = load_or_make_folds(frame, manifest, 5, 42)
    test = frame[frame["fold"] == 0].reset_index(drop=True)
    return frame[frame["fold"] != 0], (test.iloc[:limit] if limit else test)


def scores(truth: pd.DataFrame, labels: dict[str, np.ndarray], prefix: str = "") -> dict:
    out: dict = {}
    if "gender" in labels:
        out[f"{prefix}gender_acc"] = round(float((labels["gender"] == truth["gender"].to_numpy()).mean()), 4)
    if "age_years" in labels:
        out[f"{prefix}age_mae"] = round(float(np.abs(labels["age_years"] - truth["age"].to_numpy()).mean()), 2)
    if "age_bin" in labels and not prefix:
        out["age_bin_f1"] = round(float(f1_score(truth["age_bin"], labels["age_bin"], average="macro")), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="NAME=CHECKPOINT (repeat)")
    parser.add_argument("--data", type=Path, default=SHARED_UTKFACE)
    parser.add_argument("--limit", type=int, default=0, help="held-out faces used (0 = all of fold 0)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-framing"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"UTKFace not found at {args.data}; pass --data")
    args.work.mkdir(parents=True, exist_ok=True)
    train, test = split(args.data, args.work, args.limit)
    detector = FaceDetector()
    framing = measure_framing(train, limit=500, seed=args.seed, detector=detector)
    print(f"UTKFace framing (faceattr framing, 500 training images): margins {framing.margins}")
    asian = (test["race"] == "Asian").to_numpy()
    rng = np.random.default_rng(args.seed)
    published, reframed, centres = [], [], []
    for path in test["path"]:
        face = Image.open(path).convert("RGB")
        published.append(np.asarray(face))
        canvas, centre = reframe(face, rng)
        reframed.append(canvas)
        centres.append(centre)
    inputs = {
        "as published (200x200 crops)": (published, [(f.shape[1] / 2, f.shape[0] / 2) for f in published]),
        "re-framed photos (384x512)": (reframed, centres),
    }
    detections = {}
    for name, (images, centre_list) in inputs.items():
        start = time.time()
        found = detector.detect(images)
        detections[name] = [nearest_face(f, c, tolerance=60) for f, c in zip(found, centre_list, strict=True)]
        rate = np.mean([d is not None for d in detections[name]])
        print(f"{name}: face found in {rate:.1%} ({time.time() - start:.0f} s)")

    rows = []
    for spec in args.model:
        model_name, checkpoint = spec.split("=", 1)
        predictor = load_predictor(checkpoint)
        default = "detect + crop" if predictor.cfg.faces.trained_on_crops else "whole image"
        for input_name, (images, _) in inputs.items():
            found = detections[input_name]
            framed = framing.faces_config(predictor.cfg.faces)
            pipelines = {
                "whole image": images,
                "detect + crop": [
                    crop_face(im, f, predictor.cfg.faces)[0] for im, f in zip(images, found, strict=True)
                ],
                "detect + UTKFace framing": [crop_face(im, f, framed)[0] for im, f in zip(images, found, strict=True)],
            }
            for pipeline, crops in pipelines.items():
                labels = predict(predictor, crops)
                asian_labels = {k: v[asian] for k, v in labels.items()}
                rows.append(
                    {
                        "model": model_name,
                        "input": input_name,
                        "pipeline": pipeline + (" (default)" if pipeline == default else ""),
                        **scores(test, labels),
                        **scores(test[asian], asian_labels, prefix="asian_"),
                        "faces": len(test),
                        "asian": int(asian.sum()),
                    }
                )
                print(rows[-1])
    save(
        "framing",
        rows,
        [
            "model",
            "input",
            "pipeline",
            "gender_acc",
            "age_mae",
            "age_bin_f1",
            "asian_gender_acc",
            "asian_age_mae",
            "faces",
            "asian",
        ],
        {
            "models": args.model,
            "held_out_rule": "person-level 5-fold, split_seed 42, fold 0",
            "reframe": "face side 120-280 px at a random place on a 384x512 textured canvas",
            "seed": args.seed,
            "utkface_framing": framing.margins,
        },
        folder=STUDIES,
    )


if __name__ == "__main__":
    main()
