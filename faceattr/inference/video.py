"""Prediction on videos: sampled frames, every face in them, faces tracked across frames, labels per track.

Frames are read with PyAV (FFmpeg: any container it reads), detected by the model's face detector, and tracked by
motpy's Kalman-filter tracker (`faceattr[video]`). Each face gets a row per sampled frame; each track one row whose
probabilities are the mean of its frames', so a face's age and gender do not flicker from frame to frame. A video
that breaks part-way keeps the frames read before the damage, and the damage is reported in the skipped report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.atomic import atomic_path
from faceattr.data.images import VIDEO_SUFFIXES
from faceattr.errors import FaceAttrError, ImageLoadError, NothingReadable
from faceattr.faces.detect import Face, FaceDetector, Found
from faceattr.inference.faces_in_photos import FACE_ROW_COLUMNS, classify_photos, flat_row
from faceattr.inference.predictor import BasePredictor
from faceattr.inference.profile import StageClock
from faceattr.labels import CLASS_NAMES, CLASSIFICATION_TASKS, decide

TASKS = CLASSIFICATION_TASKS


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class Frame:
    index: int  # in the video's own frame order, from 0
    time_s: float
    image: np.ndarray  # RGB uint8


@dataclass
class FrameReader:
    """The frames of `path` to use: every `every`-th frame, or about `fps` per second (when given). Damage part-way
    ends the iteration; `damage` then holds the error, and the frames already yielded stand."""

    path: str
    every: int = 1
    fps: float | None = None
    damage: ImageLoadError | None = None
    frame_rate: float = 0.0
    frames_read: int = 0
    corrupt_at: int | None = None  # byte offset of the packet the demuxer flagged corrupt

    def __iter__(self) -> Iterator[Frame]:
        import av

        if self.every < 1 or (self.fps is not None and self.fps <= 0):
            raise FaceAttrError(f"--every must be >= 1 and --fps > 0 (got {self.every}, {self.fps})")
        try:
            container = av.open(self.path)
        except (av.FFmpegError, OSError) as e:
            raise ImageLoadError(self.path, "not_a_video", str(e)[:200]) from None
        with container:
            if not container.streams.video:
                raise ImageLoadError(self.path, "not_a_video", "no video stream")
            stream = container.streams.video[0]
            self.frame_rate = float(stream.average_rate or stream.guessed_rate or 25)
            next_time = 0.0
            try:
                for i, frame in enumerate(self._decode(container, stream)):
                    self.frames_read = i + 1
                    t = float(frame.time) if frame.time is not None else i / self.frame_rate
                    if self.fps is not None:
                        if t + 0.5 / self.frame_rate < next_time:
                            continue
                        next_time += 1.0 / self.fps
                    elif i % self.every:
                        continue
                    yield Frame(i, t, frame.to_ndarray(format="rgb24"))
            except av.FFmpegError as e:
                self.damage = ImageLoadError(
                    self.path, "truncated", f"damaged after frame {self.frames_read}: {str(e)[:160]}"
                )
                return
            if self.corrupt_at is not None:
                self.damage = ImageLoadError(
                    self.path,
                    "truncated",
                    f"cut off after frame {self.frames_read} (a corrupt packet at byte {self.corrupt_at})",
                )
                return
            if self.frames_read == 0:
                self.damage = ImageLoadError(self.path, "truncated", "no frame could be decoded: cut off or empty")
                return
            expected = stream.frames or (round(container.duration / 1e6 * self.frame_rate) if container.duration else 0)
            if expected and self.frames_read < expected - 1:  # the stream ended early: a cut-off file
                self.damage = ImageLoadError(
                    self.path, "truncated", f"read {self.frames_read} of the {expected} frames the file declares"
                )

    def _decode(self, container, stream) -> Iterator:
        """The stream's frames, packet by packet; a packet the demuxer flags corrupt (a fragmented MP4 cut inside its
        last fragment ends so, without an error) stops the read, after the frames decoded before it (`corrupt_at`)."""
        for packet in container.demux(stream):
            if packet.is_corrupt:
                self.corrupt_at = packet.pos
                yield from stream.codec_context.decode(None)  # the frames the decoder still holds
                return
            yield from packet.decode()


class FaceTracker:
    """motpy's tracker, with small integer ids in order of appearance, and each detection's track id."""

    def __init__(self, fps: float) -> None:
        from motpy import MultiObjectTracker

        self.tracker = MultiObjectTracker(dt=1.0 / max(fps, 1e-3))
        self.ids: dict[str, int] = {}

    def update(self, faces: list[Face]) -> list[int]:
        from motpy import Detection
        from motpy.metrics import calculate_iou

        tracks = self.tracker.step([Detection(box=np.array(f.box), score=f.score) for f in faces])
        if not faces or not tracks:
            return [-1] * len(faces)
        # each detection goes to the track whose filtered box overlaps it most (-1 below an IoU of 0.3)
        iou = calculate_iou(np.array([f.box for f in faces]), np.array([t.box for t in tracks]))
        best, best_iou = iou.argmax(1).tolist(), iou.max(1).tolist()
        return [
            self.ids.setdefault(tracks[j].id, len(self.ids)) if overlap >= 0.3 else -1
            for j, overlap in zip(best, best_iou, strict=True)
        ]


@dataclass
class VideoResult:
    frames: pd.DataFrame  # one row per sampled frame and face
    tracks: pd.DataFrame  # one row per track
    frames_used: int = 0
    damage: ImageLoadError | None = None
    drawn: Path | None = None
    clock: StageClock = field(default_factory=StageClock)
    stopped: bool = False  # the user's Ctrl-C ended it: the frames before it stand, as a damaged file's do


# the leading columns of the two tables, written as the header when no face was found in any frame
VIDEO_TABLE_COLUMNS = (
    ("frame", "time_s", "track", *FACE_ROW_COLUMNS),
    ("path", "track", "first_s", "last_s", "frames_seen"),
)


def predict_video(
    predictor: BasePredictor,
    path: str | Path,
    detector: FaceDetector,
    every: int = 1,
    fps: float | None = None,
    draw: Path | None = None,
    batch_frames: int = 16,
    clock: StageClock | None = None,
    progress=None,
) -> VideoResult:
    """Detect, track and classify every face of the sampled frames of one video."""
    clock = clock or StageClock()
    reader = FrameReader(str(path), every, fps)
    tracker: FaceTracker | None = None
    writer: _VideoWriter | None = None
    rows: list[dict] = []
    smoothed: dict[int, list[dict]] = {}
    used = 0
    frames = iter(reader)
    stopped = False
    with ExitStack() as outputs:  # the drawn video: a temp file, renamed into place only when complete
        try:
            while True:
                with clock.stage("decode"):
                    batch = [frame for _, frame in zip(range(batch_frames), frames, strict=False)]
                if not batch:
                    break
                used += len(batch)
                tracker = tracker or FaceTracker(fps or reader.frame_rate / every)
                with clock.stage("detect"):
                    found = detector.detect([f.image for f in batch])  # first pass only: no whole-frame fallback
                with_faces = [k for k, faces in enumerate(found) if faces]
                images = [batch[k].image for k in with_faces]
                results = classify_photos(predictor, images, [(found[k], Found.DETECTED) for k in with_faces], clock)
                per_frame = dict(zip(with_faces, results, strict=True))
                for k, frame in enumerate(batch):
                    with clock.stage("track"):
                        ids = tracker.update(found[k])
                    frame_results = per_frame.get(k, [])
                    for result, track in zip(frame_results, ids, strict=True):
                        result["track"] = track
                        if track >= 0:  # a face the tracker could not place is smoothed with nobody else's
                            smoothed.setdefault(track, []).append(result)
                        rows.append(
                            {
                                "frame": frame.index,
                                "time_s": round(frame.time_s, 3),
                                "track": track,
                                **flat_row(str(path), result),
                            }
                        )
                    if draw is not None:
                        with clock.stage("draw"):
                            if writer is None:
                                tmp = outputs.enter_context(atomic_path(draw, keep_suffix=True))
                                rate = fps or reader.frame_rate / every
                                writer = outputs.enter_context(_VideoWriter(tmp, frame.image.shape, rate))
                            writer.write(_drawn(frame.image, frame_results, smoothed))
                if progress is not None:
                    progress(len(batch))
        except KeyboardInterrupt:  # the frames done stand; the drawn video closes with them
            stopped = True
    table = pd.DataFrame(rows)
    drawn = draw if writer else None
    return VideoResult(table, track_table(table, predictor), used, reader.damage, drawn, clock, stopped)


def track_table(frames: pd.DataFrame, predictor: BasePredictor) -> pd.DataFrame:
    """One row per track: when it was seen, how often, and labels from its frames' mean probabilities."""
    if frames.empty:
        return pd.DataFrame()
    rows = []
    for track, part in frames[frames["track"] >= 0].groupby("track", sort=True):
        probs = {
            task: part[[c for c in part if c.startswith(f"p_{task}_")]].to_numpy().mean(axis=0, keepdims=True)
            for task in TASKS
            if f"p_{task}_0" in part
        }
        row = {
            "path": part["path"].iloc[0],
            "track": int(track),
            "first_s": float(part["time_s"].min()),
            "last_s": float(part["time_s"].max()),
            "frames_seen": len(part),
        }
        labels = decide(probs, predictor.cfg.data.old_threshold)
        for task in TASKS:
            if task in labels:
                row[task] = int(labels[task][0])
                row[f"{task}_name"] = CLASS_NAMES[task][row[task]]
        if "age_years" in part:  # each frame's age is an expectation: their mean is the track's
            row["age_years"] = round(float(part["age_years"].mean()), 1)
        for task, p in probs.items():
            row.update({f"p_{task}_{c}": round(float(v), 5) for c, v in enumerate(p[0])})
        rows.append(row)
    return pd.DataFrame(rows)


def _drawn(image: np.ndarray, results: list[dict], smoothed: dict[int, list[dict]]) -> np.ndarray:
    """The frame with each face's box, track id and its track's labels so far (averaged, so they hold still)."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    for result in results:
        history = smoothed.get(result["track"], [result]) if result["track"] >= 0 else [result]
        parts = [f"#{result['track']}"]
        for task in TASKS:
            if task in result:
                mean = np.mean([h[task]["probs"] for h in history], axis=0)
                parts.append(CLASS_NAMES[task][int(np.argmax(mean))])
        if "age_years" in result:
            parts.append(f"{np.mean([h['age_years'] for h in history]):.0f}y")
        box = tuple(result["box"])
        draw.rectangle(box, outline=(40, 200, 80), width=2)
        draw.text((box[0], max(0, box[1] - 12)), " ".join(parts), fill=(40, 200, 80))
    return np.asarray(canvas)


class _VideoWriter:
    """MPEG-4 video through PyAV at the sampled frame rate; a context manager that flushes and closes the file."""

    def __init__(self, path: Path, shape: tuple, fps: float) -> None:
        import av

        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream("mpeg4", rate=max(1, round(fps)))
        self.stream.height, self.stream.width = shape[0] - shape[0] % 2, shape[1] - shape[1] % 2
        self.stream.pix_fmt = "yuv420p"

    def write(self, image: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(image[: self.stream.height, : self.stream.width], format="rgb24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def __enter__(self) -> _VideoWriter:
        return self

    def __exit__(self, *exc) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def predict_videos(
    predictor: BasePredictor,
    videos: list[str],
    detector: FaceDetector,
    every: int = 1,
    fps: float | None = None,
    draw_dir: Path | None = None,
    skips=None,
    progress=None,
    overwrite: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """Frame rows and track rows of several videos (a track id is per video), and whether the user's Ctrl-C
    stopped them (the frames read before it kept, the videos after it not begun); unreadable or damaged videos
    are reported to `skips`, the frames read before any damage kept. Drawn copies go to `draw_dir` as
    `<video name>_faces.mp4` (or, for one video, to `draw_dir` itself when it names a video file); an existing one
    is refused unless `overwrite`."""
    drawn_paths = [None if draw_dir is None else Path(draw_dir) / f"{Path(p).name}_faces.mp4" for p in videos]
    if draw_dir is not None and Path(draw_dir).suffix.lower() in VIDEO_SUFFIXES:  # --draw out.mp4: that file
        if len(videos) != 1:
            raise FaceAttrError(
                f"--draw {draw_dir} names one video file, but {len(videos)} videos were given: pass a folder"
            )
        drawn_paths = [Path(draw_dir)]
    existing = [p for p in drawn_paths if p is not None and p.exists()]
    if existing and not overwrite:
        raise FaceAttrError(f"{existing[0]} already exists; pick another --draw folder or pass --overwrite")
    frames, tracks, usable, stopped = [], [], 0, False
    for path, drawn in zip(videos, drawn_paths, strict=True):
        try:
            result = predict_video(predictor, path, detector, every, fps, drawn, progress=progress)
        except ImageLoadError as e:
            if skips is not None:
                skips.add(e)
            continue
        if result.damage is not None and skips is not None:
            skips.add(result.damage)
        usable += result.frames_used > 0
        frames.append(result.frames)
        tracks.append(result.tracks)
        if result.stopped:
            stopped = True
            break
    if videos and not usable and not stopped:
        where = f"; the reasons are in {skips.csv_path}" if skips is not None and skips.csv_path else ""
        raise NothingReadable(f"no frame could be read from the {len(videos)} video(s) given{where}")
    nonempty = [f for f in frames if not f.empty], [t for t in tracks if not t.empty]
    frame_rows, track_rows = (pd.concat(part, ignore_index=True) if part else pd.DataFrame() for part in nonempty)
    return frame_rows, track_rows, stopped
