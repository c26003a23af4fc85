"""Audit one cell of a confusion matrix by eye: numbered contact sheets of its images, then a tally of verdicts.

Why: a real set's labels can be coarser than the model's classes. masks-real labels every masked face "with_mask",
including masks worn under the nose, which the competition calls "worn incorrectly"; the rate "real worn called
incorrect" then counts some right answers as mistakes. Looking at every such call, and writing down what is seen,
splits the rate into real mistakes and label coarseness.

    # 1. sheets of every real worn mask (mask 0) called "incorrect" (1) by one model (images stay outside the repo)
    python -m docs.experiments.audit_sheets sheets /tmp/rm/RUN.predictions.csv --truth 0 --predicted 1 --out /tmp/audit
    # 2. look at /tmp/audit/sheet*.png, write /tmp/audit/verdicts.csv: number,verdict (one row per tile)
    # 3. tally: counts per verdict, as a share of the calls and of every image of that true class
    python -m docs.experiments.audit_sheets tally /tmp/rm/RUN.predictions.csv --truth 0 --predicted 1 \
        --verdicts /tmp/audit/verdicts.csv --name real_masks_audit
    # 4. later models on the same audited photos: what each now calls each verdict's photos
    python -m docs.experiments.audit_sheets recheck /tmp/rm/NEW.predictions.csv ... --out /tmp/audit \
        --verdicts /tmp/audit/verdicts.csv --name real_masks_audit_recheck
Several predictions CSVs in steps 1 and 3 audit the union of their cells once (each photo one tile), and the tally
gives a row per model and verdict. `--mislabelled "nose uncovered"` names the verdicts that say the set's label is
wrong: those photos leave the class, and `rate` is each verdict's calls over what is left of it (the rate the
class's true members see), so models are compared on the photos the audit vouches for.
Only counts are saved in docs/experiments/results (the images and the per-file verdicts are the data's, not ours).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

from benchmarks.common import STUDIES, save
from faceattr.labels import MASK_NAMES


def in_cell(frame: pd.DataFrame, truth: int, predicted: int) -> pd.DataFrame:
    """The rows of one predictions table (path, mask, predicted) with that truth and that prediction."""
    return frame[(frame["mask"] == truth) & (frame["predicted"] == predicted)]


def union_cell(predictions: dict[str, pd.DataFrame], truth: int, predicted: int) -> list[str]:
    """The photos of a cell in any of several models' predictions, each once (sorted: the tile numbers stay put
    whatever order the files are named in)."""
    return sorted(set().union(*(in_cell(frame, truth, predicted)["path"] for frame in predictions.values())))


def tally_models(
    index: pd.DataFrame,
    verdicts: pd.DataFrame,
    predictions: dict[str, pd.DataFrame],
    truth: int,
    predicted: int,
    mislabelled: tuple[str, ...] = (),
) -> list[dict]:
    """Per model and verdict: its calls in the cell, and `rate` = those calls over the class less the photos judged
    `mislabelled` (which any model may have called; an audit of the union sees each of them once)."""
    if sorted(verdicts["number"]) != list(index["number"]):
        raise SystemExit(f"the verdicts cover {len(verdicts)} tiles, the audit has {len(index)}: one row per tile")
    audited = index.merge(verdicts, on="number", validate="one_to_one")
    unknown = set(mislabelled) - set(audited["verdict"])
    if unknown:
        raise SystemExit(
            f"--mislabelled {sorted(unknown)} is no verdict; the verdicts are {sorted(set(audited['verdict']))}"
        )
    outside = int(audited["verdict"].isin(mislabelled).sum())
    rows = []
    for model, frame in predictions.items():
        calls = in_cell(frame, truth, predicted)[["path"]]
        seen = calls.merge(audited, on="path", how="left")
        if seen["verdict"].isna().any():
            raise SystemExit(f"{model} calls {seen.loc[seen['verdict'].isna(), 'path'].iloc[0]}, not in the audit")
        class_size = int((frame["mask"] == truth).sum())
        for verdict, n in seen["verdict"].value_counts().sort_index().items():
            rows.append(
                {
                    "model": model,
                    "verdict": verdict,
                    "calls": int(n),
                    "share_of_class": round(n / class_size, 4),
                    "rate": "" if verdict in mislabelled else round(n / (class_size - outside), 4),
                    "class_size": class_size,
                    "left_out": outside,
                }
            )
    return rows


def cell(predictions: Path, truth: int, predicted: int, sample: int = 0) -> tuple[pd.DataFrame, int]:
    """Rows of a predictions CSV (path, mask, predicted) with that truth and prediction (a fixed random `sample` of
    them when > 0, for cells too large to look at whole), and the truth's size."""
    frame = pd.read_csv(predictions)
    calls = in_cell(frame, truth, predicted)
    if 0 < sample < len(calls):
        calls = calls.sample(n=sample, random_state=0)
    return calls.reset_index(drop=True), int((frame["mask"] == truth).sum())


def contact_sheets(paths: list[str], out: Path, per_sheet: int = 24, columns: int = 6, tile: int = 180) -> list[Path]:
    """Numbered tiles (the number is the row in `index.csv`), `per_sheet` to a PNG."""
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"number": range(len(paths)), "path": paths}).to_csv(out / "index.csv", index=False)
    sheets = []
    for start in range(0, len(paths), per_sheet):
        chunk = paths[start : start + per_sheet]
        rows = -(-len(chunk) // columns)
        sheet = Image.new("RGB", (columns * tile, rows * tile))
        draw = ImageDraw.Draw(sheet)
        for k, path in enumerate(chunk):
            x, y = (k % columns) * tile, (k // columns) * tile
            sheet.paste(Image.open(path).convert("RGB").resize((tile, tile)), (x, y))
            draw.rectangle([x, y, x + 30, y + 16], fill="yellow")
            draw.text((x + 2, y + 2), str(start + k), fill="black")
        sheets.append(out / f"sheet{start // per_sheet}.png")
        sheet.save(sheets[-1])
    return sheets


def tally(verdicts: pd.DataFrame, calls: int, class_size: int) -> list[dict]:
    """One row per verdict: how many calls, their share of the calls and of every image of the true class (a
    sample's share of the class is not meaningful: read share_of_calls)."""
    if len(verdicts) != calls or sorted(verdicts["number"]) != list(range(calls)):
        raise SystemExit(f"the verdicts cover {len(verdicts)} tiles, the cell has {calls}: one row per tile, please")
    counts = verdicts["verdict"].value_counts()
    return [
        {
            "verdict": verdict,
            "calls": int(n),
            "share_of_calls": round(n / calls, 3),
            "share_of_class": round(n / class_size, 4),
        }
        for verdict, n in counts.items()
    ]


def recheck(index: pd.DataFrame, verdicts: pd.DataFrame, predictions: dict[str, pd.DataFrame]) -> list[dict]:
    """For each model and verdict, how many of the audited photos it calls each mask class: whether a change keeps
    flagging the masks seen under the nose while it stops flagging the ones seen worn correctly."""
    audited = index.merge(verdicts, on="number", validate="one_to_one")
    rows = []
    for model, frame in predictions.items():
        called = audited.merge(frame[["path", "predicted"]], on="path", how="left", validate="one_to_one")
        if called["predicted"].isna().any():
            missing = called.loc[called["predicted"].isna(), "path"].iloc[0]
            raise SystemExit(f"{model} has no prediction for audited photo {missing}: recheck needs the same crops")
        for verdict, group in called.groupby("verdict", sort=True):
            counts = group["predicted"].astype(int).value_counts()
            rows.append(
                {"model": model, "verdict": verdict, "photos": len(group)}
                | {f"called {name}": int(counts.get(k, 0)) for k, name in enumerate(MASK_NAMES)}
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["sheets", "tally", "recheck"])
    parser.add_argument("predictions", type=Path, nargs="+", help="*.predictions.csv from benchmarks.real_masks")
    parser.add_argument("--truth", type=int, help="sheets, tally: the cell's true class")
    parser.add_argument("--predicted", type=int, help="sheets, tally: the cell's predicted class")
    parser.add_argument(
        "--out", type=Path, help="sheets: where the PNGs and index.csv go (outside the repo); recheck: that folder"
    )
    parser.add_argument("--verdicts", type=Path, help="tally: CSV of number,verdict")
    parser.add_argument("--sample", type=int, default=0, help="look at this many of the cell (0 = all)")
    parser.add_argument("--name", default="real_masks_audit")
    parser.add_argument(
        "--mislabelled", action="append", default=[], help="tally, several models: a verdict that leaves the class"
    )
    args = parser.parse_args()
    frames = {path.name.removesuffix(".predictions.csv"): pd.read_csv(path) for path in args.predictions}
    if args.step == "recheck":
        if args.out is None or args.verdicts is None:
            parser.error("recheck needs --out (the audit's folder, with index.csv) and --verdicts")
        rows = recheck(pd.read_csv(args.out / "index.csv"), pd.read_csv(args.verdicts), frames)
        columns = ["model", "verdict", "photos", *(f"called {name}" for name in MASK_NAMES)]
        save(args.name, rows, columns, {"audit": str(args.verdicts.name)}, folder=STUDIES)
        return
    if args.truth is None or args.predicted is None:
        parser.error(f"{args.step} needs --truth and --predicted")
    if len(frames) > 1:  # one audit of the union of several models' cells
        if args.sample or args.out is None:
            parser.error("several predictions CSVs: --out names the audit's folder, and --sample is not offered")
        if args.step == "sheets":
            for sheet in contact_sheets(union_cell(frames, args.truth, args.predicted), args.out):
                print(sheet)
            return
        if args.verdicts is None:
            parser.error("tally needs --verdicts")
        index, verdicts = pd.read_csv(args.out / "index.csv"), pd.read_csv(args.verdicts)
        rows = tally_models(index, verdicts, frames, args.truth, args.predicted, tuple(args.mislabelled))
        settings = {"models": list(frames), "truth": args.truth, "predicted": args.predicted, "audited": len(index)}
        columns = ["model", "verdict", "calls", "share_of_class", "rate", "class_size", "left_out"]
        save(args.name, rows, columns, settings | {"mislabelled": args.mislabelled}, folder=STUDIES)
        return
    [predictions] = args.predictions
    calls, class_size = cell(predictions, args.truth, args.predicted, args.sample)
    if args.step == "sheets":
        if args.out is None:
            parser.error("sheets needs --out")
        for sheet in contact_sheets(list(calls["path"]), args.out):
            print(sheet)
        return
    if args.verdicts is None:
        parser.error("tally needs --verdicts")
    rows = tally(pd.read_csv(args.verdicts), len(calls), class_size)
    settings = {
        "predictions": predictions.name,
        "truth": args.truth,
        "predicted": args.predicted,
        "calls": len(calls),
        "sample": args.sample,
        "class_size": class_size,
    }
    save(args.name, rows, ["verdict", "calls", "share_of_calls", "share_of_class"], settings, folder=STUDIES)


if __name__ == "__main__":
    main()
