"""Issue 38 on the CPU: does the batched on-device augmentation (`augment.on_device`) train as well as
Albumentations in the workers? The screen of docs.experiments.recipe (the CPU preset at its size, scored on the dev
fold) with the augmentation moved to the device, for each seed; the per-image screen of the same seed is the
'original labels' row of label_suspects (the same settings and faces).

    python -m docs.experiments.on_device_augment --work W --seed 42
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.common import STUDIES, manifest_with_landmarks, save
from benchmarks.robustness import COLUMNS
from docs.experiments.recipe import screen, screen_arguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-on-device"))
    parser.add_argument("--manifest", type=Path, default=None, help="framed union manifest with landmarks")
    parser.add_argument("--fold", type=int, default=1, help="the dev fold, scored")
    parser.add_argument("--seed", type=int, action="append", help="screen seeds (default 42)")
    screen_arguments(parser)
    parser.add_argument("--name", default="on_device_augment")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    manifest = args.manifest or manifest_with_landmarks(args.work)
    rows = []
    for seed in args.seed or [42]:
        overrides = [f"seed={seed}", "augment.on_device=true"]
        rows += screen(manifest, f"on-device augmentation seed {seed}", overrides, args)
        save(args.name, rows, [*COLUMNS, "train_min", "best_epoch"], vars(args), folder=STUDIES)


if __name__ == "__main__":
    main()
