"""Robustness: age and gender on held-out faces shown the ways real users' photos differ from training faces.

Held-out faces: fold 0 of the UTKFace union (utkface/ + utkface-extra/, byte-identical duplicates dropped,
person-level 5-fold, split_seed 42), never trained on. Each row is one way of showing them:
  as published        UTKFace's own 200x200 aligned crops
  re-framed + predict each face pasted at 120-280 px into a 384x512 photo, then found by MTCNN and cropped with the
                      checkpoint's own face settings, as `faceattr predict` does
  48 px               the face downscaled to 48x48 and back (crowd photos)
  jpeg20 + blur       Gaussian blur (radius 1.5) then JPEG quality 20
  synthetic mask      a drawn surgical/cloth/KF94 mask, correctly worn (age and gender under a mask)
  photo style         each face re-rendered with another photo's statistics: white balance and saturation,
                      exposure (gamma) and a side light, softer or crisper detail, looser or tighter framing
  Asian / Black / Indian / White / Others, children (<13), over 70, and by folder: subsets of "as published"
  asian_left_out      the Asian faces, as published, scored by a model trained without any Asian face (--left-out:
                      what a user from a population the training set lacks gets)
Columns: gender accuracy with its 95 % Wilson interval, gender calibration error (ECE, 10 bins), age MAE with its
95 % interval, CS@5 (share within 5 years), age-bin macro F1 (<30 / 30-59 / 60+). A model whose config names peer
models (ensemble.peers) is scored twice: alone, and "+ vote" with its peers.

    python -m benchmarks.robustness --model old=RUN_A/best.ckpt --model new=RUN_B/best.ckpt
    python -m benchmarks.robustness --model "two seeds=RUN_A/best.ckpt,RUN_B/best.ckpt" --tta hflip  # an ensemble
    python -m benchmarks.robustness --model new=RUN_B/best.ckpt --left-out "new=RUN_C/best.ckpt"  # + asian_left_out
    python -m benchmarks.robustness --fold 1 ...   # the dev fold, where recipe changes are decided (fold 0: test)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter

from benchmarks.common import HELD_OUT_RULE, after_saved, nearest_face, probabilities, reframe, save, utkface_union
from faceattr.data.align import Alignment, moved
from faceattr.faces.detect import FaceDetector, detect_padded, face_chip
from faceattr.inference.ensemble import EnsemblePredictor
from faceattr.inference.load import join_peers, load_predictor
from faceattr.inference.predictor import BasePredictor
from faceattr.inference.tta import VIEWS_HELP, parse_views
from faceattr.labels import decide
from faceattr.reports.groups import scores as group_scores
from faceattr.synth.masks import render_mask

COLUMNS = ["model", "row", "n", "gender_acc", "gender_ci", "gender_ece"]
COLUMNS += ["age_mae", "age_mae_ci", "age_cs5", "age_bin_f1"]
SUBSETS = {
    "Asian": lambda t: t["race"] == "Asian",
    "Black": lambda t: t["race"] == "Black",
    "Indian": lambda t: t["race"] == "Indian",
    "White": lambda t: t["race"] == "White",
    "Others": lambda t: t["race"] == "Others",
    "children (<13)": lambda t: t["age"] < 13,
    "over 70": lambda t: t["age"] > 70,
    "from utkface/": lambda t: t["source_root"] == "utkface",  # the folder the old held-out fold came from
    "from utkface-extra/": lambda t: t["source_root"] == "utkface-extra",
}


def wilson(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion (sound for small rows and rates near 1)."""
    if n == 0:
        return float("nan"), float("nan")
    p = hits / n
    centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def calibration_error(correct: np.ndarray, confidence: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: the gap between confidence and accuracy, averaged over confidence bins."""
    edges = np.linspace(0.5, 1.0, bins + 1)  # two classes: the top probability is at least 0.5
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    gaps = [
        abs(correct[which == b].mean() - confidence[which == b].mean()) * (which == b).mean()
        for b in range(bins)
        if (which == b).any()
    ]
    return float(sum(gaps))


def scores(truth: pd.DataFrame, labels: dict[str, np.ndarray]) -> dict:
    """The table's numbers for one row: `faceattr evaluate --by`'s per-group scores, rounded, with the intervals
    and the gender calibration error."""
    out = {
        k: round(v, 2 if k == "age_mae" else 4) if isinstance(v, float) else v
        for k, v in group_scores(truth, labels).items()
    }
    known = (truth["gender"] >= 0).to_numpy()
    if "gender" in labels and known.any():
        correct = labels["gender"][known] == truth["gender"].to_numpy()[known]
        low, high = wilson(int(correct.sum()), int(known.sum()))
        out["gender_ci"] = f"{low:.3f}-{high:.3f}"
        out["gender_ece"] = round(calibration_error(correct, labels["gender_confidence"][known]), 4)
    aged = truth["age"].notna().to_numpy()
    if "age_years" in labels and aged.sum() > 1:
        error = np.abs(labels["age_years"][aged] - truth["age"].to_numpy()[aged])
        out["age_mae_ci"] = f"±{1.96 * error.std(ddof=1) / np.sqrt(len(error)):.2f}"
    return out


def predicted(predictor: BasePredictor, crops: list[np.ndarray], points: list | None = None) -> dict[str, np.ndarray]:
    """Labels for face crops, and how sure the gender answer is (its top probability). A model trained on aligned
    faces (faces.align) gets each crop aligned by its landmarks (`points`), as predict aligns detected faces."""
    alignment = Alignment.of(predictor.cfg.faces)
    if alignment is not None and points is not None:
        crops = [c if p is None else alignment(c, p) for c, p in zip(crops, points, strict=True)]
    probs = probabilities(predictor, crops, batch=128)
    labels = decide(probs, predictor.cfg.data.old_threshold)
    if "gender" in probs:
        labels["gender_confidence"] = probs["gender"].max(1)
    return labels


def photo_style(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The face as another camera, light and crop would give it: per-channel gains (white balance) and saturation,
    gamma and a light falling off across the face, a blur or an unsharp mask, and a zoom of 0.8-1.25 with a shift
    of up to 8 % (edges replicated). UTKFace's crops are aligned, evenly lit and sharp; users' photos are not.
    Returns the image and the 2x3 matrix that moves the face's points with it."""
    h, w = image.shape[:2]
    x = image.astype(np.float32) / 255.0
    x = x * rng.uniform(0.8, 1.2, size=3)  # white balance
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.5, 1.4)  # saturation
    x = np.clip(x, 0, 1) ** rng.uniform(0.6, 1.6)  # exposure
    ramp = np.linspace(*rng.permutation([rng.uniform(0.55, 0.85), rng.uniform(1.0, 1.15)]), w, dtype=np.float32)
    x = np.clip(x * ramp[None, :, None], 0, 1)  # a side light
    styled = Image.fromarray((x * 255).astype(np.uint8))
    if rng.random() < 0.5:
        styled = styled.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.4)))
    else:
        styled = styled.filter(ImageFilter.UnsharpMask(radius=2, percent=int(rng.integers(80, 180))))
    zoom, dx, dy = rng.uniform(0.8, 1.25), *rng.uniform(-0.08, 0.08, size=2)
    side = w / zoom
    box = (w / 2 + dx * w - side / 2, h / 2 + dy * h - side * h / w / 2)
    padded = np.pad(np.asarray(styled), ((h, h), (w, w), (0, 0)), mode="edge")
    left, top = round(box[0] + w), round(box[1] + h)
    crop = padded[top : top + round(side * h / w), left : left + round(side)]
    kx, ky = w / crop.shape[1], h / crop.shape[0]  # where the face's points move: [[kx, 0, dx], [0, ky, dy]]
    matrix = np.array([[kx, 0.0, -(left - w) * kx], [0.0, ky, -(top - h) * ky]])
    return np.asarray(Image.fromarray(crop).resize((w, h), Image.Resampling.BILINEAR)), matrix


def low_resolution(image: np.ndarray, side: int = 48) -> np.ndarray:
    h, w = image.shape[:2]
    small = Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(small.resize((w, h), Image.Resampling.BILINEAR))


def jpeg_blur(image: np.ndarray, quality: int = 20, radius: float = 1.5) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def landmarks(test: pd.DataFrame, images: list[np.ndarray], detector: FaceDetector, cache: Path) -> list:
    """The detector's landmarks and box per held-out face (None where none is found), cached as JSON beside the work."""
    if cache.is_file():
        found = json.loads(cache.read_text())
        if len(found) == len(test):
            return [None if f is None else (np.array(f[0]), np.array(f[1])) for f in found]
    out = []
    for start in range(0, len(images), 32):
        for face in detect_padded(detector, images[start : start + 32], pad=0.25):
            out.append(None if face is None else (np.asarray(face.landmarks), np.asarray(face.box)))
    cache.write_text(json.dumps([None if f is None else [f[0].tolist(), f[1].tolist()] for f in out]))
    return out


class Remembered(BasePredictor):
    """A model whose answers are kept by the crops' bytes, so a checkpoint named in several `--model` specs (alone
    and in ensembles) runs once per row. Its TTA is the wrapped model's."""

    def __init__(self, member: BasePredictor) -> None:
        self.member, self.answers = member, {}
        self.cfg, self.tasks, self.transform, self.source = member.cfg, member.tasks, member.transform, member.source
        self.is_peer = member.is_peer

    @property
    def tta(self):
        return self.member.tta

    @tta.setter
    def tta(self, views) -> None:
        self.member.tta = views

    def predict_crops(self, crops: list[np.ndarray], clock=None) -> dict[str, np.ndarray]:
        digest = hashlib.sha1()
        for crop in crops:
            digest.update(str(crop.shape).encode())
            digest.update(np.ascontiguousarray(crop).tobytes())
        key = digest.hexdigest()
        if key not in self.answers:
            self.answers[key] = self.member.predict_crops(crops, clock)
        return self.answers[key]


def model_of(paths: list[str], loaded: dict[str, Remembered], tta: list[str] | None, peers: bool) -> BasePredictor:
    """One predictor for a spec's comma-separated paths (an ensemble when several, with the peer models their
    configs name unless `peers` is off), each path loaded once; peers join as `predict` joins them (join_peers)."""
    for p in paths:
        if p not in loaded:
            loaded[p] = Remembered(load_predictor(p, tta=tta, peers=False))
    members = join_peers([loaded[p] for p in paths], named=peers)
    return members[0] if len(members) == 1 else EnsemblePredictor(members)


def versions(name: str, paths: list[str], loaded: dict, tta: list[str] | None, peers: bool):
    """(label, predictor): the model alone, then "+ vote" with the peers its config names (when it names any and
    `peers` is on), so our own model's numbers always stand apart from another project's."""
    alone = model_of(paths, loaded, tta, peers=False)
    yield name, alone
    if peers and any(loaded[p].cfg.ensemble.peers for p in paths):
        yield f"{name} + vote", model_of(paths, loaded, tta, peers=True)


def chart(rows: list[dict], path: Path) -> Path:
    """Gender accuracy and age MAE per row, one bar per model: where each model holds up and where it breaks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pd.DataFrame(rows)
    order = list(dict.fromkeys(table["row"]))
    models = list(dict.fromkeys(table["model"]))
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    width = 0.8 / len(models)
    for k, model in enumerate(models):
        part = table[table["model"] == model].set_index("row").reindex(order)
        xs = np.arange(len(order)) + k * width
        axes[0].bar(xs, part["gender_acc"], width, label=model)
        axes[1].bar(xs, part["age_mae"], width, label=model)
    for ax, title in zip(axes, ("gender accuracy (higher is better)", "age MAE, years (lower is better)"), strict=True):
        ax.set_xticks(np.arange(len(order)) + 0.4 - width / 2, order, rotation=45, ha="right")
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylim(0.5, 1.0)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(models), frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def views_of(test: pd.DataFrame, published: list[np.ndarray], points: list, marks: list, seed: int) -> dict:
    """Row -> (images, their truth, their landmarks) for the ways of showing the held-out faces (see the top)."""
    masked_rows = [i for i, m in enumerate(marks) if m is not None]
    masked = [
        render_mask(published[i], *marks[i], "correct", rng=np.random.default_rng([seed, i])).image for i in masked_rows
    ]
    restyled = [photo_style(im, np.random.default_rng([seed, i])) for i, im in enumerate(published)]
    style_points = [None if p is None else moved(p, matrix) for p, (_, matrix) in zip(points, restyled, strict=True)]
    return {
        "as published": (published, test, points),
        "48 px": ([low_resolution(im) for im in published], test, points),
        "jpeg20 + blur": ([jpeg_blur(im) for im in published], test, points),
        "synthetic mask": (masked, test.iloc[masked_rows], [points[i] for i in masked_rows]),
        "photo style": ([im for im, _ in restyled], test, style_points),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", action="append", default=[], help="NAME=CHECKPOINT (repeat); NAME=A,B for an ensemble of A and B"
    )
    parser.add_argument(
        "--left-out", action="append", default=[], help="NAME=CHECKPOINT of a model trained without Asian faces"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-robustness"))
    parser.add_argument("--fold", type=int, default=0, help="held-out fold scored: 0 = test, 1 = dev")
    parser.add_argument("--limit", type=int, default=0, help="held-out faces used (0 = all of the fold)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="robustness", help="results file name")
    parser.add_argument("--append", action="store_true", help="add these rows to the results file's, not replace")
    parser.add_argument("--chart", type=Path, default=None, help="also draw the table as a PNG bar chart here")
    parser.add_argument("--tta", default=None, help=VIEWS_HELP)
    parser.add_argument(
        "--no-peers", action="store_true", help="leave out the peer models a checkpoint's ensemble.peers names"
    )
    parser.add_argument("--predictions", action="store_true", help="also write each row's answers per face (CSV)")
    args = parser.parse_args()
    if not args.model and not args.left_out:
        parser.error("name a model to score: --model NAME=CHECKPOINT and/or --left-out NAME=CHECKPOINT")
    _, frame = utkface_union(args.work)
    test = frame[frame["fold"] == args.fold].reset_index(drop=True)
    if args.limit:
        test = test.sample(n=min(args.limit, len(test)), random_state=args.seed).reset_index(drop=True)
    rng = np.random.default_rng(args.seed)
    faces = [Image.open(p).convert("RGB") for p in test["path"]]
    published = [np.asarray(f) for f in faces]
    detector = FaceDetector()
    marks = landmarks(test, published, detector, args.work / f"landmarks-{args.fold}-{len(test)}-{args.seed}.json")
    points = [None if m is None else m[0] for m in marks]  # each face's landmarks, for models that align
    rows: list[dict] = []
    answers: dict[str, pd.DataFrame] = {}
    loaded: dict[str, Remembered] = {}
    tta = parse_views(args.tta)
    if args.model:
        views = views_of(test, published, points, marks, args.seed)
        photos, centres = zip(*(reframe(f, rng) for f in faces), strict=True)
        found = [nearest_face(f, c, 60) for f, c in zip(detector.detect(list(photos)), centres, strict=True)]
        print(
            f"{len(test)} held-out faces of fold {args.fold}; landmarks for {sum(p is not None for p in points)}; "
            f"face found in {np.mean([f is not None for f in found]):.1%} of the re-framed photos"
        )
    for spec in args.model:
        name, checkpoints = spec.split("=", 1)
        for label, predictor in versions(name, checkpoints.split(","), loaded, tta, not args.no_peers):
            before = len(rows)
            base = None
            for row, (images, truth, view_points) in views.items():
                labels = predicted(predictor, images, view_points)
                base = labels if row == "as published" else base
                rows.append({"model": label, "row": row, **scores(truth, labels)})
                if args.predictions:
                    answers[f"{label}: {row}"] = truth[["path"]].assign(**{k: v for k, v in labels.items()})
            crops = [face_chip(p, f, predictor.cfg.faces)[0] for p, f in zip(photos, found, strict=True)]
            rows.append({"model": label, "row": "re-framed + predict", **scores(test, predicted(predictor, crops))})
            for subset, pick in SUBSETS.items():
                keep = pick(test).to_numpy()
                subset_labels = {k: v[keep] for k, v in base.items()}
                rows.append({"model": label, "row": subset, **scores(test[keep], subset_labels)})
            for r in rows[before:]:
                print(r)
    asian = np.flatnonzero((test["race"] == "Asian").to_numpy())
    for spec in args.left_out:  # a model that never saw an Asian face, on the same Asian faces
        name, checkpoints = spec.split("=", 1)
        for label, predictor in versions(name, checkpoints.split(","), loaded, tta, not args.no_peers):
            labels = predicted(predictor, [published[i] for i in asian], [points[i] for i in asian])
            rows.append({"model": label, "row": "asian_left_out", **scores(test.iloc[asian], labels)})
            print(rows[-1])
    for key, table in answers.items():  # --predictions
        slug = "".join(c if c.isalnum() else "-" for c in key)
        table.to_csv(args.work / f"{args.name}-{slug}.csv", index=False)
    settings = {
        "models": args.model,
        "left_out": args.left_out,
        "held_out_rule": HELD_OUT_RULE.replace("fold 0", f"fold {args.fold}"),
        "limit": args.limit,
        "seed": args.seed,
        "tta": args.tta,
        "peers": not args.no_peers,
        "held_out": len(test),
    }
    if args.append:  # e.g. the asian_left_out rows of a model trained later, beside the table they belong to
        rows, settings = after_saved(args.name, rows, settings)
    if args.chart:
        chart(rows, args.chart)
    save(args.name, rows, COLUMNS, settings)


if __name__ == "__main__":
    main()
