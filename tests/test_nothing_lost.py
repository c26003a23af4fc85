"""Nothing lost, nothing hung: a user's mistakes and a hostile client's requests get a clear error or a warning,
never a traceback, a silent wrong answer or a deleted file. One block per way it used to go wrong (issue 33)."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.config import load_config
from faceattr.errors import ConfigError, DatasetError, FaceAttrError, ManifestError
from tests.conftest import tiny_overrides


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def said(result) -> str:
    """The command's output on one line (the console wraps long messages)."""
    return " ".join(result.output.split())


# 1. --overwrite deletes nothing but a faceattr run, and only once the new run stands


def test_run_names_that_leave_the_runs_folder_are_refused(tmp_path):
    for name in ("../userdata", ".", "..", "a/b", ""):
        with pytest.raises(ConfigError, match=r"run\.name"):
            load_config(None, [f"run.dir={tmp_path}", f"run.name={name}"])


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(competition_manifest, tmp_path):
    from faceattr.training import train

    users = tmp_path / "runs" / "userdata"
    users.mkdir(parents=True)
    (users / "thesis.tex").write_text("years of work")
    cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path / "runs", **{"run.name": "userdata"}))
    with pytest.raises(ConfigError, match="holds no faceattr run"):
        train(cfg, overwrite=True)
    assert (users / "thesis.tex").read_text() == "years of work"


def test_overwrite_keeps_the_old_run_when_the_new_one_fails_before_training(tmp_path):
    from faceattr.training import train

    old = tmp_path / "runs" / "mask"
    (old / "checkpoints").mkdir(parents=True)
    (old / "run_info.json").write_text("{}")
    (old / "checkpoints" / "best.ckpt").write_bytes(b"weights")
    cfg = load_config(None, tiny_overrides(tmp_path / "missing.csv", tmp_path / "runs", **{"run.name": "mask"}))
    with pytest.raises(ManifestError):
        train(cfg, overwrite=True)
    assert (old / "checkpoints" / "best.ckpt").read_bytes() == b"weights"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["mask"]  # nothing set aside left behind


def test_overwrite_replaces_a_run_once_the_new_one_trained(competition_manifest, tmp_path):
    from faceattr.training import train

    cfg = load_config(None, tiny_overrides(competition_manifest, tmp_path / "runs", **{"train.epochs": 1}))
    first = train(cfg)
    (first.run_dir / "stale.txt").write_text("from the old run")
    second = train(
        load_config(None, tiny_overrides(competition_manifest, tmp_path / "runs", **{"train.epochs": 1})),
        overwrite=True,
    )
    assert second.run_dir == first.run_dir and second.best_checkpoint.is_file()
    assert not (second.run_dir / "stale.txt").exists()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["tiny"]


# 2. submit: no silent filler, no reading outside eval/images


def _eval_copy(competition_root: Path, tmp_path: Path) -> Path:
    eval_dir = tmp_path / "eval"
    shutil.copytree(competition_root / "eval", eval_dir)
    return eval_dir


def test_submit_refuses_rows_without_a_readable_image_unless_asked_to_fill_them(
    trained_run, competition_root, tmp_path
):
    eval_dir = _eval_copy(competition_root, tmp_path)
    images = sorted((eval_dir / "images").iterdir())
    images[0].unlink()
    images[1].write_bytes(b"not a jpeg")
    out = tmp_path / "sub.csv"
    result = run("submit", trained_run.best_checkpoint, eval_dir, "--out", out)
    assert result.exit_code == 2 and "2 of" in said(result) and "--fill-missing" in said(result)
    assert not out.exists()
    result = run("submit", trained_run.best_checkpoint, eval_dir, "--out", out, "--fill-missing", "--overwrite")
    assert result.exit_code == 0, result.output
    assert "2 row(s) had no readable image" in said(result)
    table = pd.read_csv(out)
    assert len(table) == len(images) and table["ans"].between(0, 17).all()
    assert len(pd.read_csv(tmp_path / "sub.skipped.csv")) == 2


def test_submit_never_reads_outside_eval_images(trained_run, competition_root, tmp_path):
    eval_dir = _eval_copy(competition_root, tmp_path)
    info = pd.read_csv(eval_dir / "info.csv")
    info.loc[0, "ImageID"] = "../../secret.jpg"
    info.to_csv(eval_dir / "info.csv", index=False)
    result = run("submit", trained_run.best_checkpoint, eval_dir, "--out", tmp_path / "sub.csv")
    assert result.exit_code == 2 and "lead outside" in said(result) and "../../secret.jpg" in said(result)


# 3 and 7. videos without a face, unreadable videos, folders without images


def _video(path: Path, frames: int = 12) -> Path:
    av = pytest.importorskip("av", reason="videos need pip install 'faceattr[video]'")
    container = av.open(str(path), "w")
    stream = container.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
    for i in range(frames):
        frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 40 + 5 * i, np.uint8), format="rgb24")
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def test_a_video_without_a_face_gives_empty_tables_with_headers(trained_run, tmp_path):
    clip = _video(tmp_path / "empty_room.mp4")
    result = run("predict", trained_run.best_checkpoint, clip, "--out", tmp_path / "v.csv")
    assert result.exit_code == 0, result.output
    assert "no face found" in said(result)
    frames = pd.read_csv(tmp_path / "v.frames.csv")
    assert frames.empty and {"frame", "track", "x1"} <= set(frames.columns)


def test_an_unreadable_video_is_an_error_not_empty_tables(trained_run, tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
    result = run("predict", trained_run.best_checkpoint, tmp_path / "broken.mp4", "--out", tmp_path / "v.csv")
    assert result.exit_code == 2 and "no frame could be read" in said(result)
    assert not (tmp_path / "v.frames.csv").exists() and not (tmp_path / "v.tracks.csv").exists()


def test_a_broken_video_does_not_cost_the_photos_beside_it(trained_run, tmp_path):
    folder = tmp_path / "party"
    folder.mkdir()
    Image.new("RGB", (90, 110), (120, 90, 70)).save(folder / "guest.jpg")
    (folder / "clip.mp4").write_bytes(b"not a video at all")
    result = run("predict", trained_run.best_checkpoint, folder, "--out", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "p.csv")["path"].str.endswith("guest.jpg").all()
    assert "for 1 image(s)" in said(result) and "no frame could be read" in said(result)
    assert pd.read_csv(tmp_path / "p.skipped.csv")["reason"].tolist() == ["not_a_video"]
    (folder / "guest.jpg").write_bytes(b"")  # now nothing of either kind can be read: that is the error
    result = run("predict", trained_run.best_checkpoint, folder, "--out", tmp_path / "q.csv")
    assert result.exit_code == 2
    assert "no frame could be read" in said(result) and "no image could be read" in said(result)


def test_predict_says_when_a_folder_holds_nothing_it_can_read(trained_run, tmp_path):
    for name in ("empty", "text"):
        (tmp_path / name).mkdir()
    (tmp_path / "text" / "notes.md").write_text("hi")
    for folder in ("empty", "text"):
        result = run("predict", trained_run.best_checkpoint, tmp_path / folder, "--out", tmp_path / f"{folder}.csv")
        assert result.exit_code == 2 and "no images or videos" in said(result)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.new("RGB", (90, 110), (120, 90, 70)).save(mixed / "a.gif")
    (mixed / "b.txt.bak").write_text("x")
    result = run("predict", trained_run.best_checkpoint, mixed, "--out", tmp_path / "mixed.csv")
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "mixed.csv")["path"].str.endswith("a.gif").all()  # a GIF is read, not dropped
    assert "1 file(s) in the folders are neither images nor videos" in said(result)


# 4. a huge photo costs a bounded copy's detection


@pytest.mark.parametrize("name", ["mtcnn", "centerface"])
def test_the_second_pass_detects_on_a_bounded_copy_of_a_large_photo(name):
    from faceattr.config import FacesConfig
    from faceattr.faces.detect import FaceDetector

    detector = FaceDetector(FacesConfig(detector=name, detect_max_side=640), device="cpu")
    seen: list[tuple] = []
    if detector.finder is not None:
        find = detector.finder.find
        detector.finder.find = lambda image, score: seen.append(image[None].shape) or find(image, score)
    else:
        detect = detector.relaxed.detect
        detector.relaxed.detect = lambda batch, landmarks: (
            seen.append(batch.shape) or detect(batch, landmarks=landmarks)
        )
    photo = np.random.default_rng(0).integers(0, 255, (3000, 2400, 3), dtype=np.uint8)
    detector.rescue([photo])
    assert seen and max(seen[0][1:3]) <= 640 * 1.4 + 2  # the shrunk copy plus its 20 % padding on each side


# 5. stalled uploads are dropped, real requests keep their answers


@pytest.fixture
def stall_server(trained_run):
    pytest.importorskip("uvicorn", reason="serving needs pip install 'faceattr[serve]'")
    from faceattr.inference.checkpoint_predictor import Predictor
    from faceattr.serve.app import create_app
    from tests.conftest import served_on_loopback
    from tests.test_serve import NoFaces

    app_ = create_app(Predictor(trained_run.best_checkpoint), detector=NoFaces(), max_in_flight=4, body_timeout_s=1.5)
    with served_on_loopback(app_) as port:
        yield port


def _stalled_upload(port: int) -> socket.socket:
    """A POST that declares 100 kB and sends 10 bytes of it, then nothing."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\n"
        b"Content-Length: 100000\r\n\r\n--B\r\nConte"
    )
    return conn


def test_stalled_uploads_never_lock_out_real_requests_and_are_dropped(stall_server):
    import io

    import httpx

    port = stall_server
    stalled = [_stalled_upload(port) for _ in range(8)]  # twice the in-flight bound
    buf = io.BytesIO()
    Image.new("RGB", (120, 160), (150, 120, 100)).save(buf, "JPEG")
    for _ in range(3):
        reply = httpx.post(f"http://127.0.0.1:{port}/predict", files={"file": ("a.jpg", buf.getvalue())}, timeout=10)
        assert reply.status_code == 200, reply.text
    stalled[0].settimeout(5)
    answer = stalled[0].recv(200)  # the body timeout drops it with a 408 (1.5 s here)
    assert b" 408 " in answer
    for conn in stalled:
        conn.close()


# 6. file names in other encodings


def _odd_name(folder: Path, good_image: Path) -> Path:
    target = os.fsencode(folder) + b"/\xc7\xd1\xb1\xdb.jpg"  # "한글" in CP949
    shutil.copy(good_image, target)
    return Path(os.fsdecode(target))


def test_a_non_utf8_file_name_is_predicted_and_written_readably(trained_run, competition_root, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    source = sorted((competition_root / "eval" / "images").iterdir())[0]
    _odd_name(photos, source)
    shutil.copy(source, photos / "plain.jpg")
    result = run("predict", trained_run.best_checkpoint, photos, "--out", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    paths = pd.read_csv(tmp_path / "p.csv")["path"].tolist()
    assert len(paths) == 2 and any(p.endswith("한글.jpg") for p in paths)


def test_prepare_folder_leaves_out_non_utf8_names_with_the_fix(competition_root, tmp_path, caplog):
    from faceattr.data.sources import read_image_folder

    images = sorted((competition_root / "eval" / "images").iterdir())
    for cls in ("with_mask", "without_mask"):
        (tmp_path / cls).mkdir()
    _odd_name(tmp_path / "with_mask", images[0])
    shutil.copy(images[1], tmp_path / "with_mask" / "ok.jpg")
    shutil.copy(images[2], tmp_path / "without_mask" / "ok.jpg")
    frame = read_image_folder(tmp_path)
    assert len(frame) == 2 and "not UTF-8" in caplog.text and "convmv" in caplog.text


# 8. a user's files are replaced only with --overwrite


def test_evaluate_refuses_a_folder_that_holds_a_report(trained_run, tmp_path):
    mine = tmp_path / "report"
    mine.mkdir()
    (mine / "metrics.json").write_text('{"mine": true}')
    result = run("evaluate", trained_run.best_checkpoint, "--out", mine)
    assert result.exit_code == 2 and "already exists" in said(result)
    assert json.loads((mine / "metrics.json").read_text()) == {"mine": True}


def test_drawn_copies_never_replace_same_named_files(trained_run, competition_root, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(sorted((competition_root / "eval" / "images").iterdir())[0], photos / "a.jpg")
    drawn = tmp_path / "drawn"
    drawn.mkdir()
    (drawn / "a.jpg_faces.jpg").write_bytes(b"my own picture")
    result = run(
        "predict", trained_run.best_checkpoint, photos, "--faces", "--draw", drawn, "--out", tmp_path / "p.csv"
    )
    assert result.exit_code == 2 and "already exists" in said(result)
    assert (drawn / "a.jpg_faces.jpg").read_bytes() == b"my own picture"


def test_drawn_copies_are_never_written_inside_a_folder_being_predicted(trained_run, competition_root, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(sorted((competition_root / "eval" / "images").iterdir())[0], photos / "a.jpg")
    for inside in (photos, photos / "drawn"):  # the next predict of the folder would read them as photos
        result = run(
            "predict", trained_run.best_checkpoint, photos, "--faces", "--draw", inside, "--out", tmp_path / "p.csv"
        )
        assert result.exit_code == 2 and "a folder being predicted" in said(result)
    assert sorted(p.name for p in photos.rglob("*")) == ["a.jpg"]


def test_prepare_never_replaces_its_own_input_or_an_existing_manifest(competition_manifest, tmp_path):
    table = tmp_path / "table.csv"
    shutil.copy(competition_manifest, table)
    before = table.read_bytes()
    result = run("prepare", "csv", table, "--out", table, "--folds", "3")
    assert result.exit_code == 2 and "one of the inputs" in said(result)
    assert table.read_bytes() == before
    out = tmp_path / "m.csv"
    out.write_text("mine")
    result = run("prepare", "csv", table, "--out", out, "--folds", "3")
    assert result.exit_code == 2 and "already exists" in said(result) and out.read_text() == "mine"


def test_prepare_never_replaces_a_file_where_its_eval_manifest_or_corrections_log_go(competition_root, tmp_path):
    theirs = tmp_path / "m.eval.csv"  # where `prepare competition --out m.csv` writes the eval side's manifest
    theirs.write_text("a user's own file")
    result = run("prepare", "competition", competition_root, "--out", tmp_path / "m.csv", "--folds", "3")
    assert result.exit_code == 2 and "m.eval.csv already exists" in said(result)
    assert theirs.read_text() == "a user's own file" and not (tmp_path / "m.csv").exists()
    fixes, log = tmp_path / "fixes.csv", tmp_path / "n.csv.corrections.csv"
    fixes.write_text("path,field,value\n")
    log.write_text("a user's own file")
    result = run("prepare", "competition", competition_root, "--out", tmp_path / "n.csv", "--corrections", fixes)
    assert result.exit_code == 2 and "corrections" in said(result) and "already exists" in said(result)
    assert log.read_text() == "a user's own file"


def test_predict_and_submit_never_write_over_their_inputs_even_with_overwrite(trained_run, competition_root, tmp_path):
    eval_dir = _eval_copy(competition_root, tmp_path)
    info = (eval_dir / "info.csv").read_bytes()
    result = run("submit", trained_run.best_checkpoint, eval_dir, "--out", eval_dir / "info.csv", "--overwrite")
    assert result.exit_code == 2 and "is one of the inputs" in said(result)
    assert (eval_dir / "info.csv").read_bytes() == info
    photo = sorted((eval_dir / "images").iterdir())[0]
    pixels = photo.read_bytes()
    model = trained_run.best_checkpoint.read_bytes()
    for out in (photo, trained_run.best_checkpoint):  # (refused first as no .csv name)
        result = run("predict", trained_run.best_checkpoint, eval_dir / "images", "--out", out, "--overwrite")
        assert result.exit_code == 2
    assert photo.read_bytes() == pixels and trained_run.best_checkpoint.read_bytes() == model


def test_a_refused_resume_writes_nothing(trained_run, competition_manifest, tmp_path):
    from faceattr.training import train

    run_dir = tmp_path / "runs" / "tiny"
    shutil.copytree(trained_run.run_dir, run_dir)
    before = {name: (run_dir / name).read_bytes() for name in ("config.yaml", "run_info.json")}
    other = tiny_overrides(competition_manifest, tmp_path / "runs", **{"model.backbone": "resnet18"})
    with pytest.raises(ConfigError, match=r"model\.backbone"):
        train(load_config(None, other), resume=True)
    assert {name: (run_dir / name).read_bytes() for name in before} == before


def test_stats_and_evaluate_never_write_over_a_file_of_a_name_they_use(trained_run, competition_manifest, tmp_path):
    for command, name in (("stats", "skipped.csv"), ("stats", "counts.png"), ("evaluate", "confusion_mask.png")):
        folder = tmp_path / f"{command}_{name}"
        folder.mkdir()
        (folder / name).write_text("a user's file")
        first = competition_manifest if command == "stats" else trained_run.best_checkpoint
        result = run(command, first, "--out", folder)
        assert result.exit_code == 2 and "--overwrite" in said(result), (command, name)
        assert [p.name for p in folder.iterdir()] == [name] and (folder / name).read_text() == "a user's file"


def test_the_demo_never_writes_into_a_folder_of_the_users_and_starts_over_in_its_own(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "manifest.csv").write_text("a user's manifest")
    result = run("demo", "--dir", mine, "--persons", "10", "--epochs", "1")
    assert result.exit_code == 2 and "holds files that are not a faceattr demo's" in said(result)
    assert sorted(p.name for p in mine.iterdir()) == ["manifest.csv"]
    assert (mine / "manifest.csv").read_text() == "a user's manifest"
    for _ in range(2):  # a folder the demo made is its own: the second run replaces the first
        result = run("demo", "--dir", tmp_path / "demo", "--persons", "10", "--epochs", "1")
        assert result.exit_code == 0, result.output


def test_a_file_output_that_is_a_folder_and_a_cache_folder_that_is_a_file_are_refused_up_front(
    trained_run, competition_manifest, tmp_path
):
    from faceattr.training import train

    folder = tmp_path / "results"
    (folder / "keep").mkdir(parents=True)
    for args in (
        ("crop", competition_manifest, "--cache", tmp_path / "cache", "--out", folder, "--overwrite"),
        ("export", trained_run.best_checkpoint, "--out", folder, "--overwrite"),
    ):
        result = run(*args)
        assert result.exit_code == 2 and "is a folder, and this output is a file" in said(result)
        assert (folder / "keep").is_dir()
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    checkpoint, photo = trained_run.best_checkpoint, tmp_path / "x.jpg"
    Image.new("RGB", (64, 64)).save(photo)
    for option, args in (
        ("--cache", ("crop", competition_manifest, "--cache", notes, "--out", tmp_path / "crops.csv")),
        ("--out", ("stats", competition_manifest, "--out", notes)),
        ("--out", ("cam", checkpoint, photo, "--out", notes / "sheets")),
        ("--draw", ("predict", checkpoint, photo, "--faces", "--draw", notes, "--out", tmp_path / "p.csv")),
        ("--out", ("evaluate", checkpoint, "--out", notes)),
    ):
        result = run(*args)
        assert result.exit_code == 2 and f"is a file, and {option} names a folder" in said(result), args
    with pytest.raises(FaceAttrError, match=r"is a file, and run\.dir/run\.name names a folder"):
        train(load_config(None, tiny_overrides(competition_manifest, notes)))
    assert notes.read_text() == "mine" and not (tmp_path / "crops.csv").exists() and not (tmp_path / "p.csv").exists()


# 9. clear errors instead of tracebacks


def test_predict_refuses_an_out_it_cannot_write_before_any_work(trained_run, competition_root, tmp_path):
    image = sorted((competition_root / "eval" / "images").iterdir())[0]
    (tmp_path / "afile").write_text("x")
    for out, words in (
        (tmp_path, "is a folder"),
        (tmp_path / "afile" / "p.csv", "is a file"),
    ):
        result = run("predict", trained_run.best_checkpoint, image, "--out", out)
        assert result.exit_code == 2 and words in said(result), result.output


@pytest.mark.parametrize("command", ["predict", "submit", "suspects", "prepare", "crop", "framing", "pseudo-label"])
def test_a_table_named_for_another_format_is_refused_before_any_work(
    command, trained_run, competition_root, competition_manifest, tmp_path
):
    out = tmp_path / "table.xlsx"  # CSV text in a .xlsx: a file Excel refuses to open
    given = {
        "predict": [trained_run.best_checkpoint, competition_root / "eval" / "images"],
        "submit": [trained_run.best_checkpoint, competition_root / "eval"],
        "suspects": [tmp_path / "oof_predictions.csv"],
        "prepare": ["competition", competition_root],
        "crop": [competition_manifest],
        "framing": [competition_manifest],
        "pseudo-label": [trained_run.best_checkpoint, competition_manifest],
    }[command]
    result = run(command, *given, "--out", out)
    assert result.exit_code == 2 and "written as .csv" in said(result) and not out.exists()


def _edited_checkpoint(trained_run, tmp_path: Path, edit) -> Path:
    ckpt = torch.load(trained_run.best_checkpoint, map_location="cpu", weights_only=True)
    edit(ckpt)
    path = tmp_path / "edited.ckpt"
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda c: c["hyper_parameters"]["config"]["model"].update(heads=["mask", "gender"]), "do not fit"),
        (lambda c: c["hyper_parameters"]["config"]["model"].update(backbone="resnet18"), "do not fit"),
        (lambda c: c["state_dict"].update({"heads.heads.mask.1.weight": torch.zeros(7, 3)}), "has shape"),
        (lambda c: c["state_dict"]["heads.heads.mask.1.weight"].fill_(float("nan")), "NaN"),
        (lambda c: c["hyper_parameters"]["config"]["augment"].update(std=[0.0, 0.0, 0.0]), "augment.std"),
    ],
    ids=["heads", "backbone", "head shape", "nan weights", "std zero"],
)
def test_a_checkpoint_that_does_not_fit_its_config_is_a_clear_error(trained_run, tmp_path, edit, words):
    from faceattr.inference.checkpoint_predictor import Predictor

    path = _edited_checkpoint(trained_run, tmp_path, edit)
    with pytest.raises(ConfigError, match=words):
        Predictor(path)


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    from faceattr.inference.export import export_onnx

    return export_onnx(trained_run.best_checkpoint, tmp_path_factory.mktemp("onnx") / "m.onnx", 17)


@pytest.mark.parametrize(
    ("model_bytes", "sidecar", "words"),
    [
        ("truncated", None, "not a readable ONNX model"),
        ("garbage", None, "not a readable ONNX model"),
        (None, "{not json", "is not JSON"),
        (None, '{"heads": ["mask"]}', "lacks the model's 'config'"),
        (None, "fewer heads", "different exports"),
        (None, "std zero", "augment.std"),
    ],
)
def test_a_broken_onnx_model_or_sidecar_is_a_clear_error(exported, tmp_path, model_bytes, sidecar, words):
    from faceattr.inference.onnx_predictor import OnnxPredictor

    model, side = exported
    data = model.read_bytes()
    data = {"truncated": data[:1000], "garbage": b"\x00garbage" * 50, None: data}[model_bytes]
    meta = json.loads(side.read_text())
    if sidecar == "fewer heads":
        meta["heads"] = ["mask"]
    elif sidecar == "std zero":
        meta["config"]["augment"]["std"] = [0, 0, 0]
    text = sidecar if sidecar and sidecar.startswith("{") else json.dumps(meta)
    (tmp_path / "m.onnx").write_bytes(data)
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(ConfigError, match=words):
        OnnxPredictor(tmp_path / "m.onnx")


def test_a_yaml_config_that_is_a_list_is_a_clear_error(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- data\n- model\n")
    with pytest.raises(ConfigError, match="not a mapping"):
        load_config(path)


def test_a_sparse_table_still_splits_by_person(tmp_path, caplog):
    from faceattr.data.split import make_folds

    frame = pd.DataFrame({"person_id": [f"p{i}" for i in range(6)], "label18": [0, 0, 0, 5, 9, 17]})
    folds = make_folds(frame, 5, 0)
    assert sorted(folds["person_id"]) == sorted(frame["person_id"]) and folds["fold"].nunique() == 5
    assert "fewer than 5 images" in caplog.text


def test_prepare_says_when_conflicting_duplicates_emptied_the_set(tmp_path):
    image = tmp_path / "img.png"
    Image.new("RGB", (60, 60), (10, 200, 10)).save(image)
    for cls in ("with_mask", "without_mask"):
        (tmp_path / "set" / cls).mkdir(parents=True)
        shutil.copy(image, tmp_path / "set" / cls / "a.png")
    result = run("prepare", "folder", tmp_path / "set", "--out", tmp_path / "m.csv", "--folds", "2")
    assert result.exit_code == 2 and "identical images with different labels" in said(result)
    assert "--no-drop-duplicates" in said(result)


@pytest.mark.parametrize(
    "command, option, value",
    [
        ("predict", "--batch-size", "0"),
        ("predict", "--every", "0"),
        ("predict", "--fps", "-2"),
        ("predict", "--detect-max-side", "-1"),
        ("evaluate", "--min-group", "-1"),
        ("cam", "--worst", "-1"),
        ("prepare", "--folds", "1"),
        ("framing", "--limit", "-5"),
        ("stats", "--max-images", "-1"),
        ("tune", "--trials", "0"),
        ("suspects", "--min-confidence", "2"),
        ("suspects", "--min-peer-confidence", "-0.1"),
        ("cache", "--size", "0"),
        ("export", "--opset", "9"),
        ("export", "--opset", "21"),
        ("prepare", "--split-seed", "-1"),
        ("prepare", "--old-threshold", "-5"),
        ("prepare", "--old-threshold", "200"),
        ("stats", "--old-threshold", "30"),
        ("check", "--split-seed", str(2**32)),
        ("framing", "--seed", "-1"),
        ("synth-masks", "--seed", "-3"),
    ],
)
def test_a_count_or_size_option_out_of_its_range_is_refused_by_name(command, option, value, tmp_path):
    first = {
        "predict": ["x.ckpt", "photo.jpg"],
        "evaluate": ["x.ckpt"],
        "cam": ["x.ckpt"],
        "tune": [],
        "export": ["x.ckpt"],
    }
    args = first.get(command, ["manifest", "m.csv"] if command == "prepare" else ["m.csv"])
    result = run(command, *args, option, value)
    assert result.exit_code == 2 and f"Invalid value for '{option}'" in said(result)


def test_cv_reads_its_folds_each_once_and_names_a_list_it_cannot_read():
    from faceattr.cli.training_commands import _fold_numbers

    assert _fold_numbers("2,0,2") == [2, 0]  # a fold given twice is trained once
    result = run("cv", "--folds", "a,b")
    assert result.exit_code == 2 and "--folds a,b: fold numbers separated by commas" in said(result)


def test_an_unknown_voting_is_refused_even_for_one_model(trained_run, tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "x.jpg")
    result = run(
        "predict", trained_run.best_checkpoint, tmp_path / "x.jpg", "--voting", "maj", "--out", tmp_path / "p.csv"
    )
    assert result.exit_code == 2 and "voting must be soft or hard, not 'maj'" in said(result)


def test_serve_says_at_once_when_it_cannot_listen_where_it_is_asked(trained_run):
    pytest.importorskip("uvicorn", reason="serving needs pip install 'faceattr[serve]'")
    with socket.create_server(("127.0.0.1", 0)) as taken:  # another program holds this port
        port = taken.getsockname()[1]
        result = run("serve", "--checkpoint", trained_run.best_checkpoint, "--host", "127.0.0.1", "--port", port)
    assert result.exit_code == 2 and f"cannot listen on 127.0.0.1:{port}" in said(result)
    assert "serving" not in result.output  # said before the model loads, not after "serving ... on"


def test_a_head_no_training_row_has_a_label_for_is_refused_before_training(competition_manifest, tmp_path):
    from faceattr.training import train

    unlabelled = tmp_path / "boxes_only.csv"  # e.g. `prepare boxes` on photos nobody labelled, then `crop`
    pd.read_csv(competition_manifest).assign(gender=-1, label18=-1).to_csv(unlabelled, index=False)
    cfg = load_config(None, tiny_overrides(unlabelled, tmp_path / "runs"))
    with pytest.raises(ManifestError, match=r"no training row has a label for the head\(s\) gender.*mask,age_bin"):
        train(cfg)
    assert not (tmp_path / "runs" / "tiny").exists()


@pytest.mark.parametrize("override", ["trainer.precision=8", "trainer.strategy=dpp"])
def test_trainer_settings_lightning_refuses_are_refused_before_the_data_is_read(
    competition_manifest, tmp_path, monkeypatch, override
):
    from faceattr.training import fit, train

    monkeypatch.setattr(fit, "prepared_data", lambda *a: pytest.fail("the data was read before the refusal"))
    cfg = load_config(None, [*tiny_overrides(competition_manifest, tmp_path / "runs"), override])
    with pytest.raises(ConfigError, match=f"{override}.*Lightning refuses"):
        train(cfg)
    assert not (tmp_path / "runs" / "tiny").exists()


# 10. no confident nonsense


def test_conflicting_duplicate_rows_in_a_csv_are_refused(tmp_path):
    from faceattr.data.sources.csv_table import read_csv_table

    Image.new("RGB", (40, 40)).save(tmp_path / "a.jpg")
    table = tmp_path / "t.csv"
    table.write_text("path,person_id,mask\na.jpg,p1,0\na.jpg,p1,2\n")
    with pytest.raises(DatasetError, match="different labels"):
        read_csv_table(table)


def test_a_one_pixel_image_is_no_face():
    from faceattr.faces.detect import looks_like_face_crop

    assert not looks_like_face_crop(np.zeros((1, 1, 3), np.uint8), 400)
    assert looks_like_face_crop(np.zeros((100, 90, 3), np.uint8), 400)


@pytest.mark.parametrize("names", [["Müller", "José", "Zoë"], ["Ångström; Übermaß"], ["é"]])
def test_latin1_columns_of_info_csv_come_back_as_written(tmp_path, names):
    from faceattr.data.text_tables import read_text_table

    path = tmp_path / "info.csv"
    path.write_bytes(
        ("ImageID,ans,note\n" + "".join(f"{i}.jpg,0,{n}\n" for i, n in enumerate(names))).encode("latin-1")
    )
    assert read_text_table(path)["note"].tolist() == names


@pytest.mark.parametrize("sep", [";", "\t", ","])
def test_a_table_with_semicolons_or_tabs_between_its_fields_is_read(tmp_path, sep):
    from faceattr.data.sources.csv_table import read_csv_table

    Image.new("RGB", (40, 40)).save(tmp_path / "a.jpg")
    table = tmp_path / "t.csv"  # Excel in most of Europe saves "CSV" with semicolons, cp1252
    table.write_bytes(sep.join(["path", "gender", "age", "note"]).encode() + b"\r\n")
    with table.open("ab") as f:
        note = "Ren\u00e9e, 2nd visit" if sep != "," else "Ren\u00e9e"  # commas inside fields of a ';' table
        f.write(sep.join(["a.jpg", "1", "34", note]).encode("cp1252") + b"\r\n")
    frame = read_csv_table(table)
    assert frame[["gender", "age"]].values.tolist() == [[1, 34]] and frame["note"].tolist() == [note]


# 11. outputs readable by the team; paths leaving a CSV's folder said


def test_outputs_follow_the_umask_not_0600(tmp_path):
    from faceattr.atomic import write_text

    old = os.umask(0o022)
    try:
        path = write_text(tmp_path / "shared.txt", "x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_paths_outside_a_csv_folder_are_said(tmp_path, caplog):
    from faceattr.data.sources.csv_table import read_csv_table

    Image.new("RGB", (40, 40)).save(tmp_path / "a.jpg")
    (tmp_path / "sub").mkdir()
    table = tmp_path / "sub" / "t.csv"
    table.write_text("path,person_id\n../a.jpg,p1\n")
    read_csv_table(table)
    assert "lead outside the CSV's folder" in caplog.text


def test_export_crop_and_stats_replace_their_outputs_only_with_overwrite(trained_run, competition_manifest, tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"a user's model")
    result = run("export", trained_run.best_checkpoint, "--out", model)
    assert result.exit_code == 2 and "--overwrite" in said(result) and model.read_bytes() == b"a user's model"
    crops = tmp_path / "crops.csv"
    crops.write_text("mine")
    result = run("crop", competition_manifest, "--cache", tmp_path / "cache", "--out", crops)
    assert result.exit_code == 2 and crops.read_text() == "mine"
    result = run("crop", competition_manifest, "--cache", tmp_path / "cache", "--out", competition_manifest)
    assert result.exit_code == 2 and "is one of the inputs" in said(result)
    (tmp_path / "stats").mkdir()
    (tmp_path / "stats" / "report.md").write_text("my notes")
    result = run("stats", competition_manifest, "--out", tmp_path / "stats")
    assert result.exit_code == 2 and (tmp_path / "stats" / "report.md").read_text() == "my notes"


@pytest.mark.parametrize("command", ["crop", "framing", "cache"])
def test_a_file_where_a_skip_report_goes_is_replaced_only_if_faceattr_wrote_it(command, competition_manifest, tmp_path):
    out = tmp_path / "out.npy" if command == "cache" else tmp_path / "out.csv"
    report = tmp_path / "out.skipped.csv"
    report.write_text("a user's own list")
    extra = {"crop": ["--cache", tmp_path / "cache"], "framing": ["--limit", "2"], "cache": ["--size", "32"]}[command]
    result = run(command, competition_manifest, "--out", out, *extra)
    assert result.exit_code == 2 and "already exists" in said(result) and report.read_text() == "a user's own list"
    report.write_text("path,reason,detail\r\n")  # one of ours, left by an earlier run: replaced
    result = run(command, competition_manifest, "--out", out, *extra)
    assert "already exists" not in said(result)  # (framing then finds no face in these drawn ones: not the point)


# 12. a long run cut short keeps what it finished, and says how to go on


@pytest.mark.parametrize("faces", ["--faces", "--no-faces"])
def test_a_predict_cut_short_goes_on_from_the_photos_it_finished(faces, trained_run, competition_root, tmp_path):
    import faceattr.inference.faces_in_photos as faces_in_photos
    from faceattr.inference.predictor import BasePredictor

    photos = tmp_path / "photos"
    photos.mkdir()
    for k, image in enumerate(sorted((competition_root / "eval" / "images").iterdir())[:6]):
        shutil.copy(image, photos / f"{k}.jpg")
    command = ("predict", trained_run.best_checkpoint, photos, faces, "--batch-size", "2", "--no-onnx-cache")
    assert run(*command, "--out", tmp_path / "whole.csv").exit_code == 0

    calls = []
    real = faces_in_photos.classify_photos if faces == "--faces" else BasePredictor.predict_paths

    def model(*args, **kwargs):  # the user's Ctrl-C comes during the second batch
        calls.append(1)
        if stop and len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    mp = pytest.MonkeyPatch()
    if faces == "--faces":
        mp.setattr(faces_in_photos, "classify_photos", model)
    else:
        mp.setattr(BasePredictor, "predict_paths", model)
    out = tmp_path / "not yet made" / "p.csv"
    try:
        stop = True
        result = run(*command, "--out", out)
        assert result.exit_code == 130 and "the same command goes on" in said(result) and not out.exists()
        calls.clear()
        stop = False
        result = run(*command, "--out", out)
    finally:
        mp.undo()
    assert result.exit_code == 0 and "going on from the 2 photo(s) noted" in said(result)
    assert len(calls) == 2  # the four photos left, two a batch: the first two were not predicted again
    assert out.read_bytes() == (tmp_path / "whole.csv").read_bytes()  # as an unbroken run writes it
    assert not list(tmp_path.rglob("*.partial.csv"))  # the journal goes once out holds every row


def test_the_journal_keeps_whole_photos_only_and_belongs_to_its_settings(tmp_path):
    from faceattr.inference.journal import PredictionJournal

    journal = PredictionJournal(tmp_path / "p.csv", {"models": ["a.ckpt"]})
    journal.append(pd.DataFrame({"path": ["a.jpg", "b.jpg", "b.jpg"], "face": [0, 0, 1], "p": [0.25, 0.5, 0.75]}))
    text = journal.path.read_bytes()
    journal.path.write_bytes(text[: text.rindex(b"b.jpg") + 8])  # killed while writing b.jpg's second face
    assert journal.keep_whole()["path"].tolist() == ["a.jpg"]  # b.jpg, cut short, is predicted again
    journal.append(pd.DataFrame({"path": ["b.jpg", "b.jpg"], "face": [0, 1], "p": [0.5, 0.75]}))
    assert journal.done()[["path", "face"]].values.tolist() == [["a.jpg", 0], ["b.jpg", 0], ["b.jpg", 1]]
    other = PredictionJournal(tmp_path / "p.csv", {"models": ["b.ckpt"]})  # another model never takes these rows
    assert other.path != journal.path and other.done().empty


def test_a_photo_named_twice_is_predicted_once_with_all_its_rows(trained_run, competition_root, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for k, image in enumerate(sorted((competition_root / "eval" / "images").iterdir())[:2]):
        shutil.copy(image, photos / f"{k}.jpg")
    out = tmp_path / "p.csv"
    result = run("predict", trained_run.best_checkpoint, photos / "1.jpg", photos, "--batch-size", "1", "--out", out)
    assert result.exit_code == 0, result.output
    assert "each file predicted once" in said(result)
    assert pd.read_csv(out)["path"].tolist() == [str(photos / "1.jpg"), str(photos / "0.jpg")]  # as first named


def test_a_training_run_stopped_by_ctrl_c_says_how_to_go_on_and_keeps_its_history(competition_manifest, tmp_path):
    from lightning.pytorch.callbacks import Callback

    from faceattr.errors import Interrupted
    from faceattr.training import train

    class CtrlC(Callback):  # the user's Ctrl-C, at the start of epoch `epoch` (from 0)
        def __init__(self, epoch: int) -> None:
            self.epoch = epoch

        def on_train_epoch_start(self, trainer, module) -> None:
            if trainer.current_epoch == self.epoch:
                raise KeyboardInterrupt

    def cfg():
        return load_config(None, tiny_overrides(competition_manifest, tmp_path, **{"train.epochs": 4}))

    with pytest.raises(Interrupted, match=r"first epoch: no epoch finished.*--overwrite starts over"):
        train(cfg(), callbacks=[CtrlC(0)])
    with pytest.raises(Interrupted, match=r"stopped in epoch 3: the epochs before it are kept in .*last\.ckpt"):
        train(cfg(), callbacks=[CtrlC(2)], overwrite=True)
    metrics = tmp_path / "tiny" / "csv" / "metrics.csv"
    with pytest.raises(Interrupted, match="stopped in epoch 4"):  # resumed, and stopped again
        train(cfg(), callbacks=[CtrlC(3)], resume=True)
    assert set(pd.read_csv(metrics)["epoch"].dropna()) == {0, 1, 2}  # the first session's epochs are still there
    train(cfg(), resume=True)
    assert set(pd.read_csv(metrics)["epoch"].dropna()) == {0, 1, 2, 3}


def test_crop_stopped_by_ctrl_c_says_its_crops_are_kept_and_the_next_run_reuses_them(competition_manifest, tmp_path):
    import faceattr.faces.crop as crop

    real, made = crop._crop_one, []

    def crop_one(*args, **kwargs):  # the user's Ctrl-C comes at the 21st face
        made.append(1)
        if len(made) == 21:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    command = ("crop", competition_manifest, "--cache", tmp_path / "crops", "--out", tmp_path / "m.crops.csv")
    mp = pytest.MonkeyPatch()
    mp.setattr(crop, "_crop_one", crop_one)
    try:
        result = run(*command)
    finally:
        mp.undo()
    assert result.exit_code == 130 and "the crops made are kept in" in said(result) and "goes on" in said(result)
    result = run(*command)
    assert result.exit_code == 0 and "(20 from the cache" in said(result)


def test_framing_stopped_by_ctrl_c_names_the_journal_it_goes_on_from(competition_manifest, tmp_path, monkeypatch):
    import faceattr.faces.framing as framing

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(framing, "measure_framing", stopped)
    result = run("framing", competition_manifest, "--landmarks", "--out", tmp_path / "m.framed.csv")
    assert result.exit_code == 130 and "noted in" in said(result) and "m.framed.csv." in said(result)
    result = run("framing", competition_manifest, "--out", tmp_path / "m.framed.csv")  # no journal without landmarks
    assert result.exit_code == 130 and "nothing kept" in said(result)
