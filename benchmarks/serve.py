"""Server throughput and latency: single-image POST /predict against `faceattr serve` on loopback, with 1, 8 and 32
concurrent clients (the clients run on the same machine and share its cores), torch checkpoint vs the exported
ONNX model on onnxruntime. Each request is a 384x512 JPEG with one real face when ../shared/data/utkface exists (so
MTCNN finds it), else a drawn face.

The model is EfficientNet-Lite0 at 128 px, briefly trained on the synthetic demo data (speed does not depend on
its accuracy). Request counts are bounded; only 127.0.0.1 is contacted.

`--code NAME` labels the rows (before / after a change); rows of other labels already saved are kept.

    python -m benchmarks.serve --requests 96 --code after
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image

from benchmarks.common import SHARED_UTKFACE, refuse_saved_code, save, with_code_rows
from faceattr.config import load_config
from faceattr.data.drawn_faces import make_competition_dataset
from faceattr.data.manifest import write_manifest
from faceattr.data.sources import read_competition
from faceattr.inference.export import export_onnx
from faceattr.training import train


def build_model(work: Path, image_size: int) -> tuple[Path, Path]:
    root = make_competition_dataset(work / "data", persons=20, eval_persons=1, seed=0)
    manifest = write_manifest(read_competition(root), work / "manifest.csv")
    cfg = load_config(
        None,
        [
            f"data.manifest={manifest}",
            f"data.image_size={image_size}",
            "train.epochs=1",
            "data.num_workers=0",
            "train.progress_bar=false",
            f"run.dir={work}",
            "run.name=serve",
        ],
    )
    checkpoint = train(cfg).best_checkpoint
    onnx_path, _ = export_onnx(checkpoint, work / "model.onnx")
    return checkpoint, onnx_path


def photo_bytes() -> bytes:
    canvas = Image.new("RGB", (384, 512), (90, 110, 140))
    if SHARED_UTKFACE.is_dir():
        canvas.paste(Image.open(sorted(SHARED_UTKFACE.glob("*.jpg"))[5]).convert("RGB"), (92, 120))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    start = time.time()
    while time.time() - start < timeout:
        if process.poll() is not None:
            raise SystemExit(f"server exited early with code {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.5)
    raise SystemExit("server did not start in time")


def load(url: str, payload: bytes, clients: int, requests: int) -> dict:
    def one(_: int) -> float:
        start = time.perf_counter()
        response = httpx.post(url + "/predict", files={"file": ("p.jpg", payload, "image/jpeg")}, timeout=60)
        response.raise_for_status()
        return time.perf_counter() - start

    for _ in range(3):  # warm-up
        one(0)
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(pool.map(one, range(requests)))
    wall = time.perf_counter() - start
    return {
        "requests_per_s": round(requests / wall, 2),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 1),
        "p99_ms": round(latencies[int(0.99 * (len(latencies) - 1))] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--code", default="current", help="label of this code state (before / after ...)")
    parser.add_argument("--replace", action="store_true", help="overwrite the saved rows of this --code")
    args = parser.parse_args()
    refuse_saved_code(["serve"], args.code, args.replace)
    work = Path(tempfile.mkdtemp(prefix="faceattr-serve-bench-"))
    checkpoint, onnx_path = build_model(work, args.image_size)
    payload = photo_bytes()
    rows = []
    # the checkpoint on torch (serve's default on CPU would run its ONNX copy, the onnxruntime row's speed)
    for backend, model, extra in (("torch", checkpoint, ["--no-onnx-cache"]), ("onnxruntime", onnx_path, [])):
        url = f"http://127.0.0.1:{args.port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "faceattr", "serve", "--checkpoint", str(model), "--port", str(args.port), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(url, server)
            for clients in (1, 8, 32):
                row = {
                    "code": args.code,
                    "backend": backend,
                    "clients": clients,
                    "requests": args.requests,
                    **load(url, payload, clients, args.requests),
                }
                rows.append(row)
                print(row, flush=True)
        finally:
            server.terminate()
            server.wait(timeout=30)
    save(
        "serve",
        with_code_rows("serve", args.code, rows),
        ["code", "backend", "clients", "requests", "requests_per_s", "p50_ms", "p95_ms", "p99_ms"],
        {"image_size": args.image_size, "photo": "384x512 JPEG, one face", "detector": "MTCNN (CPU)"},
    )


if __name__ == "__main__":
    main()
