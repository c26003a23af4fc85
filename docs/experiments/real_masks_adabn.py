"""Batch-norm statistics re-estimated on unlabelled real faces (AdaBN, Li et al. 2016), scored on masks-crowd.

A drawn-only mask model normalises every layer with the means and variances of drawn-mask images; real crowd faces
have others (light, blur, size). AdaBN keeps every weight and replaces those statistics with the ones the network
measures on the real photos' faces, labels unused: a known cheap bridge from synthetic to real images. Here the
statistics come from the dev half's face crops (all of them, labels unread) and are blended with the trained ones
(`--blend 0.5`: half each; 1: the real ones alone). Every version is scored on both halves (faces >= 32 px) with the
model's own decision rule and with class weights chosen on the dev half for that version (so a shift the new
statistics give every face is not mistaken for a worse or better model).

    python -m docs.experiments.real_masks_adabn --crowd data/crowd.crops.csv \
        --checkpoint runs/mask_drawn/checkpoints/best.ckpt [--checkpoint ...] [--blend 0.5 --blend 1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.common import STUDIES, save
from benchmarks.real_masks import best_class_weights, model_name, three_class_scores
from faceattr.data.images import load_rgb
from faceattr.inference.checkpoint_predictor import Predictor
from faceattr.inference.load import load_predictor
from faceattr.inference.priors import reweight

MIN_WIDTH = 32
COLUMNS = ["model", "blend", "rule", "half", "n", "macro_f1_3class", "recall_incorrect", "precision_incorrect"]


def adapt_batch_norm(predictor: Predictor, paths: list[str], blend: float, batch: int = 64) -> None:
    """Every BatchNorm's running mean and variance: `blend` x those measured on `paths` + the rest as trained."""
    layers = [m for m in predictor.module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    trained = [(m.running_mean.clone(), m.running_var.clone()) for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # a plain average over every batch, not a moving one
        m.train()
    with torch.no_grad():
        for start in range(0, len(paths), batch):
            images = [load_rgb(p) for p in paths[start : start + batch]]
            tensor = torch.from_numpy(np.stack([predictor.transform(image=im)["image"] for im in images]))
            predictor.module.predict_probs(tensor.to(predictor.device, memory_format=predictor.memory_format))
    for m, (mean, var) in zip(layers, trained, strict=True):
        m.running_mean.mul_(blend).add_(mean, alpha=1 - blend)
        m.running_var.mul_(blend).add_(var, alpha=1 - blend)
        m.eval()


def score_version(checkpoint: Path, crops: pd.DataFrame, blend: float) -> list[dict]:
    """One checkpoint with its statistics blended `blend` towards the dev half's (0: as trained), both rules."""
    predictor = load_predictor(checkpoint)
    assert isinstance(predictor, Predictor), "a checkpoint, not an ONNX file: its batch norms are changed here"
    if blend > 0:
        adapt_batch_norm(predictor, crops.loc[crops["split"] == "dev", "path"].tolist(), blend)
    preds = predictor.predict_paths(crops["path"].tolist(), batch_size=128)
    kept = crops.iloc[preds.indices]
    truth, halves = kept["mask"].to_numpy(), kept["split"].to_numpy()
    wide = (kept["box_x2"] - kept["box_x1"]).to_numpy() >= MIN_WIDTH
    shares = predictor.cfg.priors
    probs = preds.probs["mask"]  # with the recipe's rule (priors.target); Bayes' rule back to the shares trained on
    if "mask" in shares.target:
        probs = reweight(probs, shares.target["mask"], shares.trained["mask"])
    dev = (halves == "dev") & wide
    _, w_incorrect, w_bare = best_class_weights([(truth[dev], probs[dev])])
    rules = {"recipe's": preds.labels()["mask"], "chosen on dev": (probs * [1.0, w_incorrect, w_bare]).argmax(1)}
    rows = []
    for rule, labels in rules.items():
        for half in ("dev", "test"):
            pick = (halves == half) & wide
            scores = three_class_scores(truth[pick], labels[pick])
            rows.append(
                {
                    "model": model_name(checkpoint),
                    "blend": blend,
                    "rule": rule,
                    "half": half,
                    "n": int(pick.sum()),
                    **{k: scores[k] for k in COLUMNS[5:]},
                }
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crowd", type=Path, required=True, help="masks-crowd's crops (prepare boxes + crop)")
    parser.add_argument("--checkpoint", type=Path, action="append", required=True, help="a mask model (repeat)")
    parser.add_argument("--blend", type=float, action="append", help="repeat; default 0.5 and 1 (0 is always run)")
    parser.add_argument("--name", default="real_masks_crowd_adabn")
    args = parser.parse_args()
    crops = pd.read_csv(args.crowd)
    rows = []
    for checkpoint in args.checkpoint:
        for blend in [0.0, *(args.blend or [0.5, 1.0])]:
            rows += score_version(checkpoint, crops, blend)
            save(args.name, rows, COLUMNS, {"crowd": args.crowd.name, "min_width": MIN_WIDTH}, folder=STUDIES)


if __name__ == "__main__":
    main()
