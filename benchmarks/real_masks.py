"""Masks on real photos: finding masked faces, and mask models trained on drawn masks scored on real ones.

Real set: ../shared/data/masks-real (3,965 web photos, with_mask / without_mask, no incorrect class; tight face
crops of ~100 px and wider photos). Never trained on except in the "drawn + real" rows, by person-level k-fold.
  1. Detection per class: MTCNN as before (one pass; centred fallback) vs the cascade (second pass enlarged and
     relaxed; whole-image fallback for small face crops).
  2. Drawn-only: a mask head trained on `synth-masks` sets made from UTKFace people of the training folds (the old
     renderer at --old-synth, and the current one), scored on masks-real crops: worn-vs-not macro F1 and accuracy
     (incorrect counted as worn), and how often a real worn mask is called "incorrect".
  3. Drawn + real: the same plus masks-real's other folds (k-fold mean +- std).
Renderer changes are judged on masks-real's "dev" half only (a fixed hash of the file name); the "test" half is
reported beside it and never used for a decision, so its number is the one to believe.

    python -m benchmarks.real_masks --persons 1200 --epochs 3 --folds 3 [--old-repo CHECKOUT] [--seed S]
    python -m benchmarks.real_masks --crowd data/crowd.crops.csv --checkpoint runs/mask_drawn/checkpoints/best.ckpt

`--crowd`: three classes on masks-crowd's real faces (real incorrect wear, small faces in crowds), by half and width;
with `--choose-priors`, the class shares (`priors.target`) that give the models their best macro F1 on the dev half;
with `--vote 3`, every three checkpoints as one soft vote (`predict A --also B --also C`); `--append` adds the rows
to the saved table (recipes scored with other --crowd-priors or --vote).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score

from benchmarks.common import (
    HELD_OUT_RULE,
    RESULTS,
    SHARED_MASKS_REAL,
    STUDIES,
    after_saved,
    save,
    saved_file,
    utkface_union,
)
from faceattr.config import FacesConfig, load_config
from faceattr.data.manifest import read_manifest, write_manifest
from faceattr.data.sources import read_competition, read_image_folder
from faceattr.data.split import make_folds
from faceattr.faces.crop import crop_manifest, settings_key
from faceattr.inference.load import load_predictor
from faceattr.inference.priors import parse_priors
from faceattr.inference.tta import VIEWS_HELP, parse_views
from faceattr.reports.evaluate import evaluate
from faceattr.synth.masks import INCORRECT_WEARS
from faceattr.training import train

CLASS_NAMES = {0: "with_mask", 2: "without_mask"}
RECIPE = "configs/mask_drawn.yaml"


def detection_rows(real: pd.DataFrame, work: Path, faces: FacesConfig) -> tuple[list[dict], pd.DataFrame]:
    """Crop masks-real twice, one pass vs the cascade (`faces`, the recipe's: margins change the crop, not what is
    detected); returns the rows and the cascade's crops manifest."""
    rows, crops = [], None
    settings = {
        "one pass (before)": replace(faces, second_pass=False, whole_image_max_side=0),
        "cascade (now)": faces,
    }
    for name, cfg in settings.items():
        start = time.time()
        result = crop_manifest(real, work / "crops", cfg, progress=False)
        out = result.manifest
        for mask, group in out.groupby("mask"):
            how = group["detection"].value_counts(normalize=True)
            rows.append(
                {
                    "detector": name,
                    "class": CLASS_NAMES[int(mask)],
                    "n": len(group),
                    "detected": round(float(how.get("detected", 0)), 4),
                    "second_pass": round(float(how.get("second pass", 0)), 4),
                    "whole_image": round(float(how.get("whole image", 0)), 4),
                    "centre_fallback": round(float(how.get("none", 0)), 4),
                    "face_crop": round(float(1 - how.get("none", 0)), 4),
                    "seconds": round(time.time() - start, 1),
                }
            )
            print(rows[-1])
        crops = out
    return rows, crops


def recipe_faces() -> FacesConfig:
    """How the mask recipe crops faces (configs/mask_drawn.yaml), for the drawn training set and real photos alike."""
    return load_config(RECIPE).faces


def synth_crops(work: Path, name: str, persons: int, source: Path | None, repo: Path | None) -> Path:
    """A drawn-mask set from UTKFace training-fold people, cropped as `faceattr crop` does; returns its manifest."""
    faces = recipe_faces()
    out = work / f"synth-{name}"
    manifest = work / f"synth-{name}.{settings_key(faces)}.crops.csv"
    if manifest.is_file():
        return manifest
    if source is None and (out / "train" / "images").is_dir():
        source = out  # drawn before (with other crop settings): crop it again
    if source is None:
        _, frame = utkface_union(work)
        bare = work / "utk-train.csv"
        write_manifest(frame[frame["fold"] != 0].drop(columns="fold"), bare)
        cmd = [
            sys.executable,
            "-m",
            "faceattr",
            "synth-masks",
            str(bare.resolve()),
            "--out",
            str(out.resolve()),
            "--persons",
            str(persons),
            "--preview",
            "24",
            "--overwrite",
        ]
        subprocess.run(cmd, check=True, cwd=repo or Path.cwd())  # repo: an older checkout for the old renderer
        source = out
    frame = read_competition(source)
    cropped = crop_manifest(frame, work / "crops", faces, progress=False).manifest
    write_manifest(cropped, manifest)
    return manifest


def with_incorrect_share(manifest: Path, share: float, seed: int = 0) -> Path:
    """The drawn set with its "incorrect" images thinned (share < 1: that share of the people keep theirs) or
    repeated (share an integer > 1), written beside it: how much the model sees of incorrect wear, nothing else."""
    if share == 1:
        return manifest
    frame = read_manifest(manifest)
    incorrect = frame["mask"] == 1
    if share > 1:
        frame = pd.concat([frame, *[frame[incorrect]] * (round(share) - 1)], ignore_index=True)
    else:
        people = frame.loc[incorrect, "person_id"].unique()
        kept = np.random.default_rng(seed).choice(people, round(len(people) * share), replace=False)
        frame = frame[~incorrect | frame["person_id"].isin(kept)]
    out = manifest.with_name(manifest.name.replace(".crops.csv", f".incorrect-{share:g}.crops.csv"))
    write_manifest(frame, out)
    return out


def without_wear(manifest: Path, wear: str, drawn_log: Path) -> Path:
    """The drawn set without its incorrect images of one way of wearing (`synth_masks.csv`, `synth-masks`' log, says
    which): which drawn incorrect wear the real, correctly worn masks called "incorrect" are taken for."""
    frame = read_manifest(manifest)
    log = pd.read_csv(drawn_log)
    worn_so = log[log["wear"] == wear]
    gone = set(zip(worn_so["person"], worn_so["file"], strict=True))
    drawn_as = [(Path(p).parent.name, Path(p).stem) for p in frame["source_path"]]
    frame = frame[[key not in gone for key in drawn_as]]
    out = manifest.with_name(manifest.name.replace(".crops.csv", f".without-{wear}.crops.csv"))
    write_manifest(frame, out)
    return out


def train_mask(
    manifest: Path,
    work: Path,
    name: str,
    epochs: int,
    size: int,
    extra: list[str],
    seed: int = 42,
    recipe: str = RECIPE,
) -> Path:
    """The README's mask recipe (configs/mask_drawn.yaml, or another `recipe`) on `manifest`."""
    cfg = load_config(
        recipe,
        [
            f"data.manifest={manifest}",
            f"data.image_size={size}",
            f"train.epochs={epochs}",
            "train.progress_bar=false",
            f"run.dir={work / 'runs'}",
            f"run.name={name}",
            "run.trackers=[]",
            f"seed={seed}",
            *extra,
        ],
    )
    return train(cfg, overwrite=True).best_checkpoint


def half(person_id: str) -> str:
    """ "dev" or "test": a fixed split of masks-real by file name, so renderer decisions never see the test half."""
    return "dev" if hashlib.md5(str(person_id).encode()).digest()[0] % 2 == 0 else "test"


def score(
    checkpoint: Path | list[Path],
    real: pd.DataFrame,
    save_to: Path | None = None,
    tta: list[str] | None = None,
    priors: dict[str, list[float]] | None = None,
) -> dict:
    """Worn (worn or incorrect) vs not worn on real crops, and real worn masks called incorrect; with the macro F1
    of each half (`half`). `save_to`: a CSV of every photo's truth and predicted label, for looking at mistakes.
    A list of checkpoints is scored as one soft-vote ensemble; `tta`: test-time views (e.g. ["hflip"]); `priors`:
    class shares instead of the model's own `priors.target` ({}: the probabilities as trained)."""
    predictor = load_predictor(checkpoint, tta=tta, priors=priors)
    preds = predictor.predict_paths(real["path"].tolist(), batch_size=128)
    scored = real.iloc[preds.indices]  # the rows that could be read, in order
    truth = scored["mask"].to_numpy()
    labels = preds.labels()["mask"]
    halves = scored["person_id"].map(half).to_numpy()
    if save_to is not None:
        table = pd.DataFrame({"path": preds.paths, "mask": truth, "predicted": labels, "half": halves})
        write_manifest(table, save_to)
    return real_metrics(truth, labels, halves)


def real_metrics(truth: np.ndarray, labels: np.ndarray, halves: np.ndarray) -> dict:
    """The scores of `score` from masks-real's labels (0 worn, 2 not worn), predicted labels and each photo's half."""
    worn_true, worn_pred = truth != 2, labels != 2
    cm = confusion_matrix(worn_true, worn_pred, labels=[True, False])
    return {
        "n": len(truth),
        "macro_f1": round(float(f1_score(worn_true, worn_pred, average="macro")), 4),
        **{
            f"f1_{h}": round(float(f1_score(worn_true[halves == h], worn_pred[halves == h], average="macro")), 4)
            for h in ("dev", "test")
        },
        "accuracy": round(float((worn_true == worn_pred).mean()), 4),
        "worn_called_incorrect": round(float((labels[truth == 0] == 1).mean()), 4),
        "worn_called_not_worn": round(float(cm[0, 1] / max(cm[0].sum(), 1)), 4),
        "bare_called_worn": round(float(cm[1, 0] / max(cm[1].sum(), 1)), 4),
    }


SCORE_COLUMNS = ["macro_f1", "f1_dev", "f1_test", "worn_called_incorrect", "worn_called_not_worn", "bare_called_worn"]
CROWD_WIDTHS = ((0, 32), (32, 64), (64, 100_000))


def three_class_scores(truth: np.ndarray, labels: np.ndarray) -> dict:
    """Macro F1 over worn / incorrect / not worn, each class's recall and precision, the confusion matrix (rows
    true worn / incorrect / not worn)."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, _ = precision_recall_fscore_support(truth, labels, labels=[0, 1, 2], zero_division=0)
    names = ("worn", "incorrect", "not_worn")
    return {
        "macro_f1_3class": round(float(f1.mean()), 4),
        **{f"recall_{c}": round(float(r), 3) for c, r in zip(names, recall, strict=True)},
        **{f"precision_{c}": round(float(q), 3) for c, q in zip(names, precision, strict=True)},
        "confusion": confusion_matrix(truth, labels, labels=[0, 1, 2]).tolist(),
    }


def model_name(checkpoint: Path | list[Path]) -> str:
    """A run's folder name; "vote: a + b + c" for a list of checkpoints scored as one soft vote."""
    if isinstance(checkpoint, list):
        return "vote: " + " + ".join(model_name(c) for c in checkpoint)
    return Path(checkpoint).parent.parent.name


def crowd_scores(
    checkpoints: list[Path | list[Path]],
    crops: pd.DataFrame,
    priors: dict | None = None,
    gallery: Path | None = None,
    tta: list[str] | None = None,
) -> list[dict]:
    """Three classes on masks-crowd's real faces (a `prepare boxes` + `crop` manifest): per checkpoint (a list of
    checkpoints: one soft vote, as `predict A --also B` makes) and half,
    macro F1, recall and precision per class, and macro F1 by face width (the annotated box, photo pixels); the
    confusion matrix (rows true worn / incorrect / not worn) in the row. Faces >= 32 px wide are the targets'.
    `gallery`: a folder (outside the repository: the photos are research-only) for each model's most confident
    mistakes on the test half's faces >= 32 px; `tta`: test-time views for every model (None: its config's)."""
    from faceattr.reports.gallery import mistake_gallery

    rows = []
    width = (crops["box_x2"] - crops["box_x1"]).to_numpy()
    for checkpoint in checkpoints:
        predictor = load_predictor(checkpoint, priors=priors, tta=tta)
        preds = predictor.predict_paths(crops["path"].tolist(), batch_size=128)
        truth = crops["mask"].to_numpy()[preds.indices]
        labels = preds.labels()["mask"]
        halves, widths = crops["split"].to_numpy()[preds.indices], width[preds.indices]
        if gallery is not None:
            shown = np.flatnonzero((halves == "test") & (widths >= 32))
            model = model_name(checkpoint).replace(" ", "").replace(":", "_")
            mistake_gallery(
                [preds.paths[i] for i in shown],
                truth[shown],
                preds.probs["mask"][shown],
                ["worn", "incorrect", "not worn"],
                f"{model}: most confident mistakes, masks-crowd test half, faces >= 32 px",
                gallery / f"{model}_crowd_mistakes.png",
                per_class=10,
            )
        for half_name in ("test", "dev"):
            for name, keep in (("all", widths >= 0), (">= 32 px", widths >= 32)):
                pick = (halves == half_name) & keep
                if not pick.any():  # e.g. a manifest of one half (--split-dev's dev_b)
                    continue
                row = {
                    "model": model_name(checkpoint),
                    "half": half_name,
                    "faces": name,
                    "n": int(pick.sum()),
                    **three_class_scores(truth[pick], labels[pick]),
                }
                for lo, hi in CROWD_WIDTHS:
                    part = pick & (widths >= lo) & (widths < hi)
                    key = f"f1_{lo}_{hi if hi < 100_000 else 'up'}px"
                    row[key] = None
                    if part.any():
                        f = f1_score(truth[part], labels[part], labels=[0, 1, 2], average="macro", zero_division=0)
                        row[key] = round(float(f), 4)
                rows.append(row)
                print(row, flush=True)
    return rows


def in_dev_part_a(photo: str) -> bool:
    """Which part of masks-crowd's dev half a photo falls in when `split_dev` splits it again (a second hash)."""
    return hashlib.md5(f"sub{photo}".encode()).digest()[0] % 2 == 0


def split_dev(crops: pd.DataFrame, drawn: pd.DataFrame, work: Path) -> tuple[Path, Path]:
    """The dev half split again by photo (a second hash): drawn + dev A to train a drawn + real recipe's variants on,
    dev B (written with split "test") to score them, so its levers are chosen without the test half."""
    dev = crops[crops["split"] == "dev"]
    part_a = dev["person_id"].map(in_dev_part_a)
    work.mkdir(parents=True, exist_ok=True)
    train_on, score_on = work / "drawn_and_dev_a.csv", work / "dev_b.crops.csv"
    write_manifest(pd.concat([drawn, dev[part_a]], ignore_index=True), train_on)
    write_manifest(dev[~part_a].assign(split="test"), score_on)
    return train_on, score_on


def wide_faces(faces: pd.DataFrame, min_width: int = 32) -> pd.DataFrame:
    """The boxed faces at least `min_width` px wide (the annotated box, in photo pixels): those the targets count."""
    return faces[(faces["box_x2"] - faces["box_x1"]) >= min_width]


def choose_priors(
    checkpoints: list[Path], crops: pd.DataFrame, min_width: int = 32, tta: list[str] | None = None
) -> dict:
    """The mask class shares (`priors.target`) that give the best macro F1, averaged over `checkpoints` (seeds of one
    recipe), on the dev half's faces >= `min_width` px: the decision rule for "incorrect" and "not worn", chosen
    where the test half is never seen. A grid of weights on the model's probabilities as trained, relative to worn;
    `tta`: the test-time views the rule is for (None: each model's own)."""
    dev = wide_faces(crops[crops["split"] == "dev"], min_width)
    answers, trained = [], None
    for checkpoint in checkpoints:
        predictor = load_predictor(checkpoint, priors={}, tta=tta)
        preds = predictor.predict_paths(dev["path"].tolist(), batch_size=128)
        answers.append((dev["mask"].to_numpy()[preds.indices], preds.probs["mask"]))
        shares = np.asarray(predictor.cfg.priors.trained["mask"], dtype=float)
        if trained is not None and not np.allclose(shares, trained, atol=0.01):
            raise SystemExit(f"{checkpoint}: trained on other mask shares ({shares}) than the first model ({trained})")
        trained = shares
    best = best_class_weights(answers)
    target = trained * np.array([1.0, best[1], best[2]])
    return {
        "faces": len(dev),
        "dev_macro_f1": round(best[0], 4),
        "trained": [round(float(v), 4) for v in trained],
        "target": [round(float(v), 4) for v in target / target.sum()],
    }


def best_class_weights(answers: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float, float]:
    """(mean macro F1, weight on "incorrect", weight on "not worn"; worn fixed at 1): the grid point with the best
    macro F1 averaged over `answers` (truth, mask probabilities), e.g. one pair per seed."""
    best = (-1.0, 1.0, 1.0)
    for w_incorrect in np.geomspace(0.01, 4, 31):
        for w_bare in np.geomspace(0.01, 4, 31):
            weights = np.array([1.0, w_incorrect, w_bare])
            f1 = np.mean([f1_score(t, (p * weights).argmax(1), labels=[0, 1, 2], average="macro") for t, p in answers])
            best = max(best, (float(f1), float(w_incorrect), float(w_bare)))
    return best


def validation_fold_scores(checkpoints: list[Path], min_width: int = 32) -> list[dict]:
    """Three classes on the real boxed faces (>= `min_width` px) of each run's own validation fold, which it never
    trained on: where a drawn + real recipe's choices are made when its real photos' dev half is training data."""
    from faceattr.reports.evaluate import evaluation_rows

    rows = []
    for checkpoint in checkpoints:
        predictor = load_predictor(checkpoint, priors={})
        frame = evaluation_rows(predictor, None, None)
        boxed = wide_faces(frame, min_width) if "box_x1" in frame else frame.iloc[:0]
        preds = predictor.predict_paths(boxed["path"].tolist(), batch_size=128)
        truth, labels = boxed["mask"].to_numpy()[preds.indices], preds.labels()["mask"]
        scores = three_class_scores(truth, labels)
        rows.append(
            {
                "model": model_name(checkpoint),
                "faces": len(truth),
                "macro_f1_3class": scores["macro_f1_3class"],
                "recall_incorrect": scores["recall_incorrect"],
            }
        )
        print(rows[-1], flush=True)
    return rows


def checkpoints_parser(description: str, work: str, name: str) -> argparse.ArgumentParser:
    """The arguments of the benchmarks that score trained mask checkpoints on other versions of masks-real's crops
    (docs.experiments.real_masks_edges, docs.experiments.real_masks_degraded)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--crops", type=Path, required=True, help="masks-real's crops manifest from benchmarks.real_masks"
    )
    parser.add_argument("--checkpoint", type=Path, action="append", required=True, help="a mask model (repeat)")
    parser.add_argument("--work", type=Path, default=Path(work))
    parser.add_argument("--name", default=name)
    parser.add_argument(
        "--priors", default=None, help="class shares instead of each model's own, as predict --priors takes them"
    )
    return parser


def score_versions(
    versions: dict[str, pd.DataFrame],
    models: dict[str, Path | list[Path]],
    column: str,
    tta: list[str] | None = None,
    priors: str | None = None,
) -> list[dict]:
    """Each model on each version of the real crops, a row each (the version's name under `column`), printed as it
    comes. `priors`: class shares instead of each model's own (`predict --priors` text)."""
    shares = parse_priors(priors) if priors is not None else None
    rows = []
    for version, manifest in versions.items():
        for name, model in models.items():
            rows.append({column: version, "checkpoint": name, **score(model, manifest, tta=tta, priors=shares)})
            print(rows[-1], flush=True)
    return rows


COLUMNS = [
    "training",
    "scored_on",
    "n",
    "macro_f1",
    "f1_dev",
    "f1_test",
    "accuracy",
    "worn_called_incorrect",
    "worn_called_not_worn",
    "bare_called_worn",
]


def results_folder(args: argparse.Namespace) -> Path:
    """Where this run's table goes: a study's (--study) beside the studies, else the benchmark's current table."""
    return STUDIES if args.study else RESULTS


def _save(rows: list[dict], args) -> None:
    """Written after every model, so a run cut short still leaves what it measured."""
    settings = {**vars(args), "synth_people": HELD_OUT_RULE.replace("fold 0", "folds 1-4 (training side)")}
    save(args.name, rows, COLUMNS, settings, results_folder(args))


def parse_args() -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_MASKS_REAL)
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-real-masks"))
    parser.add_argument("--persons", type=int, default=1200, help="UTKFace people per drawn set (x7 images)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument(
        "--folds", type=int, default=3, help="drawn + real: person-level folds of masks-real (0 = skip)"
    )
    parser.add_argument("--old-repo", type=Path, default=None, help="a checkout with the old renderer")
    parser.add_argument("--name", default=None, help="results file name (default: real_masks, or each --crowd mode's)")
    parser.add_argument("--seed", type=int, default=42, help="training seed of the drawn-only models")
    parser.add_argument(
        "--renderers", default="old,new", help="drawn sets to train on (old needs --old-repo or its cached crops)"
    )
    parser.add_argument(
        "--drawn-set", default="new", help="folder name (under --work) of the current renderer's drawn set"
    )
    parser.add_argument(
        "--incorrect-share",
        type=float,
        default=1.0,
        help="keep this share of the drawn people's incorrect images (< 1), or repeat them (an integer > 1)",
    )
    parser.add_argument(
        "--without-wear", choices=INCORRECT_WEARS, help="train without the drawn incorrect images of this wear"
    )
    parser.add_argument("overrides", nargs="*", help="config overrides for every model, e.g. augment.blur=0.5")
    parser.add_argument(
        "--crowd",
        type=Path,
        help="score --checkpoint models on masks-crowd's faces instead (this crops manifest: `faceattr prepare "
        "boxes ../shared/data/masks-crowd/faces.csv` then `faceattr crop -c configs/mask_drawn.yaml`)",
    )
    parser.add_argument("--checkpoint", type=Path, action="append", help="with --crowd: a mask model (repeat)")
    parser.add_argument(
        "--vote",
        type=int,
        default=1,
        metavar="N",
        help="with --crowd: score every N consecutive --checkpoint as one soft vote (seeds of one recipe)",
    )
    parser.add_argument(
        "--append", action="store_true", help="with --crowd: add these rows to the saved table, not replace it"
    )
    parser.add_argument(
        "--study",
        action="store_true",
        help="write the table to docs/experiments/results, beside the studies, not to benchmarks/results",
    )
    parser.add_argument(
        "--crowd-priors", default=None, help="with --crowd: class shares instead of each model's own (none: as trained)"
    )
    parser.add_argument(
        "--gallery",
        type=Path,
        help="with --crowd: a folder outside the repository for each model's most confident test-half mistakes",
    )
    parser.add_argument("--tta", default=None, help="with --crowd: " + VIEWS_HELP)
    parser.add_argument("--prepare-only", action="store_true", help="stop once the crops manifests are written")
    parser.add_argument(
        "--crowd-val",
        action="store_true",
        help="with --checkpoint: score each run's own validation-fold boxed faces (>= 32 px), as trained",
    )
    parser.add_argument(
        "--choose-priors",
        action="store_true",
        help="with --crowd and --checkpoint (seeds of one recipe): the priors.target for the best dev-half macro F1",
    )
    parser.add_argument(
        "--split-dev",
        type=Path,
        metavar="DRAWN_CROPS",
        help="with --crowd: write --work/drawn_and_dev_a.csv (these drawn crops + half of the dev photos) to train "
        "variants on and --work/dev_b.crops.csv (the other half) to score them with --crowd",
    )
    return parser, parser.parse_args()


def score_crowd(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Three classes on real crowd faces, for models trained elsewhere (--crowd)."""
    priors = parse_priors(args.crowd_priors) if args.crowd_priors is not None else None
    models = args.checkpoint or []
    if args.vote > 1:
        if len(models) % args.vote:
            parser.error(f"--vote {args.vote}: give a multiple of {args.vote} --checkpoint, not {len(models)}")
        models = [models[i : i + args.vote] for i in range(0, len(models), args.vote)]
    name = args.name or "real_masks_crowd" + ("_as_trained" if priors == {} else "")
    if args.append and not saved_file(name).is_file():
        parser.error(f"--append: no saved {name} table to add to; run once without --append")
    tta = parse_views(args.tta)
    rows = crowd_scores(models, read_manifest(args.crowd), priors, args.gallery, tta)
    settings = {
        "crowd": str(args.crowd),
        "checkpoints": args.checkpoint,
        "priors": args.crowd_priors,
        "vote": args.vote,
        "tta": args.tta,
    }
    if args.append:  # recipes that need other --crowd-priors or --vote, in one table
        rows, settings = after_saved(name, rows, settings)
    columns = [*list(dict.fromkeys(k for r in rows for k in r if k != "confusion")), "confusion"]
    save(name, rows, columns, settings, results_folder(args))


def masks_real_study(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Drawn-only models trained here and scored on masks-real, then drawn + real over its person-level folds."""
    args.name = args.name or "real_masks"
    if args.incorrect_share <= 0 or (args.incorrect_share > 1 and args.incorrect_share != round(args.incorrect_share)):
        parser.error("--incorrect-share: a share in (0, 1], or a whole number of repeats (2, 3, ...)")
    args.work.mkdir(parents=True, exist_ok=True)
    faces = recipe_faces()
    # cached: a second run (e.g. on a GPU machine) reuses the crops
    real_manifest = args.work / f"real.{settings_key(faces)}.crops.csv"
    if not real_manifest.is_file():
        if not args.data.is_dir():
            raise SystemExit(f"masks-real not found at {args.data}; pass --data")
        det_rows, real_crops = detection_rows(read_image_folder(args.data), args.work, faces)
        settings = {"data": "shared/data/masks-real"}
        save("real_masks_detection", det_rows, list(det_rows[0]), settings, results_folder(args))
        write_manifest(real_crops, real_manifest)
    real_crops = read_manifest(real_manifest)
    sets = {"new renderer": synth_crops(args.work, args.drawn_set, args.persons, None, None)}
    wanted = args.renderers.split(",")
    if "old" in wanted and (args.old_repo or (args.work / "synth-old" / "train").is_dir()):
        sets = {"old renderer": synth_crops(args.work, "old", args.persons, None, args.old_repo), **sets}
    if args.prepare_only:
        return
    rows = []
    for name, manifest in sets.items():
        slug = name.replace(" ", "-")
        if name.split()[0] not in wanted:
            continue
        run = f"{args.name}-drawn-{slug}"
        manifest = with_incorrect_share(manifest, args.incorrect_share)
        if args.without_wear:
            manifest = without_wear(
                manifest, args.without_wear, args.work / f"synth-{args.drawn_set}" / "synth_masks.csv"
            )
        checkpoint = train_mask(manifest, args.work, run, args.epochs, args.image_size, args.overrides, args.seed)
        real_score = score(checkpoint, real_crops, args.work / f"{run}.predictions.csv")
        training = f"drawn only, {name}" + "".join(f", {o}" for o in args.overrides)
        training += f", incorrect x{args.incorrect_share:g}" if args.incorrect_share != 1 else ""
        training += f", without drawn {args.without_wear}" if args.without_wear else ""
        rows.append({"training": training, "scored_on": "masks-real", **real_score})
        drawn = evaluate(checkpoint, out_dir=args.work / f"eval-{run}").metrics["mask"]  # the run's held-out people
        rows.append(
            {
                "training": training,
                "scored_on": "drawn, held-out people (3 classes)",
                "n": drawn["n"],
                "macro_f1": round(drawn["f1"], 4),
                "accuracy": round(drawn["accuracy"], 4),
            }
        )
        print(rows[-2:])
        _save(rows, args)
    if args.folds < 2:  # drawn-only rows are all that was asked for
        return
    # drawn + real: person-level folds over masks-real, the drawn set (current renderer) always in training
    split = make_folds(real_crops, args.folds, 42)
    fold_of = dict(zip(split["person_id"], split["fold"], strict=True))
    real_crops = real_crops.assign(fold=real_crops["person_id"].map(fold_of))
    fold_scores = []
    drawn = read_manifest(sets["new renderer"])
    for k in range(args.folds):
        test = real_crops[real_crops["fold"] == k]
        mixed = pd.concat([drawn, real_crops[real_crops["fold"] != k].drop(columns="fold")], ignore_index=True)
        mixed_path = write_manifest(mixed, args.work / f"mixed-{k}.csv")
        checkpoint = train_mask(
            mixed_path,
            args.work,
            f"{args.name}-mixed-{k}",
            args.epochs,
            args.image_size,
            ["data.folds=5", "train.full_data=true", *args.overrides],
        )
        fold_scores.append(score(checkpoint, test))
        print(k, fold_scores[-1])
        _save(
            [
                *rows,
                *(
                    {"training": f"drawn + real, fold {i}", "scored_on": "masks-real, held-out fold", **f}
                    for i, f in enumerate(fold_scores)
                ),
            ],
            args,
        )
    for key in ("macro_f1", "accuracy", "worn_called_incorrect"):
        values = np.array([s[key] for s in fold_scores])
        rows.append(
            {
                "training": f"drawn + real ({args.folds}-fold)",
                "scored_on": f"masks-real, {key}",
                "macro_f1": f"{values.mean():.4f} +- {values.std():.4f}" if key == "macro_f1" else "",
                "accuracy": f"{values.mean():.4f} +- {values.std():.4f}" if key == "accuracy" else "",
                "worn_called_incorrect": f"{values.mean():.4f}" if key == "worn_called_incorrect" else "",
            }
        )
    _save(rows, args)


def main() -> None:
    parser, args = parse_args()
    if (args.split_dev is not None or args.choose_priors or args.gallery is not None) and args.crowd is None:
        parser.error("--split-dev, --choose-priors and --gallery work on masks-crowd's faces: give --crowd CROPS")
    if args.split_dev is not None:
        for path in split_dev(read_manifest(args.crowd), read_manifest(args.split_dev), args.work):
            print("wrote", path)
        return
    if args.gallery is not None and args.gallery.resolve().is_relative_to(Path(__file__).resolve().parents[1]):
        parser.error("--gallery: the crowd photos are research-only; write their gallery outside the repository")
    if args.choose_priors:
        chosen = choose_priors(args.checkpoint or [], read_manifest(args.crowd), tta=parse_views(args.tta))
        print(chosen, f"\nin the recipe: priors: {{target: {{mask: {chosen['target']}}}}}")
        save(
            args.name or "real_masks_crowd_priors",
            [chosen],
            list(chosen),
            {"crowd": str(args.crowd), "checkpoints": args.checkpoint, "tta": args.tta},
            results_folder(args),
        )
        return
    if args.crowd_val:  # where a drawn + real recipe is decided: real faces none of its runs trained on
        rows = validation_fold_scores(args.checkpoint or [])
        settings = {"checkpoints": args.checkpoint}
        save(args.name or "real_masks_crowd_validation", rows, list(rows[0]), settings, results_folder(args))
        return
    if args.crowd is not None:
        score_crowd(args, parser)
        return
    masks_real_study(args, parser)


if __name__ == "__main__":
    main()
