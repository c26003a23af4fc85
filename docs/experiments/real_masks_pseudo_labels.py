"""Issue 35's lever for the drawn-only recipe (`configs/mask_drawn.yaml`): the real photos a user has, without
labels, labelled by the drawn model itself and trained on beside the drawn set (self-training; the share kept per
predicted class, most confident first, as class-balanced self-training keeps rare classes in: Zou et al., ECCV
2018). No real label is trained on: the drawn-only recipe's question with the photos a user would have anyway.

Screened on masks-crowd's dev half split again by photo (`benchmarks.real_masks.in_dev_part_a`): the teacher (the
recipe trained on the drawn set) labels part A's faces (every width), the student trains on the drawn set + those,
and both are scored on part B's faces >= 32 px; then the other way round. Each model is scored with the decision
rule chosen on the labelled part it did not score (class weights on its probabilities as trained,
`best_class_weights`), so teacher and student are judged alike, with the teacher's shipped rule (`priors.target`,
which the student inherits from the config), and with none. `--final`: the teacher labels the whole dev half, the
student trains on it, and the test half (faces >= 32 px) is scored, as the recipe's own figures are, with those
rules and with the students' own: chosen on the two fold students' answers on the part each was not taught
(`--rule-seed`'s), since a rule chosen on the faces a student was taught on follows the teacher's mistakes there.

    (W holds synth.crops.csv and crowd.crops.csv: docs/experiments/real_masks_dev_folds.py's commands)
    faceattr train -c configs/mask_drawn.yaml data.manifest=W/synth.crops.csv run.dir=W/runs run.name=drawn_s42
    python -m docs.experiments.real_masks_pseudo_labels --work W --teacher W/runs/drawn_s42/checkpoints/best.ckpt
    faceattr prepare folder ../shared/data/masks-real --out W/masks_real.csv
    faceattr crop W/masks_real.csv -c configs/mask_drawn.yaml              # -> W/masks_real.crops.csv
    python -m docs.experiments.real_masks_pseudo_labels --work W --teacher ... --final \
        --masks-real W/masks_real.crops.csv

(each seed S: its own drawn-only model `drawn_sS` as the teacher, `--seed S`; the rule rows of `--final` use seed
42's fold students). `--round 2`: a second round, each part's first-round student (same seed and keep) the
teacher that labels the same faces again, as iterated self-training does. `--variant NAME --set KEY=VALUE ...`:
the student trained with those config overrides (`{teacher}` in a value: the teacher's checkpoint, e.g.
`model.init_from={teacher}` to fine-tune the teacher instead of starting from ImageNet); `--pseudo-sources K`: the
taught faces split into K sources, so the sampler by source draws them K times in K + 1; `--more-unlabelled
CROPS`: the dev half (`benchmarks.real_masks.half`) of another crops manifest, its labels dropped, joins the faces
the teacher labels (masks-real's web photos: a user with more photos than their crowd scenes). The student is
trained and scored as `configs/mask_self_trained.yaml` ships it (no priors.target, its test-time views; before
2026-12-07 the students were trained with the drawn-only config and the sampler by source, so their "its own
priors.target" rows are the drawn-only rule they inherited), and with its teacher's rule (`priors.target`) too;
`--student-tta VIEWS`: with these test-time views as well. Several `--teacher` checkpoints (with `--variant`):
their soft vote labels the faces.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import STUDIES, mean_std, save
from benchmarks.real_masks import (
    best_class_weights,
    half,
    in_dev_part_a,
    load_predictor,
    three_class_scores,
    train_mask,
    wide_faces,
)
from benchmarks.real_masks import score as real_masks_score
from faceattr.config import load_config
from faceattr.data.manifest import read_manifest, write_manifest
from faceattr.inference.priors import parse_priors, reweight
from faceattr.inference.pseudo_labels import pseudo_labels
from faceattr.inference.tta import NO_VIEWS, parse_views

STUDENT_RECIPE = "configs/mask_self_trained.yaml"


def answers(
    checkpoint: Path | list[Path], faces: pd.DataFrame, priors: dict | None = None, tta: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(truth, mask probabilities) on `faces` >= 32 px; `priors` as load_predictor takes them ({}: as trained;
    None: each model's own rule), `tta` the test-time views (None: each model's own). Several checkpoints: their
    soft vote, as `predict A --also B` gives it."""
    faces = wide_faces(faces)
    predictor = load_predictor(checkpoint, priors=priors, tta=tta)
    preds = predictor.predict_paths(faces["path"].tolist(), batch_size=128)
    return faces["mask"].to_numpy()[preds.indices], preds.probs["mask"]


def scores(
    checkpoint: Path | list[Path],
    taught: pd.DataFrame,
    score_on: pd.DataFrame,
    target: list | None,
    tta: list[str] | None = None,
    teacher_target: list | None = None,
) -> dict[str, dict]:
    """The model on `score_on` (faces >= 32 px) with its own rule (`priors.target`), with none, with the rule
    chosen on the labels of the faces it was `taught` on (for a student, the faces it has seen: a trap, shown), and
    with `target` (class shares chosen elsewhere) and `teacher_target` (a student's teacher's rule) where given;
    every row with the test-time views `tta` (None: the model's own). Several checkpoints: their vote, each member
    with its own rule in the first row."""
    truth, probs = answers(checkpoint, score_on, priors={}, tta=tta)
    if isinstance(checkpoint, list):
        if target is not None:
            raise ValueError("a target rule moves one model's trained shares; a vote has several")
        own = answers(checkpoint, score_on, tta=tta)[1]
    else:
        shares = load_predictor(checkpoint).cfg.priors  # its own rule; each rule moves these same answers
        own = reweight(probs, shares.trained["mask"], shares.target["mask"]) if "mask" in shares.target else probs
    _, w_incorrect, w_bare = best_class_weights([answers(checkpoint, taught, priors={}, tta=tta)])
    weights = np.array([1.0, w_incorrect, w_bare])
    rows = {
        "its own priors.target": three_class_scores(truth, own.argmax(1)),
        "as trained (--priors none)": three_class_scores(truth, probs.argmax(1)),
        "rule chosen on the taught faces' labels": {
            **three_class_scores(truth, (probs * weights).argmax(1)),
            "rule_values": f"class weights {[round(float(w), 3) for w in weights]}",
        },
    }
    if target is not None:
        rows["rule chosen out of fold on dev"] = {
            **three_class_scores(truth, reweight(probs, shares.trained["mask"], target).argmax(1)),
            "rule_values": f"priors.target {target}",
        }
    if teacher_target is not None:
        rows["the teacher's priors.target"] = {
            **three_class_scores(truth, reweight(probs, shares.trained["mask"], teacher_target).argmax(1)),
            "rule_values": f"priors.target {teacher_target}",
        }
    return rows


def out_of_fold_target(work: Path, tag: str, dev: pd.DataFrame, tta: list[str]) -> list[float]:
    """The students' decision rule, chosen where no student saw the faces: the two fold students' answers (with
    the test-time views `tta`) on the part the other taught them (pooled), the class weights with the best macro
    F1, as class shares (`priors.target`) over the students' trained shares."""
    part_a = dev["person_id"].map(in_dev_part_a)
    pairs, trained = [], []
    for taught_on, other in (("A", dev[~part_a]), ("B", dev[part_a])):
        checkpoint = run_checkpoint(work, f"{tag}_dev_{taught_on}")
        pairs.append(answers(checkpoint, other, priors={}, tta=tta))
        trained.append(load_predictor(checkpoint, priors={}).cfg.priors.trained["mask"])
    pooled = (np.concatenate([t for t, _ in pairs]), np.concatenate([p for _, p in pairs]))
    _, w_incorrect, w_bare = best_class_weights([pooled])
    target = np.mean(trained, axis=0) * np.array([1.0, w_incorrect, w_bare])
    return [round(float(v), 4) for v in target / target.sum()]


def run_checkpoint(work: Path, name: str) -> Path:
    """The checkpoint a run of this study keeps (its best epoch)."""
    return work / "runs" / name / "checkpoints" / "best.ckpt"


def student(args: argparse.Namespace, teacher: Path | list[Path], name: str, unlabelled: pd.DataFrame) -> Path:
    """The recipe trained on the drawn set + `unlabelled` as `teacher` labels them (cached by run name)."""
    checkpoint = run_checkpoint(args.work, name)
    if not checkpoint.is_file():
        taught = pseudo_labels(teacher, unlabelled, "mask", args.keep, tta=args.teacher_tta, priors=args.teacher_priors)
        print(name, "pseudo labels per class:", np.bincount(taught["mask"], minlength=3).tolist(), flush=True)
        if args.pseudo_sources > 1:  # the sampler by source then draws the taught faces K times in K + 1
            taught["source"] = [f"pseudo{i % args.pseudo_sources}" for i in range(len(taught))]
        drawn = read_manifest(args.work / "synth.crops.csv")
        manifest = write_manifest(pd.concat([drawn, taught], ignore_index=True), args.work / f"{name}.csv")
        overrides = [f"sampler.name={args.sampler}", "sampler.by=source"]
        overrides += [value.replace("{teacher}", str(teacher)) for value in args.set]
        train_mask(manifest, args.work, name, 3, 112, overrides, args.seed, recipe=STUDENT_RECIPE)
    return checkpoint


def summary(tag: str, seeds: list[int]) -> None:
    """Mean +- std over `seeds` of each model and rule's `--final` rows (`tag` without the seed)."""
    runs = [json.loads((STUDIES / f"real_masks_{tag}_s{seed}_final.json").read_text())["rows"] for seed in seeds]

    def key(row: dict) -> tuple:
        return row["model"], row["scored"], row.get("views"), row["rule"]

    keys = list(dict.fromkeys(key(r) for r in runs[0]))  # in order, once each
    rows = []
    for model, scored, views, rule in keys:
        per_seed = [next(r for r in run if key(r) == (model, scored, views, rule)) for run in runs]
        row = {"model": model, "scored": scored, "rule": rule} | ({"views": views} if views else {})
        for metric in ("macro_f1_3class", "recall_incorrect", "masks_real_f1"):
            values = [r[metric] for r in per_seed if r.get(metric) is not None]
            if values:
                row[metric] = mean_std(values) + " (" + " / ".join(f"{v:.3f}" for v in values) + ")"
        rows.append(row)
    columns = ["model", "scored", "views", "rule", "macro_f1_3class", "recall_incorrect", "masks_real_f1"]
    save(f"real_masks_{tag}_final_summary", rows, columns, {"seeds": seeds}, folder=STUDIES)


def _tag(args: argparse.Namespace, round_: int | None = None) -> str:
    """The run and table names' stem; the first round's keeps the names it was published under."""
    round_ = args.round if round_ is None else round_
    variant = f"_{args.variant}" if args.variant else ""
    return f"pseudo_keep{args.keep:g}_{args.sampler}{variant}" + (f"_r{round_}" if round_ > 1 else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument(
        "--teacher", type=Path, nargs="+", help="the drawn-only recipe's checkpoint; several: their vote teaches"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", type=float, default=0.5, help="share of each predicted class kept")
    parser.add_argument("--sampler", default="weighted", help="weighted: the pseudo faces as often as the drawn")
    parser.add_argument("--final", action="store_true", help="label the whole dev half, score the test half")
    parser.add_argument("--folds", default="AB", help="without --final: the dev parts taught (A, B or AB)")
    parser.add_argument(
        "--masks-real", type=Path, help="with --final: masks-real's crops manifest, scored worn vs not as well"
    )
    parser.add_argument(
        "--rule-seed", type=int, default=42, help="with --final: the seed whose two fold students choose the rule"
    )
    parser.add_argument("--round", type=int, default=1, help="2: the first round's students are the teachers")
    parser.add_argument("--variant", default="", help="a name for the runs and tables of a variant of the study")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="the student's config overrides")
    parser.add_argument("--vote", action="store_true", help="score the student and its teacher voting as well")
    parser.add_argument(
        "--pseudo-sources", type=int, default=1, help="K: the taught faces K of each K + 1 draws (with --variant)"
    )
    parser.add_argument(
        "--teacher-tta", type=lambda v: v.split(","), help="the teacher's test-time views, e.g. hflip (with --variant)"
    )
    parser.add_argument(
        "--teacher-priors",
        type=parse_priors,
        help="the teacher labels with these class shares instead of its rule (none: its classes as trained)",
    )
    parser.add_argument("--more-unlabelled", type=Path, help="a crops manifest whose dev half joins (with --variant)")
    parser.add_argument(
        "--student-tta",
        type=parse_views,
        action="append",
        default=[],
        help="the student scored with these test-time views too (e.g. pitch; repeat for more), beside its recipe's",
    )
    parser.add_argument("--summary", type=int, nargs="+", metavar="SEED", help="mean +- std of these seeds' --final")
    args = parser.parse_args()
    if args.summary:
        summary(_tag(args), args.summary)
        return
    if args.teacher is None:
        parser.error("--teacher is needed (the drawn-only recipe's checkpoint)")
    several = len(args.teacher) > 1
    named = args.set or args.pseudo_sources > 1 or args.teacher_tta or args.more_unlabelled or several
    named = named or args.teacher_priors is not None
    if named and not args.variant:
        parser.error(
            "--set, --pseudo-sources, --teacher-tta, --teacher-priors, --more-unlabelled and several teachers need "
            "--variant NAME"
        )
    if several and args.vote:
        parser.error("--vote scores the student with its one teacher; several teachers are a vote already")
    args.teacher = args.teacher if several else args.teacher[0]
    crowd = read_manifest(args.work / "crowd.crops.csv")
    dev = crowd[crowd["split"] == "dev"]
    tag = f"{_tag(args)}_s{args.seed}"
    rows = []
    if args.final:
        parts = [("dev half", "test half", dev, crowd[crowd["split"] == "test"])]
    else:
        part_a = dev["person_id"].map(in_dev_part_a)
        parts = [("dev A", "dev B", dev[part_a], dev[~part_a]), ("dev B", "dev A", dev[~part_a], dev[part_a])]
        parts = [p for p in parts if p[0][-1] in args.folds]
    rule_tag = f"{_tag(args)}_s{args.rule_seed}"
    student_views = load_config(STUDENT_RECIPE).tta.transforms  # the recipe's, whatever a cached run recorded
    target = out_of_fold_target(args.work, rule_tag, dev, student_views) if args.final else None
    more = None  # faces labelled beside each part's, never scored
    if args.more_unlabelled is not None:
        more = read_manifest(args.more_unlabelled)
        more = more[more["person_id"].map(half) == "dev"].assign(mask=-1)
    for labelled, scored, unlabelled, score_on in parts:
        part = labelled.replace(" ", "_")
        teacher = args.teacher
        if args.round > 1:  # the previous round's student of this part
            teacher = run_checkpoint(args.work, f"{_tag(args, args.round - 1)}_s{args.seed}_{part}")
        student_run = student(args, teacher, f"{tag}_{part}", pd.concat([unlabelled, more]))
        teacher_target = None if several else load_predictor(teacher).cfg.priors.target.get("mask")
        scored_as = [("teacher", teacher, None, None, None)]  # the teacher with its own views (its recipe's)
        for views in [student_views, *args.student_tta]:
            scored_as.append(("student", student_run, views, target, teacher_target))
        for model, checkpoint, views, rule_target, rule_of_teacher in scored_as:
            for rule, row in scores(checkpoint, unlabelled, score_on, rule_target, views, rule_of_teacher).items():
                row = {"model": model, "unlabelled": labelled, "scored": scored, "rule": rule, **row}
                rows.append(row | ({"views": ",".join(views) or NO_VIEWS} if views is not None else {}))
                print(json.dumps(rows[-1]), flush=True)
        if args.vote:  # no more training: the two models a user already has, voting
            truth, probs = answers([student_run, teacher], score_on)
            row = three_class_scores(truth, probs.argmax(1))
            row = {"rule": "each its own (the student as trained, the teacher its priors.target)", **row}
            rows.append({"model": "student + teacher vote", "unlabelled": labelled, "scored": scored, **row})
            print(json.dumps(rows[-1]), flush=True)
    if args.masks_real is not None:  # worn vs not on masks-real's web photos: nothing lost there
        real = read_manifest(args.masks_real)
        student_run = run_checkpoint(args.work, f"{tag}_dev_half")
        for model, checkpoint, rule, priors in (
            ("teacher", args.teacher, "its own priors.target", None),
            ("student", student_run, "as trained (--priors none)", {}),
        ):
            views = student_views if model == "student" else None
            row = {"model": model, "scored": "masks-real (worn vs not)", "rule": rule}
            f1 = real_masks_score(checkpoint, real, tta=views, priors=priors)["macro_f1"]
            rows.append({**row, "masks_real_f1": f1})
            print(json.dumps(rows[-1]), flush=True)
    columns = ["model", "unlabelled", "scored", "views", "rule", "macro_f1_3class", "recall_incorrect"]
    columns += ["precision_incorrect", "recall_worn", "recall_not_worn", "rule_values", "masks_real_f1"]
    teachers = [str(t) for t in args.teacher] if several else str(args.teacher)
    settings = {"teacher": teachers, "seed": args.seed, "keep": args.keep, "sampler": args.sampler}
    settings |= {"round": args.round} if args.round > 1 else {}
    settings |= {"student_overrides": args.set} if args.set else {}
    settings |= {"pseudo_sources": args.pseudo_sources} if args.pseudo_sources > 1 else {}
    settings |= {"teacher_tta": args.teacher_tta} if args.teacher_tta else {}
    settings |= {"teacher_priors": args.teacher_priors} if args.teacher_priors is not None else {}
    settings |= {"more_unlabelled": str(args.more_unlabelled)} if args.more_unlabelled else {}
    settings |= {"student_tta": [",".join(v) for v in args.student_tta]} if args.student_tta else {}
    settings |= {"rule_seed": args.rule_seed, "out_of_fold_target": target} if args.final else {}
    name = f"real_masks_{tag}" + ("_final" if args.final else "" if args.folds == "AB" else f"_dev_{args.folds}")
    save(name, rows, columns, settings, folder=STUDIES)


if __name__ == "__main__":
    main()
