"""Why gender fails where it fails: the held-out faces' gender errors against what can be measured of each face.

Reads the per-face answers `benchmarks.robustness --predictions` wrote for one model and row (as published), joins
each face's manifest labels and the landmarks robustness found, and tabulates the error rate and the calibration
(ECE) by age, race, sex, head roll, face size in the crop, brightness, colour (grayscale photos), and the model's
confidence. A second table says what answering only above a confidence gives each group (the share of faces
answered, and their accuracy): the tool for children's gender, where the model is often unsure. A contact sheet of
the most confident mistakes goes to --sheet (outside the repository: the faces are research-only), for looking at
what the numbers cannot say (hair, make-up, glasses, children).

    python -m benchmarks.robustness --model preset=RUN/best.ckpt --predictions --work /tmp/rb ...
    python -m docs.experiments.gender_errors /tmp/rb/robustness-preset--as-published.csv \
        --landmarks /tmp/rb/landmarks-0-4281-0.json --sheet /tmp/gender_mistakes.jpg
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from benchmarks.common import STUDIES, save, utkface_union
from benchmarks.robustness import calibration_error, wilson

FACTORS = {  # factor -> (column, bucket edges or None for categories)
    "age": ("age", [0, 3, 7, 13, 20, 30, 45, 60, 70, 120]),
    "race": ("race", None),
    "sex": ("sex", None),
    "head roll (degrees)": ("roll", [0, 5, 10, 20, 90]),
    "eye distance (share of the crop)": ("eye_share", [0, 0.2, 0.25, 0.3, 0.35, 1]),
    "brightness (mean, 0-255)": ("brightness", [0, 70, 100, 130, 160, 256]),
    "colour": ("colour", None),
    "model confidence": ("confidence", [0.5, 0.7, 0.9, 0.99, 1.0001]),
}


def measured(frame: pd.DataFrame, marks: list) -> pd.DataFrame:
    """Each face's roll, eye distance (share of the crop's width), brightness and colour."""
    rolls, shares, light, colour = [], [], [], []
    for path, mark in zip(frame["path"], marks, strict=True):
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        light.append(image.mean())
        colour.append("grayscale" if np.abs(image - image.mean(2, keepdims=True)).mean() < 2 else "colour")
        if mark is None:
            rolls.append(np.nan)
            shares.append(np.nan)
            continue
        eyes = np.asarray(mark[0])[:2]
        dx, dy = eyes[1] - eyes[0]
        rolls.append(abs(np.degrees(np.arctan2(dy, dx))))
        shares.append(float(np.hypot(dx, dy)) / image.shape[1])
    return frame.assign(roll=rolls, eye_share=shares, brightness=light, colour=colour)


def table(frame: pd.DataFrame) -> list[dict]:
    rows = []
    for factor, (column, edges) in FACTORS.items():
        keys = frame[column] if edges is None else pd.cut(frame[column], edges, right=False)
        for key, part in frame.groupby(keys, sort=True, observed=True):  # bucket order for cut numbers
            if len(part) < 20:
                continue
            low, high = wilson(int(part["wrong"].sum()), len(part))
            rows.append(
                {
                    "factor": factor,
                    "group": str(key),
                    "n": len(part),
                    "error_rate": round(float(part["wrong"].mean()), 4),
                    "error_ci": f"{low:.3f}-{high:.3f}",
                    "ece": round(calibration_error(~part["wrong"].to_numpy(), part["confidence"].to_numpy()), 4),
                    "female_called_male": int(((part["gender_true"] == 1) & part["wrong"]).sum()),
                    "male_called_female": int(((part["gender_true"] == 0) & part["wrong"]).sum()),
                }
            )
    return rows


SELECTIVE_GROUPS = {  # group -> which faces
    "every face": lambda t: t["age"] >= 0,
    "children (<13)": lambda t: t["age"] < 13,
    "over 70": lambda t: t["age"] >= 70,
    "Asian": lambda t: t["race"] == "Asian",
}


def selective(frame: pd.DataFrame, thresholds=(0.5, 0.7, 0.9, 0.99)) -> list[dict]:
    """Per group and confidence threshold: the share of faces answered (confidence >= it) and their accuracy with its
    95 % interval; what a user who leaves unsure faces unlabelled gets."""
    rows = []
    for group, pick in SELECTIVE_GROUPS.items():
        part = frame[pick(frame)]
        for threshold in thresholds:
            answered = part[part["confidence"] >= threshold]
            right = int((~answered["wrong"]).sum())
            low, high = wilson(right, len(answered))
            rows.append(
                {
                    "group": group,
                    "n": len(part),
                    "min_confidence": threshold,
                    "answered": round(len(answered) / len(part), 4),
                    "accuracy": round(right / len(answered), 4) if len(answered) else float("nan"),
                    "accuracy_ci": f"{low:.3f}-{high:.3f}",
                }
            )
    return rows


def contact_sheet(mistakes: pd.DataFrame, path: Path, count: int = 48, tile: int = 120) -> None:
    """The most confident mistakes, each captioned with the truth, the answer's confidence and the age."""
    picked = mistakes.head(count)
    columns = 8
    sheet = Image.new("RGB", (columns * tile, -(-len(picked) // columns) * (tile + 16)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, row in enumerate(picked.itertuples()):
        x, y = (k % columns) * tile, (k // columns) * (tile + 16)
        sheet.paste(Image.open(row.path).convert("RGB").resize((tile, tile)), (x, y))
        truth = "F" if row.gender_true == 1 else "M"
        draw.text((x + 2, y + tile + 2), f"{truth} {row.confidence:.2f} {row.age:.0f}y {row.race[:5]}", fill="black")
    sheet.save(path, quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("answers", type=Path, help="a robustness --predictions CSV (one model, as published)")
    parser.add_argument("--landmarks", type=Path, required=True, help="the robustness work folder's landmarks JSON")
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-robustness"))
    parser.add_argument("--sheet", type=Path, default=None, help="contact sheet of the worst mistakes (not in git)")
    parser.add_argument("--name", default="gender_errors")
    args = parser.parse_args()
    answers = pd.read_csv(args.answers)
    _, union = utkface_union(args.work)
    frame = answers.merge(union[["path", "gender", "age", "race"]], on="path", suffixes=("_pred", "_true"))
    marks = json.loads(args.landmarks.read_text())
    if len(marks) != len(answers):
        raise SystemExit(f"{args.landmarks} holds {len(marks)} faces, the answers {len(answers)}: not the same run")
    frame = measured(frame, marks).assign(
        wrong=lambda t: t["gender_pred"] != t["gender_true"],
        confidence=lambda t: t["gender_confidence"],
        sex=lambda t: np.where(t["gender_true"] == 1, "female", "male"),
    )
    rows = table(frame)
    settings = {"answers": str(args.answers), "faces": len(frame)}
    save(args.name, rows, list(rows[0]), settings, folder=STUDIES)
    answered = selective(frame)
    save(f"{args.name}_selective", answered, list(answered[0]), settings, folder=STUDIES)
    if args.sheet:
        worst = frame[frame["wrong"]].sort_values("confidence", ascending=False)
        contact_sheet(worst, args.sheet)
        print(f"{len(worst)} mistakes; the {min(48, len(worst))} most confident: {args.sheet}")


if __name__ == "__main__":
    main()
