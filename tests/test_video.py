"""Video: sampled frames, faces tracked across frames with one id each, labels averaged per track, damaged files
keep what was read, and `--draw` writes a playable video. The clips are made here with PyAV (the reader's own
library): two real faces (the public-domain astronaut photo and its mirror image) moving across a canvas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

av = pytest.importorskip("av", reason="video needs pip install 'faceattr[video]'")
pytest.importorskip("motpy", reason="video tracking needs pip install 'faceattr[video]'")
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image ships the public-domain test photo")

from faceattr.inference.video import FrameReader, predict_video  # noqa: E402

FRAMES, RATE, SIZE = 12, 10, (320, 240)


def write_clip(path: Path, frames: int = FRAMES, rate: int = RATE, options: dict | None = None) -> Path:
    """Face A moves right along the top, face B (mirrored) left along the bottom, on a grainy background (so every
    frame has bytes of its own and a cut file loses whole frames); mpeg4, a key frame every 2 frames."""
    face = Image.fromarray(skimage_data.astronaut()[20:220, 150:320]).resize((90, 106))
    mirrored = face.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    rng = np.random.default_rng(0)
    container = av.open(str(path), "w", options=options or {})
    stream = container.add_stream("mpeg4", rate=rate)
    stream.width, stream.height, stream.pix_fmt, stream.gop_size = SIZE[0], SIZE[1], "yuv420p", 2
    for k in range(frames):
        grain = rng.integers(-25, 25, (SIZE[1], SIZE[0], 3))
        canvas = Image.fromarray(np.clip(grain + np.array((70, 90, 110)), 0, 255).astype(np.uint8))
        canvas.paste(face, (10 + 8 * k, 4))
        canvas.paste(mirrored, (220 - 8 * k, 128))
        for packet in stream.encode(av.VideoFrame.from_image(canvas)):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("video") / "two_faces.avi")  # AVI declares its frame count


@pytest.fixture(scope="module")
def predictor(trained_run):
    from faceattr.inference.load import load_predictor

    return load_predictor(trained_run.best_checkpoint)


@pytest.fixture(scope="module")
def result(predictor, clip):
    return predict_video(predictor, clip, predictor.face_detector(), batch_frames=5)


def test_every_and_fps_sample_the_right_frames(clip):
    assert [f.index for f in FrameReader(str(clip))] == list(range(FRAMES))
    assert [f.index for f in FrameReader(str(clip), every=3)] == [0, 3, 6, 9]
    sampled = list(FrameReader(str(clip), fps=5))  # a 10 fps clip at 5 fps: every second frame
    assert [f.index for f in sampled] == [0, 2, 4, 6, 8, 10]
    assert [f.time_s for f in sampled] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_each_face_keeps_one_track_id_across_frames(result):
    frames = result.frames
    assert result.frames_used == FRAMES and result.damage is None
    assert len(frames) == 2 * FRAMES  # both faces found in every frame
    top = frames[(frames["y1"] + frames["y2"]) / 2 < SIZE[1] / 2]
    bottom = frames[(frames["y1"] + frames["y2"]) / 2 >= SIZE[1] / 2]
    assert top["track"].nunique() == 1 and bottom["track"].nunique() == 1
    assert set(frames["track"]) == {0, 1} and top["track"].iloc[0] != bottom["track"].iloc[0]
    assert sorted(top["frame"]) == list(range(FRAMES))


def test_each_track_row_averages_its_frames_probabilities(result):
    tracks, frames = result.tracks, result.frames
    assert len(tracks) == 2 and tracks["frames_seen"].tolist() == [FRAMES, FRAMES]
    probs = [c for c in frames if c.startswith("p_")]
    assert probs
    for _, track in tracks.iterrows():
        mean = frames[frames["track"] == track["track"]][probs].mean()
        assert np.allclose(track[probs].astype(float), mean, atol=1e-5)
        assert track["first_s"] == 0.0 and track["last_s"] == pytest.approx((FRAMES - 1) / RATE)
    for task in ("mask", "gender", "age_bin"):
        cols = [c for c in probs if c.startswith(f"p_{task}_")]
        assert (tracks[task] == np.argmax(tracks[cols].to_numpy(float), axis=1)).all()


def test_a_truncated_video_keeps_the_frames_before_the_damage_and_reports_it(clip, tmp_path):
    cut = tmp_path / "cut.avi"
    data = clip.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.55)])
    reader = FrameReader(str(cut))
    kept = list(reader)
    assert 1 <= len(kept) < FRAMES
    assert [f.index for f in kept] == list(range(len(kept)))
    assert reader.damage is not None and reader.damage.reason == "truncated"


def test_draw_writes_a_playable_video_with_one_frame_per_sampled_frame(predictor, clip, tmp_path):
    out = tmp_path / "drawn.mp4"
    drawn = predict_video(predictor, clip, predictor.face_detector(), every=2, draw=out).drawn
    assert drawn == out
    with av.open(str(out)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == FRAMES // 2
    assert frames[0].width == SIZE[0] and frames[0].height == SIZE[1]
    assert not list(tmp_path.glob(".*"))  # the temporary file was renamed, not left behind


def test_predict_command_writes_frame_and_track_tables_beside_the_photo_rows(trained_run, clip, tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    photo = tmp_path / "photo.jpg"
    Image.fromarray(skimage_data.astronaut()).save(photo)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    out = tmp_path / "pred.csv"
    args = ["predict", str(trained_run.best_checkpoint), str(photo), str(clip), str(broken), "--faces"]
    run = CliRunner().invoke(app, [*args, "--out", str(out), "--every", "2"])
    assert run.exit_code == 0, run.output
    assert len(pd.read_csv(out)) == 1  # the photo
    frames, tracks = pd.read_csv(tmp_path / "pred.frames.csv"), pd.read_csv(tmp_path / "pred.tracks.csv")
    assert sorted(set(frames["frame"])) == [0, 2, 4, 6, 8, 10] and len(tracks) == 2
    skipped = pd.read_csv(tmp_path / "pred.skipped.csv")
    assert skipped["path"].tolist() == [str(broken)] and skipped["reason"].tolist() == ["not_a_video"]
    again = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert again.exit_code != 0 and "already exists" in again.output  # nothing is overwritten silently


def test_draw_may_name_the_output_video_itself(trained_run, clip, tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    drawn = tmp_path / "out.mp4"
    args = ["predict", str(trained_run.best_checkpoint), str(clip), "--out", str(tmp_path / "p.csv")]
    run = CliRunner().invoke(app, [*args, "--every", "3", "--draw", str(drawn)])
    assert run.exit_code == 0, run.output
    with av.open(str(drawn)) as container:
        assert len(list(container.decode(video=0))) == 4  # frames 0, 3, 6, 9


def test_no_faces_says_videos_are_still_tracked_face_by_face(trained_run, clip, tmp_path):
    from typer.testing import CliRunner

    from faceattr.cli import app

    args = ["predict", str(trained_run.best_checkpoint), str(clip), "--out", str(tmp_path / "p.csv"), "--every", "6"]
    run = CliRunner().invoke(app, [*args, "--no-faces"])
    assert run.exit_code == 0 and "--no-faces applies to photos" in " ".join(run.output.split())
    assert "--no-faces" not in CliRunner().invoke(app, args).output  # said only when asked for


def test_a_fragmented_mp4_cut_inside_a_fragment_is_reported_not_read_as_complete(tmp_path):
    """Fragmented MP4 (as phones and streaming recorders write) declares no frame count, and FFmpeg ends a cut-off
    fragment without an error: the corrupt packet it flags is what tells a cut file from a short one."""
    whole = write_clip(tmp_path / "frag.mp4", options={"movflags": "frag_keyframe+empty_moov"})
    assert len(list(FrameReader(str(whole)))) == FRAMES
    data = whole.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.55)])
    reader = FrameReader(str(tmp_path / "cut.mp4"))
    kept = list(reader)
    assert 1 <= len(kept) < FRAMES and [f.index for f in kept] == list(range(len(kept)))
    assert reader.damage is not None and reader.damage.reason == "truncated"
    (tmp_path / "head.mp4").write_bytes(data[:1200])  # the header and no whole frame
    empty = FrameReader(str(tmp_path / "head.mp4"))
    assert list(empty) == [] and empty.damage is not None


def test_a_ctrl_c_keeps_the_faces_of_the_frames_read_and_a_playable_drawn_video(trained_run, clip, tmp_path):
    from typer.testing import CliRunner

    import faceattr.inference.video as video
    from faceattr.cli import app

    later = tmp_path / "later.avi"
    later.write_bytes(clip.read_bytes())
    real, seen = video.FaceTracker.update, []

    def update(self, faces):  # the user's Ctrl-C comes while frame 5 is tracked
        seen.append(1)
        if len(seen) == 6:
            raise KeyboardInterrupt
        return real(self, faces)

    drawn, out = tmp_path / "drawn", tmp_path / "p.csv"
    mp = pytest.MonkeyPatch()
    mp.setattr(video.FaceTracker, "update", update)
    try:
        run = CliRunner().invoke(
            app,
            [
                "predict",
                str(trained_run.best_checkpoint),
                str(clip),
                str(later),
                "--out",
                str(out),
                "--draw",
                str(drawn),
            ],
        )
    finally:
        mp.undo()
    assert run.exit_code == 130 and "the frames read before it are written" in " ".join(run.output.split())
    frames = pd.read_csv(tmp_path / "p.frames.csv")
    assert sorted(set(frames["frame"])) == [0, 1, 2, 3, 4] and set(frames["path"]) == {str(clip)}  # later: not begun
    with av.open(str(drawn / f"{clip.name}_faces.mp4")) as container:
        assert len(list(container.decode(video=0))) == 5
