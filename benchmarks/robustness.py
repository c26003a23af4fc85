"""Robustness: age and gender on held-out faces shown the ways real users' photos differ from training faces.

Held-out faces: fold 0 of the UTKFace union (utkface/ + utkface-extra/, byte-identical duplicates dropped,
person-level 5-fold, split_seed 42), never trained on. Each row is one way of showing them:
  as published        UTKFace's own 200x200 aligned crops
  re-framed + predict each face pasted at 120-280 px into a 384x512 photo, then found by MTCNN and cropped with the
                      checkpoint's own face settings, as `faceattr predict` does
  48 px               the face downscaled to 48x48 and back (crowd photos)
  jpeg20 + blur       Gaussian blur (radius 1.5) then JPEG quality 20
  synthetic mask      a drawn surgical/cloth/KF94 mask, correctly worn (age and gender under a mask)
  Asian / Black / Indian / White / Others, children (<13), over 70, and by folder: subsets of "as published"
Columns: gender accuracy, age MAE, CS@5 (share within 5 years), age-bin macro F1 (<30 / 30-59 / 60+).

    python -m benchmarks.robustness --model old=RUN_A/best.ckpt --model new=RUN_B/best.ckpt
    python -m benchmarks.robustness --model "two seeds=RUN_A/best.ckpt,RUN_B/best.ckpt" --tta hflip  # an ensemble
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

from benchmarks.common import HELD_OUT_RULE, nearest_face, predict, reframe, save, utkface_union
from faceattr.faces.detect import FaceDetector, crop_face, detect_padded
from faceattr.inference.ensemble import EnsemblePredictor
from faceattr.inference.load import join_peers, load_predictor
from faceattr.inference.predictor import BasePredictor
from faceattr.reports.groups import scores as group_scores
from faceattr.synth.masks import render_mask

COLUMNS = ["model", "row", "n", "gender_acc", "age_mae", "age_cs5", "age_bin_f1"]
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


def scores(truth: pd.DataFrame, labels: dict[str, np.ndarray]) -> dict:
    """The table's numbers for one row: `faceattr evaluate --by`'s per-group scores, rounded."""
    return {
        k: round(v, 2 if k == "age_mae" else 4) if isinstance(v, float) else v
        for k, v in group_scores(truth, labels).items()
    }


def low_resolution(image: np.ndarray, side: int = 48) -> np.ndarray:
    h, w = image.shape[:2]
    small = Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(small.resize((w, h), Image.Resampling.BILINEAR))


def jpeg_blur(image: np.ndarray, quality: int = 20, radius: float = 1.5) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).filter(ImageFilter.GaussianBlur(radius)).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def landmarks(test: pd.DataFrame, images: list[np.ndarray], detector: FaceDetector, cache: Path) -> list:
    """MTCNN landmarks and box per held-out face (None where none is found), cached as JSON beside the work."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", action="append", required=True, help="NAME=CHECKPOINT (repeat); NAME=A,B for an ensemble of A and B"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-robustness"))
    parser.add_argument("--limit", type=int, default=0, help="held-out faces used (0 = all of fold 0)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="robustness", help="results file name")
    parser.add_argument("--chart", type=Path, default=None, help="also draw the table as a PNG bar chart here")
    parser.add_argument("--tta", default=None, help="test-time augmentation for every model, e.g. hflip")
    parser.add_argument(
        "--no-peers", action="store_true", help="leave out the peer models a checkpoint's ensemble.peers names"
    )
    args = parser.parse_args()
    _, frame = utkface_union(args.work)
    test = frame[frame["fold"] == 0].reset_index(drop=True)
    if args.limit:
        test = test.sample(n=min(args.limit, len(test)), random_state=args.seed).reset_index(drop=True)
    rng = np.random.default_rng(args.seed)
    faces = [Image.open(p).convert("RGB") for p in test["path"]]
    published = [np.asarray(f) for f in faces]
    detector = FaceDetector()
    marks = landmarks(test, published, detector, args.work / f"landmarks-{len(test)}-{args.seed}.json")
    masked_rows = [i for i, m in enumerate(marks) if m is not None]
    masked = [
        render_mask(published[i], *marks[i], "correct", rng=np.random.default_rng([args.seed, i])).image
        for i in masked_rows
    ]
    photos, centres = zip(*(reframe(f, rng) for f in faces), strict=True)
    found = [nearest_face(f, c, 60) for f, c in zip(detector.detect(list(photos)), centres, strict=True)]
    print(
        f"{len(test)} held-out faces; landmarks for {len(masked_rows)}; "
        f"face found in {np.mean([f is not None for f in found]):.1%} of the re-framed photos"
    )
    views = {
        "as published": (published, test),
        "48 px": ([low_resolution(im) for im in published], test),
        "jpeg20 + blur": ([jpeg_blur(im) for im in published], test),
        "synthetic mask": (masked, test.iloc[masked_rows]),
    }
    rows = []
    loaded: dict[str, Remembered] = {}
    for spec in args.model:
        name, checkpoints = spec.split("=", 1)
        predictor = model_of(
            checkpoints.split(","), loaded, args.tta.split(",") if args.tta else None, not args.no_peers
        )
        base = None
        for row, (images, truth) in views.items():
            labels = predict(predictor, images, batch=128)
            base = labels if row == "as published" else base
            rows.append({"model": name, "row": row, **scores(truth, labels)})
        crops = [crop_face(p, f, predictor.cfg.faces)[0] for p, f in zip(photos, found, strict=True)]
        rows.append({"model": name, "row": "re-framed + predict", **scores(test, predict(predictor, crops, batch=128))})
        for subset, pick in SUBSETS.items():
            keep = pick(test).to_numpy()
            rows.append({"model": name, "row": subset, **scores(test[keep], {k: v[keep] for k, v in base.items()})})
        for r in rows[-len(views) - 1 - len(SUBSETS) :]:
            print(r)
    if args.chart:
        chart(rows, args.chart)
    save(
        args.name,
        rows,
        COLUMNS,
        {
            "models": args.model,
            "held_out_rule": HELD_OUT_RULE,
            "limit": args.limit,
            "seed": args.seed,
            "tta": args.tta,
            "peers": not args.no_peers,
            "held_out": len(test),
        },
    )


if __name__ == "__main__":
    main()
