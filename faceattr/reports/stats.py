"""`faceattr stats`: what is in a manifest, as numbers, PNG plots and a Markdown report.

Counts per mask, gender, age bin and 18-class label; age histograms per gender; images per person; image sizes;
and the per-channel mean and std of the training images, computed in one streaming pass (sums of pixels and of
their squares in float64, so no image is held longer than it is read).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from rich.progress import Progress

from faceattr.atomic import save_figure, write_json, write_text
from faceattr.data.images import SkipReport, load_rgb
from faceattr.errors import ConfigError, ImageLoadError
from faceattr.labels import DEFAULT_OLD_THRESHOLD, GENDER_NAMES, MASK_NAMES, NUM_CLASSES, age_bin_names, class_name


@dataclass
class ChannelStats:
    """Running per-channel sums over every pixel seen, scaled to [0, 1] as Normalize(max_pixel_value=255) does."""

    pixels: int = 0
    total: np.ndarray = field(default_factory=lambda: np.zeros(3))
    squares: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def add(self, image: np.ndarray) -> None:
        values = image.reshape(-1, 3).astype(np.float64) / 255.0
        self.pixels += len(values)
        self.total += values.sum(0)
        self.squares += np.square(values).sum(0)

    @property
    def mean(self) -> np.ndarray:
        return self.total / max(self.pixels, 1)

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.squares / max(self.pixels, 1) - np.square(self.mean), 0.0))


@dataclass
class StatsResult:
    out_dir: Path
    summary: dict
    files: list[Path]


def image_pass(paths: list[str], skips: SkipReport, progress: bool = True) -> tuple[ChannelStats, pd.DataFrame]:
    """One read of every image: channel sums and (width, height); unreadable files go to `skips`."""
    channels = ChannelStats()
    sizes = []
    with Progress(disable=not progress) as bar:
        task = bar.add_task("reading images", total=len(paths))
        for path in paths:
            try:
                image = load_rgb(path)
            except ImageLoadError as e:
                skips.add(e)
            else:
                channels.add(image)
                sizes.append((path, image.shape[1], image.shape[0]))
            bar.advance(task)
    return channels, pd.DataFrame(sizes, columns=["path", "width", "height"])


def _counts(frame: pd.DataFrame, column: str, names: list[str]) -> pd.DataFrame:
    counts = frame[column].value_counts().reindex(range(len(names)), fill_value=0)
    table = pd.DataFrame({"class": range(len(names)), "name": names, "images": counts.to_numpy()})
    table["share"] = (table["images"] / max(len(frame), 1)).round(4)
    return table


def _bar_panel(ax, table: pd.DataFrame, title: str) -> None:
    ax.bar(table["name"].astype(str), table["images"], color="#4c72b0")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=60, labelsize=7)


# every file `dataset_stats` writes (or, for skipped.csv, replaces): `stats` refuses a folder holding any of them
STATS_FILES = (
    "counts.png",
    "age_by_gender.png",
    "images_per_person.png",
    "image_sizes.png",
    "skipped.csv",
    "report.md",
    "stats.json",
)


def dataset_stats(
    frame: pd.DataFrame,
    out_dir: str | Path,
    old_threshold: int = DEFAULT_OLD_THRESHOLD,
    max_images: int = 0,
    seed: int = 0,
    progress: bool = True,
) -> StatsResult:
    """Write STATS_FILES into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = frame[frame["source"] != "competition-eval"].reset_index(drop=True)
    ages = list(age_bin_names(old_threshold))
    tables = {
        "mask": _counts(frame, "mask", list(MASK_NAMES)),
        "gender": _counts(frame, "gender", list(GENDER_NAMES)),
        "age_bin": _counts(frame, "age_bin", ages),
        "label18": _counts(frame, "label18", [class_name(c, old_threshold) for c in range(NUM_CLASSES)]),
    }
    per_person = frame.groupby("person_id").size()
    files = [
        _plot_counts(tables, len(frame), out / "counts.png"),
        _plot_age_by_gender(frame, old_threshold, out / "age_by_gender.png"),
        _plot_images_per_person(per_person, out / "images_per_person.png"),
    ]
    paths = frame["path"].astype(str)
    if max_images and len(paths) > max_images:
        paths = paths.sample(n=max_images, random_state=seed)
    skips = SkipReport(out / "skipped.csv")
    (out / "skipped.csv").unlink(missing_ok=True)
    channels, sizes = image_pass(paths.tolist(), skips, progress)
    files.append(_plot_image_sizes(sizes, out / "image_sizes.png"))
    summary = {
        "images": len(frame),
        "people": len(per_person),
        "images_per_person": {
            "min": int(per_person.min()),
            "median": float(per_person.median()),
            "max": int(per_person.max()),
        },
        "images_read": len(sizes),
        "unreadable": len(skips),
        "mean": [round(float(v), 4) for v in channels.mean],
        "std": [round(float(v), 4) for v in channels.std],
        "sizes": sizes[["width", "height"]].value_counts().head(5).rename("images").reset_index().to_dict("records"),
        "counts": {task: table.to_dict("records") for task, table in tables.items()},
    }
    write_json(summary, out / "stats.json")
    files.append(out / "stats.json")
    files.append(_write_report(out, summary, tables))
    return StatsResult(out, summary, files)


def _saved(fig, path: Path) -> Path:
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def _plot_counts(tables: dict[str, pd.DataFrame], images: int, path: Path) -> Path:
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2), gridspec_kw={"width_ratios": [3, 2, 3, 12]})
    for ax, (task, table) in zip(axes, tables.items(), strict=True):
        _bar_panel(ax, table, f"{task} ({images} images)")
    return _saved(fig, path)


def _plot_age_by_gender(frame: pd.DataFrame, old_threshold: int, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = np.arange(0, 102, 3)
    for gender, name in enumerate(GENDER_NAMES):
        ax.hist(frame.loc[frame["gender"] == gender, "age"].dropna(), bins=bins, alpha=0.6, label=name)
    for threshold in (30, old_threshold):
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("age (years); dashed: age-bin thresholds")
    ax.set_ylabel("images")
    ax.legend()
    ax.set_title("age by gender")
    return _saved(fig, path)


def _plot_images_per_person(per_person: pd.Series, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(per_person, bins=np.arange(0.5, per_person.max() + 1.5), color="#55a868")
    ax.set_xlabel("images per person")
    ax.set_ylabel("people")
    ax.set_title(f"{len(per_person)} people")
    return _saved(fig, path)


def _plot_image_sizes(sizes: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(sizes["width"], sizes["height"], s=6, alpha=0.4)
    ax.set_xlabel("width (px)")
    ax.set_ylabel("height (px)")
    ax.set_title(f"image sizes ({len(sizes)} read)")
    return _saved(fig, path)


def _write_report(out: Path, summary: dict, tables: dict[str, pd.DataFrame]) -> Path:
    lines = [
        "# Dataset report",
        "",
        f"{summary['images']} images of {summary['people']} people "
        f"({summary['images_per_person']['min']}-{summary['images_per_person']['max']} images per person); "
        f"{summary['images_read']} read, {summary['unreadable']} unreadable (see skipped.csv).",
        "",
        f"Per-channel mean (RGB, 0..1): {summary['mean']}; std: {summary['std']}.",
        "",
        "![counts](counts.png)",
        "![age by gender](age_by_gender.png)",
        "![images per person](images_per_person.png)",
        "![image sizes](image_sizes.png)",
        "",
    ]
    for task, table in tables.items():
        lines += [f"## {task}", "", _markdown(table), ""]
    path = out / "report.md"
    write_text(path, "\n".join(lines))
    return path


def _markdown(table: pd.DataFrame) -> str:
    rows = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    rows += ["| " + " | ".join(map(str, r)) + " |" for r in table.itertuples(index=False)]
    return "\n".join(rows)


def write_normalization(config_path: str | Path, mean, std) -> None:
    """Put mean and std into a config's `augment` section (the normalisation every transform uses). Edited in
    place with a round-trip YAML parser, so the user's comments, key order and layout stay as they were."""
    from ruamel.yaml import YAML, YAMLError
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    path = Path(config_path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config to write mean/std into; give an existing YAML file")
    yaml = YAML()  # round trip: comments and order kept
    yaml.width = 4096  # long lines are not re-wrapped
    original = path.read_text(encoding="utf-8")
    try:
        doc = yaml.load(original)
    except YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML, left as it was ({e}); fix it or give another config") from None
    kept = ""  # an empty file, or one of comments alone, loads as nothing: its comments stay above the new section
    if doc is None:
        kept, doc = (original.rstrip("\n") + "\n" if original.strip() else ""), CommentedMap()
    if isinstance(doc, dict) and doc.get("augment") is None:  # absent, or `augment:` with nothing under it
        doc["augment"] = CommentedMap()
    if not isinstance(doc, dict) or not isinstance(doc["augment"], dict):
        raise ConfigError(f"{path}: the config or its augment section is not a mapping, left as it was; fix it")
    for key, values in (("mean", mean), ("std", std)):
        flow = CommentedSeq(round(float(v), 4) for v in values)
        flow.fa.set_flow_style()  # [0.5, 0.4, 0.3], as the configs write them
        doc["augment"][key] = flow
    text = io.StringIO()
    yaml.dump(doc, text)
    write_text(path, kept + text.getvalue())
