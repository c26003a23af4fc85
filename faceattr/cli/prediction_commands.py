"""Commands that use a trained model: evaluate, predict (photos and videos), pseudo-label, export, serve, cam,
submit."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from faceattr.atomic import nearest_on_disk, refuse_file_as_folder, refuse_other_format, refuse_to_replace
from faceattr.cli.common import (
    TTA,
    Also,
    OnnxCache,
    OverwriteFlag,
    Peers,
    Priors,
    Voting,
    _fail,
    _priors,
    _tta,
    app,
    console,
    on_ctrl_c,
    print_metrics,
)
from faceattr.errors import ConfigError, FaceAttrError, Interrupted, NothingReadable


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
    min_group: Annotated[int, typer.Option(min=0, help="groups with fewer held-out faces are flagged")] = 30,
    priors: Priors = None,
    peers: Peers = True,
    overwrite: Annotated[bool, typer.Option(help="replace a report already in --out")] = False,
) -> None:
    """Macro F1 and accuracy per task and for 18 classes, age MAE, per-class report, confusion-matrix PNGs, per-group
    tables and charts (--by), and model_card.md."""
    from faceattr.reports.evaluate import evaluate as run_evaluation

    try:
        models = [checkpoint, *also] if also else checkpoint
        groups = [g.strip() for g in by.split(",") if g.strip()] if by else None
        result = run_evaluation(
            models,
            manifest,
            fold,
            out,
            split=split,
            voting=voting,
            tta=_tta(tta),
            by=groups,
            min_group=min_group,
            priors=_priors(priors),
            peers=peers,
            overwrite=overwrite,
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
        typer.Option(
            "--faces/--no-faces",
            help="photos: classify every detected face (default: if trained on crops); videos are always tracked "
            "face by face",
        ),
    ] = None,
    draw: Annotated[Path | None, typer.Option(help="with --faces: save copies with boxes and labels here")] = None,
    margins: Annotated[
        str | None,
        typer.Option(help="with --faces: crop margins L,R,T,B instead of the checkpoint's (from faceattr framing)"),
    ] = None,
    margin_unit: Annotated[str, typer.Option(help="unit of --margins: fraction (of the face box) or px")] = "fraction",
    detector: Annotated[
        str | None,
        typer.Option(
            help="with --faces: another face detector than the model's (centerface, yunet, mtcnn); needs --margins "
            "measured with it when the model was framed on another detector's box"
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="photos per model call (16 measured fastest on CPU: larger batches run slower)")
    ] = 16,
    also: Also = None,
    voting: Voting = "soft",
    tta: TTA = None,
    priors: Priors = None,
    peers: Peers = True,
    onnx_cache: OnnxCache = True,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out (and its .skipped.csv)")] = False,
    profile: Annotated[
        bool, typer.Option(help="with --faces: print the time spent per stage (stages run one after another)")
    ] = False,
    detect_max_side: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="detect faces (photos with --faces, video frames) on copies shrunk to this longer side (faster; "
            "misses small faces)",
        ),
    ] = None,
    every: Annotated[int, typer.Option(min=1, help="videos: use every N-th frame")] = 1,
    fps: Annotated[float | None, typer.Option(min=0.01, help="videos: use about this many frames per second")] = None,
) -> None:
    """Predict mask, gender and age; one CSV row per face (or per image with --no-faces), with probabilities.
    Videos (.mp4, .mov, .avi, .mkv, ...) get every face tracked: OUT.frames.csv (a row per frame and face) and
    OUT.tracks.csv (a row per track, probabilities averaged over its frames).

    faceattr predict runs/x/checkpoints/best.ckpt photos/   |   faceattr predict --onnx model.onnx photos/
    """
    from faceattr.data.images import VIDEO_SUFFIXES
    from faceattr.inference.journal import PredictionJournal, file_identity
    from faceattr.inference.load import load_predictor
    from faceattr.inference.outputs import fresh_skip_report

    try:
        model, inputs = (onnx, args) if onnx else (args[0], args[1:])
        if not inputs:
            raise FaceAttrError("no images given: faceattr predict CHECKPOINT IMAGES_OR_FOLDERS...")
        check_writable(out)
        if draw is not None:  # a folder of drawn copies, or one drawn video file inside a folder
            refuse_file_as_folder(draw.parent if draw.suffix.lower() in VIDEO_SUFFIXES else draw, "--draw")
            refuse_draw_inside_inputs(draw, inputs)
        media = _media_in(inputs)
        skips = fresh_skip_report(out, overwrite, inputs=[model, *(also or []), *inputs, *media])
        predictor = load_predictor(
            [model, *also] if also else model,
            voting=voting,
            tta=_tta(tta),
            onnx_cache=onnx_cache,
            priors=_priors(priors),
            peers=peers,
        )
        predictor.cfg.faces = _face_settings(predictor.cfg.faces, detector, margins, margin_unit, detect_max_side)
        if margins is not None and faces is None:  # margins are for cropping faces
            faces = True
        videos = [p for p in media if Path(p).suffix.lower() in VIDEO_SUFFIXES]
        photos = [p for p in media if Path(p).suffix.lower() not in VIDEO_SUFFIXES]
        if videos and faces is False:
            console.print("[yellow]--no-faces applies to photos: videos are tracked and predicted face by face[/]")
        faces = faces if faces is not None else predictor.cfg.faces.trained_on_crops
        journal = PredictionJournal(
            out,
            {
                "models": [file_identity(p) for p in [model, *(also or [])]],
                "views": [voting, tta, priors, peers, onnx_cache, faces],
                "faces": asdict(predictor.cfg.faces),
            },
        )
        runs = []
        if videos:
            runs.append(partial(_predict_videos, predictor, videos, out, every, fps, draw, skips, overwrite))
        if photos:
            runs.append(
                partial(
                    _predict_photos, predictor, photos, out, faces, draw, batch_size, skips, profile, overwrite, journal
                )
            )
        _each_kind(runs)
    except FaceAttrError as e:
        _fail(e)
        return
    _report_skips(skips, "file(s) skipped or cut short" if videos else "image(s) skipped")


def _each_kind(runs: list[Callable[[], None]]) -> None:
    """Run each kind of input (videos, then photos): a kind with nothing readable is said and the others still
    run, so one broken video does not cost a folder's photos; only every kind unreadable is the error."""
    unreadable = []
    for run in runs:
        try:
            run()
        except NothingReadable as e:
            unreadable.append(str(e))
    if len(unreadable) == len(runs):
        raise NothingReadable("; ".join(unreadable))
    for message in unreadable:
        console.print(f"[yellow]{message}[/]")


def _media_in(inputs: list[Path]) -> list:
    """The images and videos named or inside the folders given, saying what was left out and which names are
    not UTF-8; none is an error naming what was looked for."""
    from faceattr.data.images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_utf8_name
    from faceattr.inference.inputs import collect_images

    ignored: list[str] = []
    given = collect_images(inputs, IMAGE_SUFFIXES + VIDEO_SUFFIXES, ignored)
    first: dict[str, str] = {}
    for path in given:  # each file once, as first named (rows are keyed by path)
        first.setdefault(os.path.abspath(path), path)
    media = list(first.values())
    if len(media) < len(given):
        console.print(f"{len(given) - len(media)} repeated path(s) (a file and its folder?): each file predicted once")
    if ignored:
        console.print(
            f"[yellow]{len(ignored)} file(s) in the folders are neither images nor videos and were left out "
            f"(e.g. {ignored[0]}); readable: {', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)}[/]"
        )
    if not media:
        raise FaceAttrError(
            f"no images or videos in {', '.join(map(str, inputs))} "
            f"(looked for {', '.join(IMAGE_SUFFIXES + VIDEO_SUFFIXES)})"
        )
    odd_names = [p for p in media if not is_utf8_name(p)]
    if odd_names:
        console.print(
            f"[yellow]{len(odd_names)} file name(s) are not UTF-8 (e.g. made on a CP949 or Latin-1 machine): "
            "read as they are, written in the CSV decoded by their likeliest encoding[/]"
        )
    return media


def _face_settings(faces, detector: str | None, margins: str | None, margin_unit: str, detect_max_side: int | None):
    """The model's face settings with the command line's detector, margins and detection size."""
    if detector is not None:
        from faceattr.faces.detect import switch_detector

        faces = switch_detector(faces, detector, margins_given=margins is not None)
        faces = _faces_with(faces)  # an unknown name is refused with the valid ones
    if margins is not None:
        faces = _with_margins(faces, margins, margin_unit)
    if detect_max_side is not None:
        faces = _faces_with(faces, detect_max_side=detect_max_side)
    return faces


def check_writable(out: Path) -> None:
    """Refuse an output path that cannot take a file before any work is done (not after minutes of predictions)."""
    if out.is_dir():
        raise FaceAttrError(f"--out {out} is a folder; give a file name, e.g. --out {out / 'predictions.csv'}")
    refuse_other_format(out)
    parent = nearest_on_disk(out.parent)
    if not parent.is_dir():
        raise FaceAttrError(f"--out {out}: {parent} is a file, not a folder; pick another --out")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FaceAttrError(f"--out {out}: {parent} is not writable; pick another --out")


def _predict_photos(
    predictor,
    photos: list[str],
    out: Path,
    faces: bool,
    draw,
    batch_size: int,
    skips,
    profile: bool,
    overwrite: bool,
    journal,
) -> None:
    """One row per face (--faces, optional drawn copies) or per photo, to `out`. Each batch's rows go to the
    journal as they are done, so a run cut short goes on from the photos it finished."""
    from faceattr.atomic import write_csv
    from faceattr.inference.journal import in_order, photos_left
    from faceattr.inference.outputs import predictions_table
    from faceattr.inference.profile import StageClock

    detector = predictor.face_detector() if faces else None
    skipped_before = len(skips)  # the videos' skips share the report
    left = photos_left(photos, journal.keep_whole())
    if len(left) < len(photos):
        console.print(
            f"going on from the {len(photos) - len(left)} photo(s) noted in {journal.path} (delete it to start over)"
        )
    clock = StageClock()  # from here: model and detector loading are start-up, not per-photo time
    with on_ctrl_c(f"stopped: the photos done are noted in {journal.path}; the same command goes on"):
        if faces:
            from faceattr.inference.faces_in_photos import predict_faces

            predict_faces(
                predictor,
                left,
                detector,
                skips,
                draw,
                batch_size,
                clock,
                overlap=not profile,
                overwrite=overwrite,
                noted=journal.append,
            )
        else:
            for start in range(0, len(left), batch_size):
                preds = predictor.predict_paths(left[start : start + batch_size], batch_size=batch_size, skips=skips)
                journal.append(predictions_table(preds))
    table = in_order(journal.done(), photos)
    if table.empty:
        raise NothingReadable(
            f"no image could be read ({len(skips) - skipped_before} skipped); the reasons are in {skips.csv_path}"
        )
    with clock.stage("write"):
        write_csv(table, out)
    journal.remove()  # out holds every row now
    read = len(photos) - (len(skips) - skipped_before)
    console.print(f"wrote {len(table)} prediction row(s) for {read} image(s) to [bold]{out}[/]")
    if "detection" in table:  # per face: how many the detector found, how many are the cascade's guesses
        from faceattr.faces.detect import Found

        counts = table["detection"].value_counts()
        console.print("faces: " + ", ".join(f"{Found(how).guess or how} {n}" for how, n in counts.items()))
    if profile:
        _print_stages(clock, len(photos))
    if draw and faces:
        console.print(f"drawn copies in {draw}")


def _report_skips(skips, what: str = "image(s) skipped") -> None:
    if len(skips):
        console.print(f"[yellow]{len(skips)} {what}; reasons in {skips.csv_path}[/]")


def _predict_videos(
    predictor, videos: list[str], out: Path, every: int, fps: float | None, draw, skips, overwrite: bool
) -> None:
    """Every face of the sampled frames, tracked; two CSVs beside `out` (see faceattr/inference/video.py)."""
    import pandas as pd
    from rich.progress import Progress, ProgressColumn, TextColumn
    from rich.text import Text

    from faceattr.atomic import write_csv
    from faceattr.inference.outputs import video_outputs
    from faceattr.inference.video import VIDEO_TABLE_COLUMNS, predict_videos

    class FramesPerSecond(ProgressColumn):
        def render(self, task) -> Text:
            return Text(f"{task.speed or 0:.1f} frames/s")

    columns = (*Progress.get_default_columns(), TextColumn("{task.completed} frames"), FramesPerSecond())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"{len(videos)} video(s)", total=None)
        frames, tracks, stopped = predict_videos(
            predictor,
            videos,
            predictor.face_detector(),
            every,
            fps,
            draw,
            skips,
            progress=lambda n: bar.advance(task, n),
            overwrite=overwrite,
        )
        speed = bar.tasks[0].speed
    if frames.empty:
        console.print("[yellow]no face found in any frame read[/]")
    for table, path, columns in zip((frames, tracks), video_outputs(out), VIDEO_TABLE_COLUMNS, strict=True):
        write_csv(table if not table.empty else pd.DataFrame(columns=columns), path)
    rate = f" at {speed:.1f} frames/s" if speed else ""
    console.print(
        f"videos: {len(frames)} face row(s) in {video_outputs(out)[0]}, {len(tracks)} track(s) in "
        f"{video_outputs(out)[1]}{rate}" + (f"; drawn videos in {draw}" if draw else "")
    )
    if stopped:
        raise Interrupted("stopped: the faces of the frames read before it are written (that video cut short there)")


@app.command("pseudo-label")
def pseudo_label(
    checkpoint: Annotated[Path, typer.Argument(help="a trained model (.ckpt or .onnx), e.g. the drawn-mask recipe's")],
    manifest: Annotated[Path, typer.Argument(help="a manifest of face crops without labels (faceattr crop's)")],
    out: Annotated[Path | None, typer.Option(help="the labelled manifest (default: <manifest>.pseudo.<ext>)")] = None,
    task: Annotated[str, typer.Option(help="the head whose answers become labels: mask, gender or age_bin")] = "mask",
    keep: Annotated[float, typer.Option(help="share of each predicted class kept, the most confident first")] = 0.5,
    tta: TTA = None,
    priors: Priors = None,
    overwrite: OverwriteFlag = False,
) -> None:
    """Label faces that have none with a trained model, to train the next model on them beside its own data
    (self-training: `prepare manifest` the two, then train with `sampler.by=source`, as
    configs/mask_self_trained.yaml does)."""
    from faceattr.data.manifest import MANIFEST_SUFFIXES, read_manifest, write_manifest
    from faceattr.inference.outputs import fresh_skip_report
    from faceattr.inference.pseudo_labels import pseudo_labels
    from faceattr.labels import CLASS_NAMES

    try:
        out = out or manifest.with_name(manifest.stem + ".pseudo" + manifest.suffix)
        refuse_other_format(out, MANIFEST_SUFFIXES)
        df = read_manifest(manifest)
        skips = fresh_skip_report(out, overwrite, inputs=(manifest, checkpoint))
        taught = pseudo_labels(checkpoint, df, task, keep, skips=skips, tta=_tta(tta), priors=_priors(priors))
    except FaceAttrError as e:
        _fail(e)
        return
    write_manifest(taught, out)
    labelled = int((df[task] >= 0).sum()) if task in df else 0
    if labelled:  # the study of docs/masks.md does this on purpose, to count how often the model is right
        console.print(
            f"[yellow]{labelled} of the faces already had a {task} label: in {out} the model's answer replaces it "
            f"({manifest} is unchanged). Faces labelled by a person train as they are: `prepare manifest` them "
            "beside the drawn set (configs/mask_real.yaml)[/]"
        )
    counts = taught[task].value_counts()
    per_class = ", ".join(f"{name} {int(counts.get(k, 0))}" for k, name in enumerate(CLASS_NAMES[task]))
    console.print(f"{len(taught)} of {len(df)} faces labelled in {out} ({per_class})")
    if len(skips):
        console.print(f"[yellow]{len(skips)} unreadable image(s) skipped, listed in {skips.csv_path}[/]")


@app.command()
def export(
    checkpoint: Annotated[Path, typer.Argument(help="a .ckpt written by faceattr train")],
    out: Annotated[Path, typer.Option(help="the .onnx file; a .json sidecar is written beside it")] = Path(
        "model.onnx"
    ),
    format: Annotated[str, typer.Option("--format", help="onnx")] = "onnx",
    opset: Annotated[
        int, typer.Option(min=11, max=20, help="ONNX opset: 11-20, the versions torch's exporter writes this model in")
    ] = 17,
    overwrite: OverwriteFlag = False,
) -> None:
    """Export a checkpoint to ONNX (dynamic batch, one probability output per head) with a JSON sidecar."""
    from faceattr.inference.export import export_onnx
    from faceattr.inference.onnx_predictor import sidecar_path

    try:
        if format != "onnx":
            raise FaceAttrError(f"unknown export format '{format}'; onnx is supported")
        refuse_to_replace([out, sidecar_path(out)], overwrite, inputs=(checkpoint,))
        model_path, sidecar = export_onnx(checkpoint, out, opset)
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"wrote [bold]{model_path}[/] and {sidecar}")


@app.command()
def serve(
    checkpoint: Annotated[Path, typer.Option(help="a .ckpt, or an exported .onnx (runs on onnxruntime)")],
    host: str = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    max_upload_mb: Annotated[float, typer.Option(min=0.01, help="largest accepted upload")] = 10.0,
    max_pixels: Annotated[
        int | None, typer.Option(min=1, help="largest accepted image, in pixels (default: 40 M, the server's own)")
    ] = None,
    max_faces: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="faces classified per photo, the largest; the others are counted in faces_left_out (default: 100, "
            "the server's own)",
        ),
    ] = None,
    body_timeout: Annotated[
        float, typer.Option(min=0.1, help="drop an upload that sends nothing for this many seconds (408)")
    ] = 10.0,
    onnx_cache: OnnxCache = True,
    peers: Peers = True,
) -> None:
    """Serve a page and an HTTP API (POST /predict, GET /health, GET /model) for trying a model."""
    import uvicorn

    from faceattr.inference.load import load_predictor
    from faceattr.serve.app import create_app

    try:
        _check_can_listen(host, port)  # before the model loads: a port in use is said at once, by us
        predictor = load_predictor(checkpoint, onnx_cache=onnx_cache, peers=peers)
        app_ = create_app(
            predictor,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            max_pixels=max_pixels,
            max_faces=max_faces,
            body_timeout_s=body_timeout,
        )
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"serving {checkpoint} on http://{host}:{port}/")
    uvicorn.run(app_, host=host, port=port, log_level="warning")


def refuse_draw_inside_inputs(draw: Path, inputs: list[Path]) -> None:
    """Drawn copies written inside a folder being predicted would be read as photos by the next predict of it."""
    target = draw.resolve()
    for folder in (p.resolve() for p in inputs if p.is_dir()):
        if target.is_relative_to(folder):
            raise FaceAttrError(
                f"--draw {draw} is inside {folder}, a folder being predicted: the drawn copies would be read as photos "
                "the next time it is; give a --draw folder outside it"
            )


def _check_can_listen(host: str, port: int) -> None:
    """Refuse a host and port the server could not listen on (taken by another program, or not this machine's)."""
    import socket

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.create_server((host, port), family=family):
            pass
    except OSError as e:
        raise FaceAttrError(
            f"cannot listen on {host}:{port} ({e.strerror or e}); pick another --host or --port, or stop what uses it"
        ) from None


@app.command()
def cam(
    checkpoint: Annotated[Path, typer.Argument(help="a .ckpt written by faceattr train")],
    images: Annotated[
        list[Path] | None, typer.Argument(help="images to explain: files, folders or .txt lists, as predict takes")
    ] = None,
    worst: Annotated[int, typer.Option(min=0, help="also explain the N worst-classified validation images")] = 0,
    heads: Annotated[str | None, typer.Option(help="heads to explain, e.g. mask,gender (default: all)")] = None,
    out: Annotated[Path, typer.Option(help="folder for the side-by-side PNGs")] = Path("cam"),
    overwrite: OverwriteFlag = False,
) -> None:
    """Grad-CAM heatmaps per head (grad-cam package): the photo beside one overlay per head."""
    from faceattr.data.images import SkipReport
    from faceattr.inference.inputs import collect_images
    from faceattr.reports.cam import cam_sheets

    try:
        refuse_file_as_folder(out, "--out")
        refuse_to_replace(sorted(out.glob("cam_*.png"))[:1], overwrite)
        chosen = [h.strip() for h in heads.split(",")] if heads else None
        skips = SkipReport()
        results = cam_sheets(checkpoint, collect_images(images or []), worst, out, chosen, skips)
    except FaceAttrError as e:
        _fail(e)
        return
    for r in results:
        console.print(f"{r.sheet}: {'; '.join(r.labels.values())}")
    for row in skips.rows:
        console.print(f"[yellow]skipped {row['path']}: {row['reason']} ({row['detail']})[/]")


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
    priors: Priors = None,
    peers: Peers = True,
    overwrite: Annotated[bool, typer.Option(help="replace an existing --out (and its .skipped.csv)")] = False,
    fill_missing: Annotated[
        bool,
        typer.Option(
            help="give test images that cannot be read the most frequent predicted class (listed in the "
            ".skipped.csv) instead of refusing the submission"
        ),
    ] = False,
) -> None:
    """Fill the competition's info.csv `ans` column with 18-class predictions."""
    from faceattr.data.images import skip_report_path
    from faceattr.inference.load import load_predictor
    from faceattr.inference.outputs import submission

    try:
        refuse_other_format(out)
        predictor = load_predictor(
            [checkpoint, *also] if also else checkpoint,
            voting=voting,
            tta=_tta(tta),
            priors=_priors(priors),
            peers=peers,
        )
        table, filled = submission(
            predictor, eval_dir, out, crop_faces=faces, overwrite=overwrite, fill_missing=fill_missing
        )
    except FaceAttrError as e:
        _fail(e)
        return
    console.print(f"wrote submission [bold]{out}[/] ({len(table)} rows)")
    if filled:
        console.print(
            f"[yellow]{filled} row(s) had no readable image and got the most frequent class; listed in "
            f"{skip_report_path(out)}[/]"
        )
