"""Levers for the drawn + real recipe (`configs/mask_real.yaml`), each screened on two folds of masks-crowd's dev
half (split again by photo, `benchmarks.real_masks.split_dev`'s hash): train on the drawn set + half A, score half
B's faces >= 32 px, then the other way round; the test half is never read. Recipes (`--recipe`, repeat):

- `shipped`: the recipe as shipped: its lr per step and its weights averaged (`train.ema_decay`), since 2026-12-06;
- `per_step`: the same with the weights as trained (shipped before the average was adopted);
- `per_epoch`: the recipe before 2026-12-06, its cosine lr moved once an epoch (the third epoch at a quarter of the
  start lr): the baseline the earlier levers were read against;
- `chin_drawn` (issue 35's lever for masks under the chin, on `per_epoch`): every crop's bottom margin at 0.3 of
  the face box (was 0.036) and, added to the training set, masks drawn (`synth-masks`) on the bare faces of the
  real photos it trains on, so a mask pulled under the chin is in the crop and drawn faces show neck and collar as
  real ones do. `synth-masks` needs gender and age on each row, which boxed faces lack: this study writes a stand-in
  (male, 30) that only the mask head, the one trained here, never reads;
- `lite1` (on `per_step`): the next EfficientNet-Lite, about 1.4x the compute, for the detail of a nose above a mask;
- `balanced` (on `shipped`): each source's three classes drawn equally often (`sampler.by=source+mask`), so the
  real incorrect faces (about 1 in 7 of a half's real faces) are drawn about as often as the worn and the bare ones;
- `zoom_1_25` (on `shipped`): the framing jitter zooms in at most 1.25x (the default) instead of 1.6x, which cuts
  off the bottom fifth of a crop, where a mask pulled under the chin is all that tells "incorrect" from "not worn";
- `fine_tune` (after `shipped`): that fold's shipped model fine-tuned on the fold's real faces alone
  (`model.init_from`, 3 epochs at a tenth of the lr, no average), the last steps spent on the photos it is for;
- `focal` (on `shipped`): the focal loss (gamma 2), so the faces the model already gets right count less and the
  hard ones (a mask just under the nose) more;
- `small_faces` (on `shipped`): half the faces shrunk to 16-48 px and back (`augment.low_resolution=0.5`,
  `low_resolution_sides=[16,48]`), as crowd faces are; screened before every photo was trained on, never with it.
- `size_144` (on `shipped`): a 144 px input instead of 112, for the detail of a nose's edge above a mask;
- `size_96` (on `shipped`): a 96 px input, the other way: crowd faces (median 51 px) enlarged less, faster training;
- `lr_1e-3`, `lr_4e-3` (on `shipped`): half and twice the lr, never screened on the crowd photos (it was chosen on
  drawn masks alone);
- `masks_real_too` (on `shipped`): masks-real's dev half (`benchmarks.real_masks.half`; 1,923 web photos labelled
  worn or not worn, the source `image-folder`) trained on as well: a user with a folder of labelled masked and bare
  faces beside the boxed crowd photos (W/masks_real.crops.csv: `faceattr prepare folder ../shared/data/masks-real`,
  then `faceattr crop` with configs/mask_real.yaml);
- `mixup` (on `shipped`): every batch blended with itself in another order, the losses in the same shares
  (`augment.mixup`, alpha 0.2), a known help where training images (drawn masks) differ from the photos scored;
- `facerec` (on `shipped`): dlib's face-recognition ResNet (trained for identity on about 3 million faces) beside
  EfficientNet-Lite0 (`model.backbone=lite0_facerec`): features made for faces, where the nose's edge is a detail;
- `label_smoothing` (on `shipped`): a tenth of each label's weight given to the other classes
  (`loss.label_smoothing=0.1`), so the model is less sure of drawn cues and of the few real labels that are wrong.

The studies: the lr per step `--recipe per_epoch --recipe per_step`; the chin `--recipe per_epoch --recipe
chin_drawn`; the average (decay 0.995: about the last 200 of a run's 843 steps; 0.998 would still hold a fifth of
the first step's random head) and Lite1 `--recipe per_step --recipe shipped --recipe lite1`; the classes balanced
`--recipe shipped --recipe balanced`; the zoom `--recipe shipped --recipe zoom_1_25`; the fine-tuning `--recipe
shipped --recipe fine_tune`; the focal loss `--recipe shipped --recipe focal`; small faces `--recipe shipped
--recipe small_faces`; 144 px `--recipe shipped --recipe size_144`; 96 px `--recipe shipped --recipe size_96`; half
the lr `--recipe shipped --recipe lr_1e-3` (and `lr_4e-3`); mixup `--recipe shipped --recipe mixup`; masks-real's
web photos too `--recipe shipped --recipe masks_real_too`; the face-recognition branch `--recipe shipped --recipe
facerec`; label smoothing `--recipe shipped --recipe label_smoothing`; the mirror view at test time, no
retraining, `--recipe shipped` then `--recipe shipped --tta hflip`.

    faceattr prepare utkface ../shared/data/utkface ../shared/data/utkface-extra --out W/utkface.csv
    faceattr synth-masks W/utkface.csv --out W/synth --persons 1200
    faceattr prepare competition W/synth --out W/synth.csv
    faceattr prepare boxes ../shared/data/masks-crowd/faces.csv --out W/crowd.csv
    for each of  (shipped framing: no override)  and  (chin: faces.margins=[0.082,0.096,-0.044,0.3]):
        faceattr crop W/crowd.csv -c configs/mask_real.yaml [chin] --out W/crowd[_chin].crops.csv
        faceattr crop W/synth.csv -c configs/mask_real.yaml [chin] --out W/synth[_chin].crops.csv
    python -m docs.experiments.real_masks_dev_folds --work W --seed 42 --recipe per_epoch --recipe chin_drawn

With `--suspects` (and `--recipe per_epoch`), that recipe's out-of-fold answers for every dev face (the seeds'
mean) go to W/crowd_dev_oof.csv, for `faceattr suspects W/crowd_dev_oof.csv --task mask`: the dev labels those
answers contradict, with a sheet of the faces.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import STUDIES, save
from benchmarks.real_masks import (
    crowd_scores,
    half,
    in_dev_part_a,
    load_predictor,
    three_class_scores,
    wide_faces,
)
from faceattr.data.manifest import read_manifest, write_manifest
from faceattr.inference.tta import VIEWS_HELP, parse_views

CHIN = "faces.margins=[0.082,0.096,-0.044,0.3]"
ONCE_AN_EPOCH = "scheduler.per_step=false"
AS_TRAINED = "train.ema_decay=0"
# recipe -> (its title in the table, its overrides of configs/mask_real.yaml)
RECIPES = {
    "shipped": ("configs/mask_real.yaml as shipped (lr per step, weights averaged)", []),
    "per_step": ("lr per step, weights as trained", [AS_TRAINED]),
    "per_epoch": ("lr once an epoch, weights as trained", [ONCE_AN_EPOCH, AS_TRAINED]),
    "chin_drawn": ("+ chin framing + drawn on own bare faces", [CHIN, ONCE_AN_EPOCH, AS_TRAINED]),
    "lite1": ("EfficientNet-Lite1 instead of Lite0", ["model.backbone=tf_efficientnet_lite1", AS_TRAINED]),
    "balanced": ("+ each source's classes drawn equally", ["sampler.by=source+mask"]),
    "zoom_1_25": ("framing jitter zooming in at most 1.25x, not 1.6x", ["augment.framing_scale=[0.8,1.25]"]),
    "focal": ("the focal loss (gamma 2) instead of cross-entropy", ["loss.name=focal"]),
    "small_faces": (
        "half the faces shrunk to 16-48 px and back",
        ["augment.low_resolution=0.5", "augment.low_resolution_sides=[16,48]"],
    ),
    "mixup": (
        "+ mixup: every batch blended with itself shuffled (alpha 0.2)",
        ["augment.mixup=1", "augment.mixup_alpha=0.2"],
    ),
    "size_144": ("144 px input instead of 112 (incorrect wear is a detail: the nose's edge)", ["data.image_size=144"]),
    "size_96": ("96 px input instead of 112 (crowd faces are about 50 px: less enlarged)", ["data.image_size=96"]),
    "lr_1e-3": ("half the lr (1e-3): a few hundred real faces, fitted less hard", ["optim.lr=1e-3"]),
    "lr_4e-3": ("twice the lr (4e-3)", ["optim.lr=4e-3"]),
    "facerec": ("+ dlib's face-recognition ResNet beside Lite0 (lite0_facerec)", ["model.backbone=lite0_facerec"]),
    "label_smoothing": ("label smoothing 0.1", ["loss.label_smoothing=0.1"]),
    "masks_real_too": ("+ masks-real's dev half (web photos labelled worn / not worn, a source of its own)", []),
    "fine_tune": (
        "shipped, then fine-tuned on the real faces alone",
        ["model.init_from={shipped}", "optim.lr=2e-4", "train.epochs=3", AS_TRAINED],
    ),
}


def draw_on_bare_faces(work: Path) -> pd.DataFrame:
    """Masks drawn on the dev half's bare crowd faces (chin crops), cropped like them; a `half` column says whose."""
    out = work / "synth_crowd.crops.csv"
    bare_path = work / "crowd_bare_dev.csv"
    if not out.is_file():
        crops = read_manifest(work / "crowd_chin.crops.csv")
        bare = crops[(crops["split"] == "dev") & (crops["mask"] == 2)]
        stand_in = {"person_id": [f"f{i}" for i in range(len(bare))], "gender": 0, "age": 30}  # see the docstring
        write_manifest(bare.assign(**stand_in), bare_path)
        run(["synth-masks", bare_path, "--out", work / "synth_crowd", "--persons", len(bare), "--overwrite"])
        run(["prepare", "competition", work / "synth_crowd", "--out", work / "synth_crowd.csv"])
        run(["crop", work / "synth_crowd.csv", "-c", "configs/mask_real.yaml", CHIN, "--out", out])
    bare = read_manifest(bare_path)
    photo_of = dict(zip(bare["path"], bare["source_path"], strict=True))
    log = pd.read_csv(work / "synth_crowd" / "synth_masks.csv")
    people = zip(log["person"], log["source"], strict=True)
    half_of = {person: "A" if in_dev_part_a(Path(photo_of[face]).stem) else "B" for person, face in people}
    drawn = read_manifest(out)
    drawn["half"] = [half_of[Path(p).parent.name] for p in drawn["source_path"]]
    return drawn


def manifests(work: Path, recipe: str, fold: str) -> tuple[Path, Path]:
    """Training (drawn set + dev half `fold`, + its bare faces drawn on for chin_drawn) and scoring (the other half)."""
    suffix = "_chin" if recipe == "chin_drawn" else ""
    crowd, synth = read_manifest(work / f"crowd{suffix}.crops.csv"), read_manifest(work / f"synth{suffix}.crops.csv")
    dev = crowd[crowd["split"] == "dev"]
    train_part = dev["person_id"].map(in_dev_part_a) == (fold == "A")
    parts = [dev[train_part]] if recipe == "fine_tune" else [synth, dev[train_part]]
    if recipe == "chin_drawn":
        drawn = draw_on_bare_faces(work)
        parts.append(drawn[drawn["half"] == fold].drop(columns="half"))  # source "competition": the drawn share
    if recipe == "masks_real_too":
        real = read_manifest(work / "masks_real.crops.csv")
        parts.append(real[real["person_id"].map(half) == "dev"])
    train_on = write_manifest(pd.concat(parts, ignore_index=True), work / f"train_{recipe}_{fold}.csv")
    score_on = write_manifest(dev[~train_part].assign(split="test"), work / f"score_{recipe}_{fold}.csv")
    return train_on, score_on


def run(args: list) -> None:
    subprocess.run(["faceattr", *map(str, args)], check=True)


def fold_result(work: Path, recipe: str, fold: str, seed: int, tta: str | None = None) -> dict:
    """One training and its score on the other half's faces >= 32 px, cached in `work` as JSON; with `tta`
    (e.g. "hflip"), that training's model scored again with those test-time views."""
    name = f"{recipe}_{fold}_s{seed}"
    checkpoint, score_on = work / "runs" / name / "checkpoints" / "last.ckpt", work / f"score_{recipe}_{fold}.csv"
    if tta:
        fold_result(work, recipe, fold, seed)  # trained first, if it is not yet
    cached = work / (f"{name}_{tta.replace(',', '+')}.json" if tta else f"{name}.json")
    if not cached.is_file():
        if not tta:
            train_on, score_on = manifests(work, recipe, fold)
            where = [f"run.dir={work / 'runs'}", f"run.name={name}", "train.progress_bar=false", "run.trackers=[]"]
            shipped = work / "runs" / f"shipped_{fold}_s{seed}" / "checkpoints" / "last.ckpt"
            overrides = [o.format(shipped=shipped) for o in RECIPES[recipe][1]]
            config = ["-c", "configs/mask_real.yaml", f"data.manifest={train_on}", f"seed={seed}"]
            run(["train", *config, *where, *overrides])
        rows = crowd_scores([checkpoint], read_manifest(score_on), tta=parse_views(tta))
        cached.write_text(json.dumps(next(r for r in rows if r["faces"] == ">= 32 px")))
    return json.loads(cached.read_text())


def out_of_fold_answers(work: Path, recipe: str, seed: int, min_width: int = 32) -> tuple[pd.DataFrame, np.ndarray]:
    """The dev half's faces at least `min_width` wide, each with the mask probabilities of the fold trained on the
    other half (so no face is answered by a model that trained on it)."""
    faces, probs = [], []
    for fold in ("A", "B"):
        scored = read_manifest(work / f"score_{recipe}_{fold}.csv")
        scored = wide_faces(scored, min_width)
        checkpoint = work / "runs" / f"{recipe}_{fold}_s{seed}" / "checkpoints" / "last.ckpt"
        preds = load_predictor(checkpoint, priors={}).predict_paths(scored["path"].tolist(), batch_size=128)
        faces.append(scored.iloc[preds.indices])
        probs.append(preds.probs["mask"])
    return pd.concat(faces, ignore_index=True), np.concatenate(probs)


def out_of_fold_rules(work: Path, recipe: str, seeds: list[int]) -> list[tuple[str, int, dict]]:
    """The decision rule the issue asks to choose on dev, for a recipe whose dev half is training data: weights on
    "incorrect" and "not worn" (relative to worn) for the best macro F1 on the two folds' out-of-fold answers, for
    each seed alone and (with several seeds) for all at once (the best mean): (what chose it, seed, scores)."""
    answers = {seed: out_of_fold_answers(work, recipe, seed) for seed in seeds}
    grid = np.geomspace(0.25, 8, 41)
    weighings = [[1.0, float(wi), float(wb)] for wi in grid for wb in grid]
    scores = {  # seed -> one score per weighing
        seed: [three_class_scores(faces["mask"].to_numpy(), (p * w).argmax(1)) for w in weighings]
        for seed, (faces, p) in answers.items()
    }
    f1 = np.array([[s["macro_f1_3class"] for s in scores[seed]] for seed in seeds])  # seeds x weighings
    chosen = [(f"seed {seed}", [i]) for i, seed in enumerate(seeds)]
    chosen += [("all seeds", list(range(len(seeds))))] if len(seeds) > 1 else []
    rules = []
    for by, which in chosen:
        best = int(f1[which].mean(0).argmax())
        weights = [round(w, 3) for w in weighings[best]]
        rules += [(f"class weights {weights} chosen on {by}", seeds[r], scores[seeds[r]][best]) for r in which]
    return rules


def write_out_of_fold(work: Path, seeds: list[int]) -> Path:
    """The per_epoch recipe's out-of-fold answers for every dev face (the seeds' mean), in the columns `faceattr
    suspects --task mask` reads: the labels those answers contradict, to review."""
    answers = [out_of_fold_answers(work, "per_epoch", seed, min_width=0) for seed in seeds]
    faces = answers[0][0][["path", "person_id", "mask", "box_x1", "box_x2"]]
    if any(not f["path"].equals(faces["path"]) for f, _ in answers):
        raise RuntimeError("the seeds' runs answered different faces; rerun them on the same crops")
    probs = np.mean([p for _, p in answers], axis=0)
    out = work / "crowd_dev_oof.csv"
    faces.assign(**{f"p_mask_{c}": probs[:, c] for c in range(probs.shape[1])}).to_csv(out, index=False)
    return out


def row(recipe: str, seed: int, trained_on: str, scores: dict) -> dict:
    n = int(np.sum(scores["confusion"]))
    kept = {k: scores[k] for k in ("macro_f1_3class", "recall_incorrect", "confusion")}
    return {"recipe": recipe, "seed": seed, "trained on": trained_on, "faces": n, **kept}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True, help="the folder of the commands above")
    parser.add_argument("--seed", type=int, action="append", help="training seeds (repeat; default 42)")
    parser.add_argument("--recipe", action="append", choices=list(RECIPES), help="repeat; default per_step + shipped")
    parser.add_argument("--name", default="real_masks_crowd_ema_lite1", help="results file name")
    parser.add_argument("--tta", default=None, help="score each recipe's models again with: " + VIEWS_HELP)
    parser.add_argument("--suspects", action="store_true", help="also write W/crowd_dev_oof.csv (see the docstring)")
    args = parser.parse_args()
    rows = []
    for recipe in args.recipe or ["per_step", "shipped"]:
        title = RECIPES[recipe][0] + (f", with the test-time views {args.tta}" if args.tta else "")
        for seed in args.seed or [42]:
            folds = {fold: fold_result(args.work, recipe, fold, seed, args.tta) for fold in ("A", "B")}
            rows += [row(title, seed, f"dev {fold}", scores) for fold, scores in folds.items()]
            confusion = sum(np.array(scores["confusion"]) for scores in folds.values())
            truth = np.repeat(np.arange(3), confusion.sum(1))
            labels = np.concatenate([np.repeat(np.arange(3), counts) for counts in confusion])
            rows.append(row(title, seed, "both folds pooled", three_class_scores(truth, labels)))
        if recipe in ("shipped", "per_step", "per_epoch") and not args.tta:
            for chosen, seed, scores in out_of_fold_rules(args.work, recipe, args.seed or [42]):
                rows.append(row(f"{title}, {chosen}", seed, "both folds pooled", scores))
    columns = ["recipe", "seed", "trained on", "faces", "macro_f1_3class", "recall_incorrect", "confusion"]
    settings = {"work": str(args.work), "chin": CHIN, "command": "python -m docs.experiments.real_masks_dev_folds"}
    save(args.name, rows, columns, settings, folder=STUDIES)
    if args.suspects:
        print("out-of-fold answers:", write_out_of_fold(args.work, args.seed or [42]))


if __name__ == "__main__":
    main()
