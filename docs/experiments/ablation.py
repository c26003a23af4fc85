"""Ablation of the competition toolbox: 18-class macro F1 for the baseline and one switch at a time.

Data: a competition-layout dataset made by `faceattr synth-masks` from ../shared/data/utkface (research-only;
built in --work, outside the repository). People are split once: 20 % (person-level stratified fold 0 of 5,
split_seed 42) is the test set every row is scored on; the rest trains, choosing its checkpoint on its own
person-level fold. Every model gets the same epochs, image size, seed and learning rate; the per-task row trains
three models and the 3-fold ensemble three, so their compute is about 3x the baseline's (listed as train_min).

    python -m docs.experiments.ablation --persons 350 --epochs 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import SHARED_UTKFACE, STUDIES, save
from faceattr.config import load_config
from faceattr.data.manifest import read_manifest, write_manifest
from faceattr.data.sources import read_competition, read_utkface
from faceattr.data.split import make_folds
from faceattr.reports.evaluate import evaluate
from faceattr.synth.dataset import synthesize_dataset
from faceattr.training import train
from faceattr.training.per_task import train_per_task

TASKS = ("label18", "mask", "gender", "age_bin")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_UTKFACE)
    parser.add_argument("--dataset", type=Path, default=None, help="an existing synth-masks output to reuse")
    parser.add_argument("--persons", type=int, default=350)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=96)
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="faceattr-ablation-"))
    dataset = args.dataset
    if dataset is None:
        if not args.data.is_dir():
            raise SystemExit(f"UTKFace not found at {args.data}; pass --data or --dataset")
        dataset = work / "synth"
        synthesize_dataset(read_utkface(args.data), dataset, args.persons, seed=0, overwrite=True)
    frame = read_competition(dataset)
    persons = frame.drop_duplicates("person_id")
    if len(persons) > args.persons:  # a reused dataset may hold more people than asked for
        keep = set(persons["person_id"].sample(n=args.persons, random_state=0))
        frame = frame[frame["person_id"].isin(keep)].reset_index(drop=True)
    fold_of = make_folds(frame, 5, 42).set_index("person_id")["fold"]
    test_fold = (frame["person_id"].astype(str).map(fold_of) == 0).to_numpy()
    test_manifest = write_manifest(frame[test_fold].reset_index(drop=True), work / "test.csv")
    train_manifest = write_manifest(frame[~test_fold].reset_index(drop=True), work / "train.csv")
    print(f"{frame['person_id'].nunique()} people, {len(frame)} images; test {int(test_fold.sum())} images")

    def config(name: str, *extra: str):
        return load_config(
            None,
            [
                f"data.manifest={train_manifest}",
                f"data.image_size={args.image_size}",
                "data.num_workers=1",
                f"model.backbone={args.backbone}",
                "model.pretrained=package",
                "model.heads=[mask,gender,age_bin]",
                f"train.epochs={args.epochs}",
                "train.progress_bar=false",
                "optim.lr=2e-3",
                f"run.dir={work / 'runs'}",
                f"run.name={name}",
                *extra,
            ],
        )

    def score(checkpoints, name: str, tta=None) -> dict:
        metrics = evaluate(checkpoints, manifest=str(test_manifest), out_dir=work / "eval" / name, tta=tta).metrics
        return {f"f1_{t}": round(metrics[t]["f1"], 4) for t in TASKS}

    def timed(fn):
        start = time.time()
        out = fn()
        return out, round((time.time() - start) / 60, 1)

    rows = []
    base, minutes = timed(lambda: train(config("baseline"), overwrite=True))
    rows.append({"switch": "baseline", **score(base.best_checkpoint, "baseline"), "train_min": minutes})

    for name, extra in [
        ("weighted sampler (label18)", ("sampler.name=weighted", "sampler.by=label18")),
        ("focal loss (gamma 2)", ("loss.name=focal", "loss.focal_gamma=2.0")),
    ]:
        run, minutes = timed(lambda extra=extra, name=name: train(config(name.split()[0], *extra), overwrite=True))
        rows.append({"switch": name, **score(run.best_checkpoint, name.split()[0]), "train_min": minutes})

    per_task, minutes = timed(
        lambda: train_per_task(config("pertask", "per_task={mask: {}, gender: {}, age_bin: {}}"), overwrite=True)
    )
    checkpoints = [str(r.best_checkpoint) for r in per_task.values()]
    rows.append({"switch": "per-task models (combined)", **score(checkpoints, "pertask"), "train_min": minutes})

    rows.append({"switch": "TTA (hflip)", **score(base.best_checkpoint, "tta", tta=["hflip"]), "train_min": 0.0})

    folds = [base]
    more, minutes = timed(lambda: [train(config(f"fold{k}", f"data.fold={k}"), overwrite=True) for k in (1, 2)])
    folds += more
    fold_ckpts = [str(r.best_checkpoint) for r in folds]
    total = rows[0]["train_min"] + minutes
    rows.append({"switch": "3-fold ensemble (soft vote)", **score(fold_ckpts, "ensemble"), "train_min": total})
    save(
        "ablation",
        rows,
        ["switch", *[f"f1_{t}" for t in TASKS], "train_min"],
        {
            **vars(args),
            "dataset": "synth-masks from shared/data/utkface",
            "test_rule": "person-level fold 0 of 5 (split_seed 42), same test set for every row",
            "people": int(frame["person_id"].nunique()),
            "test_images": int(test_fold.sum()),
            "train_images": int((~test_fold).sum()),
            "seed": 42,
        },
        folder=STUDIES,
    )
    read_manifest(test_manifest)  # the test manifest stays valid for re-scoring by hand


if __name__ == "__main__":
    main()
