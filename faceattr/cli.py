"""The `faceattr` command line (Typer). Each command is a thin call into the module that does the work."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from faceattr.errors import ConfigError, FaceAttrError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Train, evaluate and serve face-attribute classifiers: mask state, gender and age.",
    pretty_exceptions_enable=False,
)
console = Console()

Overrides = Annotated[list[str] | None, typer.Argument(help="config overrides, e.g. train.epochs=5 optim.lr=3e-4")]
ConfigPath = Annotated[Path | None, typer.Option("--config", "-c", help="YAML config (see configs/)")]
Also = Annotated[list[Path] | None, typer.Option("--also", help="more models to ensemble with (repeat the option)")]
Voting = Annotated[str, typer.Option(help="ensemble voting: soft (mean probabilities) or hard (majority)")]
TTA = Annotated[str | None, typer.Option(help="test-time augmentation, e.g. hflip,shift,scale,brightness")]


def _tta(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value is not None else None


def _fail(error: Exception) -> None:
    console.print(f"[bold red]error:[/] {error}")
    raise typer.Exit(code=2)


@app.command()
def labels(
    old_threshold: Annotated[int, typer.Option(help="age at or over which a person is 'old'")] = 60,
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
    source: Annotated[str, typer.Argument(help="competition | utkface | csv | imdb-wiki | appa-real | folder")],
    roots: Annotated[
        list[Path], typer.Argument(help="dataset root(s) of that layout, or the CSV / .mat file(s); several are joined")
    ],
    out: Annotated[Path, typer.Option(help="manifest to write (.csv or .parquet)")] = Path("data/manifest.csv"),
    folds: Annotated[int, typer.Option(help="person-level folds to make and save")] = 5,
    split_seed: Annotated[int, typer.Option(help="seed of the split")] = 42,
    old_threshold: Annotated[int, typer.Option(help="age at or over which a person is 'old'")] = 60,
    skip_bad_names: Annotated[bool, typer.Option(help="utkface: skip malformed file names")] = False,
    skip_bad_folders: Annotated[bool, typer.Option(help="competition: leave out (and list) bad folders")] = False,
    corrections: Annotated[Path | None, typer.Option(help="CSV of label fixes: path,field,value")] = None,
    min_face_score: Annotated[float, typer.Option(help="imdb-wiki: drop faces scored below this")] = 1.0,
    keep_second_face: Annotated[bool, typer.Option(help="imdb-wiki: keep photos with a second face")] = False,
    min_age: Annotated[int, typer.Option(help="imdb-wiki: youngest age kept")] = 0,
    max_age: Annotated[int, typer.Option(help="imdb-wiki: oldest age kept")] = 100,
    classes: Annotated[
        str | None, typer.Option(help="folder: class folder -> mask label, e.g. with_mask=wear,bare=not_wear")
    ] = None,
    drop_duplicates: Annotated[
        bool | None,
        typer.Option(
            help="drop byte-identical images (all copies when their labels disagree); default on, except for "
            "competition data, whose 7-photo persons the data check reports instead"
        ),
    ] = None,
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
    report_checks(done.checks, out, done.problems)
    if done.eval_manifest is not None:
        console.print(f"wrote eval manifest {done.eval_manifest} ({done.eval_images} images)")


def report_checks(report, manifest: Path, problems: list[str] | None = None) -> Path:
    """Print the data-check findings and write them beside the manifest."""
    lines = [f"- skipped: {p}" for p in problems or []] + report.lines()
    path = manifest.with_name(manifest.name + ".checks.md")
    path.write_text("# Data checks\n\n" + ("\n".join(lines) or "No problems found.") + "\n")
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
    folds: Annotated[int, typer.Option(help="the saved split to check for cross-fold duplicates")] = 5,
    split_seed: int = 42,
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
def train(
    config: ConfigPath = None,
    overrides: Overrides = None,
    resume: Annotated[bool, typer.Option("--resume", help="continue the run from its last.ckpt")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing run folder")] = False,
) -> None:
    """Train a multi-task model: faceattr train -c configs/mask.yaml train.epochs=5 model.backbone=resnet18"""
    from faceattr.config import load_config
    from faceattr.training import train as run_training

    try:
        cfg = load_config(config, overrides)
        if cfg.per_task:
            from faceattr.experiments import train_per_task

            results = train_per_task(cfg, overwrite=overwrite, resume=resume)
            for task, r in results.items():
                console.print(f"{task}: {r.best_checkpoint} ({r.best_score})")
            models = " --also ".join(str(r.best_checkpoint) for r in results.values())
            console.print(f"combine them: faceattr evaluate {models}")
            return
        result = run_training(cfg, overwrite=overwrite, resume=resume)
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"run folder: [bold]{result.run_dir}[/]")
    console.print(f"best checkpoint: {result.best_checkpoint} ({cfg.train.monitor} = {result.best_score})")
    if result.skipped:
        console.print(f"[yellow]{result.skipped} unreadable image(s) skipped; see {result.run_dir / 'skipped.csv'}[/]")


def print_metrics(metrics: dict, title: str) -> None:
    table = Table(title=title)
    for col in ("task", "macro F1", "accuracy", "images"):
        table.add_column(col, justify="right" if col != "task" else "left")
    for task, m in metrics.items():
        if "f1" in m:
            table.add_row(task, f"{m['f1']:.4f}", f"{m['accuracy']:.4f}", str(m["n"]))
    console.print(table)
    if "age" in metrics and metrics["age"]["n"]:
        age = metrics["age"]
        extra = f", MAE vs apparent age {age['mae_apparent']:.2f}" if "mae_apparent" in age else ""
        console.print(f"exact age: MAE {age['mae']:.2f} years, CS@5 {age['cs5']:.3f}{extra} ({age['n']} images)")


@app.command()
def cv(
    config: ConfigPath = None,
    overrides: Overrides = None,
    folds: Annotated[str | None, typer.Option(help="folds to run, e.g. 0,2 (default: all)")] = None,
    full: Annotated[bool, typer.Option("--full", help="then train on all data for the median best epoch")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace existing fold run folders")] = False,
) -> None:
    """Cross-validation: train every fold, report each and mean +- std, best epochs, out-of-fold predictions."""
    from faceattr.config import load_config
    from faceattr.experiments import cross_validate

    try:
        cfg = load_config(config, overrides)
        chosen = [int(f) for f in folds.split(",")] if folds else None
        result = cross_validate(cfg, chosen, overwrite=overwrite, full_data=full)
    except (FaceAttrError, ValueError) as e:
        _fail(e)
        return
    table = Table(title=f"cross-validation ({len(result.folds)} folds)")
    columns = ["fold", "best_epoch", *[c for c in result.folds.columns if c.startswith(("f1_", "age_mae"))]]
    for col in columns:
        table.add_column(col, justify="right")
    for _, row in result.folds.iterrows():
        table.add_row(*[f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns])
    table.add_row("mean", "", *[f"{result.summary['mean'][c]:.4f}" for c in columns[2:]])
    table.add_row("std", "", *[f"{result.summary['std'][c]:.4f}" for c in columns[2:]])
    console.print(table)
    console.print(
        f"median best epoch {result.summary['median_best_epoch']}; written to [bold]{result.out_dir}[/]"
        " (folds.csv, cv_summary.json, oof_predictions.csv)"
    )
    if full:
        console.print(f"full-data model: {result.summary['full_data_checkpoint']}")


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="a .ckpt written by faceattr train (or .onnx)")],
    manifest: Annotated[str | None, typer.Option(help="labelled manifest (default: the run's validation fold)")] = None,
    fold: Annotated[int | None, typer.Option(help="score this fold of the manifest")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder (default: <run>/eval)")] = None,
    split: Annotated[
        str | None, typer.Option(help="score the rows of this `split` value (e.g. APPA-REAL test)")
    ] = None,
    also: Also = None,
    voting: Voting = "soft",
    tta: TTA = None,
    by: Annotated[
        str | None,
        typer.Option(help="per-group report by manifest columns, e.g. race,gender,age_decade or race+gender"),
    ] = None,
    min_group: Annotated[int, typer.Option(help="groups with fewer held-out faces are flagged")] = 30,
) -> None:
    """Macro F1 and accuracy per task and for 18 classes, age MAE, per-class report, confusion-matrix PNGs, per-group
    tables and charts (--by), and model_card.md."""
    from faceattr.reports.evaluate import evaluate as run_evaluation

    try:
        models = [checkpoint, *also] if also else checkpoint
        groups = [g.strip() for g in by.split(",") if g.strip()] if by else None
        result = run_evaluation(
            models, manifest, fold, out, split=split, voting=voting, tta=_tta(tta), by=groups, min_group=min_group
        )
    except FaceAttrError as e:
        _fail(e)
        return
    print_metrics(result.metrics, f"evaluation of {checkpoint}")
    console.print(
        f"report: [bold]{result.out_dir}[/] (metrics.json, per_class.csv, confusion_*.png, model_card.md"
        + (", groups.md, groups_*.png)" if by else ")")
    )


def _faces_with(faces_cfg, **changes):
    """A copy of the faces settings with `changes`, checked like the config's."""
    from dataclasses import replace

    from faceattr.config import Config, validate

    updated = replace(faces_cfg, **changes)
    validate(Config(faces=updated))
    return updated


def _with_margins(faces_cfg, text: str, unit: str):
    """A copy of the faces settings with margins parsed from 'L,R,T,B'."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        example = "e.g. 0.06,0.1,-0.12,0.02"
        raise ConfigError(f"--margins {text!r}: give 4 numbers, left,right,top,bottom ({example})") from None
    return _faces_with(faces_cfg, margins=values, margin_unit=unit)


def _print_stages(clock, photos: int) -> None:
    from rich.table import Table

    table = Table("stage", "seconds", "ms / photo", "share", title=f"time per stage, {photos} photo(s)")
    for row in clock.rows(photos):
        table.add_row(row["stage"], f"{row['seconds']:.3f}", f"{row['ms_per_photo']:.1f}", f"{row['share']:.0%}")
    console.print(table)


@app.command()
def predict(
    args: Annotated[list[Path], typer.Argument(help="CHECKPOINT then images, folders or .txt lists (or --onnx)")],
    onnx: Annotated[Path | None, typer.Option(help="run this exported .onnx model instead of a checkpoint")] = None,
    out: Annotated[Path, typer.Option(help="predictions CSV")] = Path("predictions.csv"),
    faces: Annotated[
        bool | None,
        typer.Option("--faces/--no-faces", help="classify every detected face (default: if trained on crops)"),
    ] = None,
    draw: Annotated[Path | None, typer.Option(help="with --faces: save copies with boxes and labels here")] = None,
    margins: Annotated[
        str | None,
        typer.Option(help="with --faces: crop margins L,R,T,B instead of the checkpoint's (from faceattr framing)"),
    ] = None,
    margin_unit: Annotated[str, typer.Option(help="unit of --margins: fraction (of the face box) or px")] = "fraction",
    batch_size: int = 64,
    also: Also = None,
    voting: Voting = "soft",
    tta: TTA = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out (and its .skipped.csv)")] = False,
    profile: Annotated[bool, typer.Option(help="with --faces: print the time spent per stage")] = False,
    detect_max_side: Annotated[
        int | None,
        typer.Option(help="with --faces: detect on photos shrunk to this longer side (faster; misses small faces)"),
    ] = None,
    every: Annotated[int, typer.Option(help="videos: use every N-th frame")] = 1,
    fps: Annotated[float | None, typer.Option(help="videos: use about this many frames per second")] = None,
) -> None:
    """Predict mask, gender and age; one CSV row per face (or per image with --no-faces), with probabilities.
    Videos (.mp4, .mov, .avi, .mkv, ...) get every face tracked: OUT.frames.csv (a row per frame and face) and
    OUT.tracks.csv (a row per track, probabilities averaged over its frames).

    faceattr predict runs/x/checkpoints/best.ckpt photos/   |   faceattr predict --onnx model.onnx photos/
    """
    from faceattr.data.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES
    from faceattr.inference.outputs import fresh_skip_report, predictions_table
    from faceattr.inference.predictor import collect_images, load_predictor
    from faceattr.inference.profile import StageClock

    clock = StageClock()
    try:
        model, inputs = (onnx, args) if onnx else (args[0], args[1:])
        if not inputs:
            raise FaceAttrError("no images given: faceattr predict CHECKPOINT IMAGES_OR_FOLDERS...")
        predictor = load_predictor([model, *also] if also else model, voting=voting, tta=_tta(tta))
        if margins is not None:
            predictor.cfg.faces = _with_margins(predictor.cfg.faces, margins, margin_unit)
            faces = True if faces is None else faces
        paths = collect_images(inputs, IMAGE_SUFFIXES + VIDEO_SUFFIXES)
        videos = [p for p in paths if Path(p).suffix.lower() in VIDEO_SUFFIXES]
        paths = [p for p in paths if p not in set(videos)]
        skips = fresh_skip_report(out, overwrite)
        faces = faces if faces is not None else predictor.cfg.faces.trained_on_crops
        if videos:
            _predict_videos(predictor, videos, out, every, fps, draw, skips, overwrite)
        if not paths:
            table = None
        elif faces:
            from faceattr.faces.detect import FaceDetector
            from faceattr.inference.in_the_wild import predict_faces

            if detect_max_side is not None:
                predictor.cfg.faces = _faces_with(predictor.cfg.faces, detect_max_side=detect_max_side)
            detector = FaceDetector(predictor.cfg.faces)
            clock = StageClock()  # from here: model and detector loading are start-up, not per-photo time
            table = predict_faces(predictor, paths, detector, skips, draw, batch_size, clock)
        else:
            table = predictions_table(predictor.predict_paths(paths, batch_size=batch_size, skips=skips))
    except FaceAttrError as e:
        _fail(e)
        return
    if table is None:
        _report_skips(skips)
        return
    if table.empty:
        _fail(FaceAttrError(f"no image could be read ({len(skips)} skipped); the reasons are in {skips.csv_path}"))
    from faceattr.atomic import atomic_path

    with clock.stage("write"), atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    console.print(f"wrote {len(table)} prediction row(s) for {len(paths) - len(skips)} image(s) to [bold]{out}[/]")
    if profile:
        _print_stages(clock, len(paths))
    if draw and faces:
        console.print(f"drawn copies in {draw}")
    _report_skips(skips)


def _report_skips(skips) -> None:
    if len(skips):
        console.print(f"[yellow]{len(skips)} file(s) skipped or cut short; reasons in {skips.csv_path}[/]")


def _predict_videos(
    predictor, videos: list[str], out: Path, every: int, fps: float | None, draw, skips, overwrite: bool
) -> None:
    """Every face of the sampled frames, tracked; two CSVs beside `out` (see faceattr/inference/video.py)."""
    from rich.progress import Progress, TextColumn

    from faceattr.atomic import atomic_path
    from faceattr.faces.detect import FaceDetector
    from faceattr.inference.outputs import video_outputs
    from faceattr.inference.video import predict_videos

    columns = (*Progress.get_default_columns(), TextColumn("{task.completed} frames"))
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"{len(videos)} video(s)", total=None)
        frames, tracks = predict_videos(
            predictor,
            videos,
            FaceDetector(predictor.cfg.faces),
            every,
            fps,
            draw,
            skips,
            progress=lambda n: bar.advance(task, n),
            overwrite=overwrite,
        )
        speed = bar.tasks[0].speed
    for table, path in zip((frames, tracks), video_outputs(out), strict=True):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
    rate = f" at {speed:.1f} frames/s" if speed else ""
    console.print(
        f"videos: {len(frames)} face row(s) in {video_outputs(out)[0]}, {len(tracks)} track(s) in "
        f"{video_outputs(out)[1]}{rate}" + (f"; drawn videos in {draw}" if draw else "")
    )


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="a .ckpt written by faceattr train")],
    out: Annotated[Path, typer.Option(help="the .onnx file; a .json sidecar is written beside it")] = Path(
        "model.onnx"
    ),
    format: Annotated[str, typer.Option("--format", help="onnx")] = "onnx",
    opset: int = 17,
) -> None:
    """Export a checkpoint to ONNX (dynamic batch, one probability output per head) with a JSON sidecar."""
    from faceattr.inference.export import export_onnx

    try:
        if format != "onnx":
            raise FaceAttrError(f"unknown export format '{format}'; onnx is supported")
        model_path, sidecar = export_onnx(checkpoint, out, opset)
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"wrote [bold]{model_path}[/] and {sidecar}")


@app.command()
def serve(
    checkpoint: Annotated[Path, typer.Option(help="a .ckpt, or an exported .onnx (runs on onnxruntime)")],
    host: str = "127.0.0.1",
    port: int = 8000,
    max_upload_mb: Annotated[float, typer.Option(help="largest accepted upload")] = 10.0,
    max_pixels: Annotated[int, typer.Option(help="largest accepted image, in pixels")] = 40_000_000,
) -> None:
    """Serve a page and an HTTP API (POST /predict, GET /health, GET /model) for trying a model."""
    import uvicorn

    from faceattr.inference.predictor import load_predictor
    from faceattr.serve.app import create_app

    try:
        app_ = create_app(
            load_predictor(checkpoint), max_upload_bytes=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels
        )
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"serving {checkpoint} on http://{host}:{port}/")
    uvicorn.run(app_, host=host, port=port, log_level="warning")


def _derived_outputs(manifest: Path, out: Path | None, tag: str) -> tuple[Path, Path]:
    """The manifest a command writes (default <manifest><tag>.<ext>) and its skipped-images report, cleared."""
    out = out or manifest.with_name(manifest.stem + tag + manifest.suffix)
    skips_file = out.with_name(out.stem + ".skipped.csv")
    skips_file.unlink(missing_ok=True)
    return out, skips_file


@app.command()
def crop(
    manifest: Annotated[Path, typer.Argument(help="manifest whose images to crop")],
    cache: Annotated[Path, typer.Option(help="crop cache folder (reused by later runs)")] = Path("data/crops"),
    out: Annotated[Path | None, typer.Option(help="manifest of the crops (default: <manifest>.crops.<ext>)")] = None,
    config: ConfigPath = None,
    overrides: Overrides = None,
) -> None:
    """Detect and crop every face of a manifest (MTCNN, margins, fallback crop), cached and resumable."""
    from faceattr.config import load_config
    from faceattr.data.images import SkipReport
    from faceattr.data.manifest import read_manifest, write_manifest
    from faceattr.faces.crop import crop_manifest
    from faceattr.labels import MASK_NAMES

    try:
        cfg = load_config(config, overrides)
        df = read_manifest(manifest)
        out, skips_file = _derived_outputs(manifest, out, ".crops")
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
    if result.skipped:
        console.print(f"[yellow]{result.skipped} unreadable image(s) skipped; see {skips_file}[/]")
    console.print(f"wrote [bold]{out}[/]")


@app.command()
def framing(
    manifest: Annotated[Path, typer.Argument(help="manifest of images that are already face crops (e.g. UTKFace)")],
    out: Annotated[Path | None, typer.Option(help="manifest to write (default: <manifest>.framed.<ext>)")] = None,
    limit: Annotated[int, typer.Option(help="random images measured (0 = all)")] = 500,
    seed: Annotated[int, typer.Option(help="which random images")] = 0,
    landmarks: Annotated[
        bool,
        typer.Option(
            help="detect every image (--limit ignored) and record face boxes and landmarks, which "
            "augment.synthetic_mask_p needs to draw masks on these faces"
        ),
    ] = False,
    config: ConfigPath = None,
    overrides: Overrides = None,
) -> None:
    """Measure how a pre-cropped dataset frames its faces, so models trained on it crop photos the same way."""
    from faceattr.config import load_config
    from faceattr.data.images import SkipReport
    from faceattr.data.manifest import read_manifest, write_manifest
    from faceattr.faces.framing import SIDES, face_points, measure_framing

    try:
        cfg = load_config(config, overrides)
        df = read_manifest(manifest)
        out, skips_file = _derived_outputs(manifest, out, ".framed")
        found: dict | None = {} if landmarks else None
        measured = measure_framing(df, cfg.faces, 0 if landmarks else limit, seed, SkipReport(skips_file), found=found)
        if found is not None:
            df = face_points(df, found)
            console.print(f"face boxes and landmarks recorded for {len(found)} of {len(df)} images")
        df["crop_settings"] = measured.crop_settings(cfg.faces)
        write_manifest(df, out)
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
    size: Annotated[int, typer.Option(help="square side in pixels; at least the data.image_size you train at")] = 160,
    out: Annotated[Path | None, typer.Option(help="cache file (default: <manifest>.decoded-<size>.npy)")] = None,
) -> None:
    """Decode and resize every image once into a memory-mapped file; train with data.decoded_cache=FILE."""
    from faceattr.data.decoded_cache import build_cache
    from faceattr.data.images import SkipReport
    from faceattr.data.manifest import read_manifest

    try:
        out = out or manifest.with_name(f"{manifest.stem}.decoded-{size}.npy")
        skips_file = out.with_name(out.stem + ".skipped.csv")
        skips_file.unlink(missing_ok=True)
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
    max_images: Annotated[int, typer.Option(help="images read for sizes and mean/std (0 = all)")] = 0,
    old_threshold: Annotated[int, typer.Option(help="age at or over which a person is 'old'")] = 60,
    write_config: Annotated[
        Path | None, typer.Option(help="put the measured mean/std into this config's augment section")
    ] = None,
) -> None:
    """Counts per class, age by gender, images per person, image sizes, per-channel mean/std; plots + report."""
    from faceattr.data.manifest import read_manifest
    from faceattr.reports.stats import dataset_stats, write_normalization

    try:
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


@app.command()
def cam(
    checkpoint: Annotated[Path, typer.Argument(help="a .ckpt written by faceattr train")],
    images: Annotated[list[Path] | None, typer.Argument(help="images to explain")] = None,
    worst: Annotated[int, typer.Option(help="also explain the N worst-classified validation images")] = 0,
    heads: Annotated[str | None, typer.Option(help="heads to explain, e.g. mask,gender (default: all)")] = None,
    out: Annotated[Path, typer.Option(help="folder for the side-by-side PNGs")] = Path("cam"),
) -> None:
    """Grad-CAM heatmaps per head (grad-cam package): the photo beside one overlay per head."""
    from faceattr.reports.cam import cam_sheets

    try:
        chosen = [h.strip() for h in heads.split(",")] if heads else None
        results = cam_sheets(checkpoint, [str(p) for p in images or []], worst, out, chosen)
    except FaceAttrError as e:
        _fail(e)
        return
    for r in results:
        console.print(f"{r.sheet}: {'; '.join(r.labels.values())}")


@app.command()
def tune(
    config: ConfigPath = None,
    overrides: Overrides = None,
    trials: Annotated[
        int | None, typer.Option(help="finished trials wanted in the study (default: tune.trials)")
    ] = None,
) -> None:
    """Optuna study over tune.space with pruning; resumable from its SQLite file; writes best.yaml."""
    from faceattr.config import load_config
    from faceattr.tune import tune as run_tune

    try:
        result = run_tune(load_config(config, overrides), trials)
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"{result.finished} trials finished; best {result.best_value:.4f} with {result.best_params}")
    console.print(f"best config: [bold]{result.best_config}[/]  (faceattr train -c {result.best_config})")


@app.command("synth-masks")
def synth_masks(
    manifest: Annotated[Path, typer.Argument(help="manifest of unmasked faces with gender and age (e.g. UTKFace)")],
    out: Annotated[Path, typer.Option(help="dataset root to write (competition layout under train/images)")] = Path(
        "data/synth_masks"
    ),
    persons: Annotated[int, typer.Option(help="people (one photo each) to turn into 7 images")] = 500,
    seed: Annotated[int, typer.Option(help="seed of the choice of people, masks and wears")] = 0,
    preview: Annotated[int, typer.Option(help="images on the contact sheet <out>/preview.png (0 = none)")] = 24,
    overwrite: Annotated[bool, typer.Option(help="replace a dataset already at --out")] = False,
) -> None:
    """Draw masks on unmasked faces: mask1..5, incorrect_mask and normal per person, readable by `prepare`."""
    from faceattr.data.manifest import read_manifest
    from faceattr.data.sources import read_competition
    from faceattr.synth.dataset import contact_sheet, synthesize_dataset

    try:
        result = synthesize_dataset(read_manifest(manifest), out, persons, seed, overwrite=overwrite)
        console.print(f"{result.persons} people x 7 images written under [bold]{out / 'train' / 'images'}[/]")
        if result.skipped:
            console.print(
                f"[yellow]{result.skipped} photo(s) skipped (no face found or unreadable); see {out}/skipped.csv[/]"
            )
        if preview:
            sheet = contact_sheet(read_competition(out), out / "preview.png", preview, seed)
            console.print(f"preview: {sheet}")
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"next: faceattr prepare competition {out} --out data/synth_masks.csv")


@app.command()
def submit(
    checkpoint: Annotated[Path, typer.Argument(help="a .ckpt written by faceattr train, or an exported .onnx")],
    eval_dir: Annotated[Path, typer.Argument(help="the competition's eval/ folder (info.csv + images/)")],
    out: Annotated[Path, typer.Option(help="submission CSV (info.csv with ans filled)")] = Path("submission.csv"),
    faces: Annotated[
        bool | None,
        typer.Option("--faces/--no-faces", help="crop the largest face first (default: if trained on crops)"),
    ] = None,
    also: Also = None,
    voting: Voting = "soft",
    tta: TTA = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out (and its .skipped.csv)")] = False,
) -> None:
    """Fill the competition's info.csv `ans` column with 18-class predictions."""
    from faceattr.inference.outputs import submission
    from faceattr.inference.predictor import load_predictor

    try:
        predictor = load_predictor([checkpoint, *also] if also else checkpoint, voting=voting, tta=_tta(tta))
        table = submission(predictor, eval_dir, out, crop_faces=faces, overwrite=overwrite)
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"wrote submission [bold]{out}[/] ({len(table)} rows)")


@app.command()
def demo(
    workdir: Annotated[Path | None, typer.Option("--dir", help="where to build (default: a temp folder)")] = None,
    persons: Annotated[int, typer.Option(help="synthetic people (7 photos each)")] = 60,
    epochs: int = 4,
    overrides: Overrides = None,
) -> None:
    """Smoke run on a shipped synthetic dataset: build it, prepare, train, evaluate, predict, submit (CPU, <3 min)."""
    from faceattr.demo import run_demo

    try:
        run_demo(workdir, persons=persons, epochs=epochs, overrides=overrides or [], console=console)
    except FaceAttrError as e:
        _fail(e)


if __name__ == "__main__":  # pragma: no cover
    app()
