"""Video throughput: frames/s of `predict` on a video (decode, detect, track, classify), with 1 and with 4 faces.

The clip: 640x480 at 25 fps, 100 frames (4 s), real held-out UTKFace faces (fold 0 of the union; 110 px) drifting
across a grainy background, mpeg4 in AVI, written here with PyAV. The model is the lite0 128 px demo model of
benchmarks/predict_speed.py (speed does not depend on accuracy), with the detector it was trained with: rows of
other detectors already saved are kept. Every frame is used (--every 1). Stage shares are
of the run's wall time (`faceattr predict --profile` measures the same stages for photos).

    python -m benchmarks.video
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import SHARED_UTKFACE, save, saved_rows, utkface_union

SIZE, RATE, FRAMES, FACE = (640, 480), 25, 100, 110


def write_clip(path: Path, faces: list[Image.Image], seed: int = 0) -> Path:
    import av

    rng = np.random.default_rng(seed)
    starts = [(40 + 300 * (k % 2), 40 + 230 * (k // 2)) for k in range(len(faces))]
    drift = [rng.uniform(-1.5, 1.5, 2) for _ in faces]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        for t in range(FRAMES):
            grain = rng.integers(-20, 20, (SIZE[1], SIZE[0], 3))
            canvas = Image.fromarray(np.clip(grain + np.array((80, 95, 110)), 0, 255).astype(np.uint8))
            for face, (x, y), (dx, dy) in zip(faces, starts, drift, strict=True):
                canvas.paste(face, (int(x + dx * t), int(y + dy * t)))
            for packet in stream.encode(av.VideoFrame.from_image(canvas)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/faceattr-video"))
    args = parser.parse_args()
    from faceattr.faces.detect import detector_family
    from faceattr.inference.load import load_predictor
    from faceattr.inference.profile import StageClock
    from faceattr.inference.video import predict_video

    if not SHARED_UTKFACE.is_dir():
        raise SystemExit(f"UTKFace not found at {SHARED_UTKFACE}: the clips are made from held-out UTKFace faces")
    args.work.mkdir(parents=True, exist_ok=True)
    _, frame = utkface_union(args.work)
    held = frame[frame["fold"] == 0].sample(n=4, random_state=1)["path"]
    faces = [Image.open(p).convert("RGB").resize((FACE, FACE)) for p in held]
    checkpoint = Path("/tmp/faceattr-predict-speed/model/serve/checkpoints/best.ckpt")
    if not checkpoint.is_file():
        from benchmarks.serve import build_model

        checkpoint, _ = build_model(args.work / "model", 128)
    predictor = load_predictor(checkpoint)
    detector = predictor.face_detector()
    rows = []
    for n in (1, 4):
        clip = write_clip(args.work / f"faces{n}.avi", faces[:n])
        predict_video(predictor, clip, detector)  # warm-up
        clock = StageClock()
        start = time.perf_counter()
        result = predict_video(predictor, clip, detector, clock=clock)
        wall = time.perf_counter() - start
        stages = {r["stage"]: r["seconds"] for r in clock.rows(result.frames_used)}
        row = {
            "detector": detector_family(predictor.cfg.faces.detector),
            "faces": n,
            "frames": result.frames_used,
            "frames_per_s": round(result.frames_used / wall, 2),
            "face_rows": len(result.frames),
            "tracks": len(result.tracks),
        }
        for stage in ("decode", "detect", "track", "crop", "resize", "model"):
            row[f"{stage}_share"] = round(stages.get(stage, 0.0) / wall, 3)
        rows.append(row)
        print(row)
    detector = rows[0]["detector"]  # rows of other detectors stay (older rows without the column: MTCNN)
    rows = [r for r in saved_rows("video") if r.get("detector", "mtcnn") != detector] + rows
    save("video", rows, list(rows[-1]), {"clip": f"{SIZE[0]}x{SIZE[1]}, {RATE} fps, {FRAMES} frames, faces {FACE} px"})


if __name__ == "__main__":
    main()
