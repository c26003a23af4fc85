"""Issue 36's lever "distillation on unlabelled faces": the preset's teacher (dlib's gender network, `distill.peer`)
also teaches on faces that carry no label, of another photo style and population than UTKFace's (masks-real's
bare web faces, many East Asian), so the model sees what the peer knows about them.

The training code needs nothing new: a row whose gender and age are unknown (-1) adds no label loss, and the
peer's probabilities are its only target. This script writes the union's framed manifest with those faces joined
(gender, age, race unknown; the union's crop settings, whose margins are the crops' within 0.005 of the box) and
its folds, the union's own with every added face in fold 2, so folds 0 (test) and 1 (dev) are UTKFace's as before
and the added faces always train. Then the screen, beside the preset at the same size:

    faceattr prepare folder ../shared/data/masks-real --out W/masks_real.csv
    faceattr crop W/masks_real.csv -c configs/mask_real.yaml --out W/masks_real.crops.csv
    python -m docs.experiments.unlabelled_faces --union W/utkface-union.framed.csv --crops W/masks_real.crops.csv \
        --out W/utkface-plus.framed.csv
    python -m docs.experiments.recipe --work W --manifest W/utkface-plus.framed.csv --fold 1 --max-train 4400 \
        --epochs 3 --image-size 112 --limit 1500 --only preset --seed 42 --name unlabelled_plus_s42

(`--max-train 4400`: about 440 of them are the added faces, so the labelled ones stay near the preset's 4,000.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from faceattr.atomic import write_csv
from faceattr.data.manifest import read_manifest, write_manifest
from faceattr.data.split import folds_path

ALWAYS_TRAINS = 2  # the fold the added faces join: neither the test fold (0) nor the dev fold (1)


def with_unlabelled(union: Path, crops: Path, out: Path, folder: str = "without_mask") -> pd.DataFrame:
    """`union` with the faces of `crops` found in `folder` joined, labels unknown; writes `out` and its folds."""
    labelled = read_manifest(union)
    faces = read_manifest(crops)
    faces = faces[(faces["class_folder"] == folder) & faces["face_found"]]
    added = pd.DataFrame(
        {
            "path": faces["path"].to_numpy(),
            "person_id": ["unlabelled/" + p for p in faces["person_id"]],
            "mask": 2,
            "gender": -1,
            "age": float("nan"),
            "age_bin": -1,
            "race": None,
            "source": "unlabelled",
            "label18": -1,
            "source_root": crops.stem,
            "face_box": faces["face_box"].to_numpy(),
            "landmarks": faces["landmarks"].to_numpy(),
            "crop_settings": labelled["crop_settings"].iloc[0],  # one setting per manifest: training adopts it
        }
    )
    joined = pd.concat([labelled, added], ignore_index=True)
    write_manifest(joined, out)
    folds = pd.read_csv(folds_path(union, 5, 42), dtype={"person_id": str})
    folds = pd.concat([folds, pd.DataFrame({"person_id": added["person_id"], "fold": ALWAYS_TRAINS})])
    write_csv(folds, folds_path(out, 5, 42))
    print(f"{len(labelled)} labelled faces + {len(added)} unlabelled ({folder}) -> {out}")
    return joined


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--union", type=Path, required=True, help="the union's framed manifest (folds beside it)")
    parser.add_argument("--crops", type=Path, required=True, help="`faceattr crop` of masks-real")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with_unlabelled(args.union, args.crops, args.out)


if __name__ == "__main__":
    main()
