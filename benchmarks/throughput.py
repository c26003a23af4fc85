"""Is the model the only bottleneck? Images per second for training and inference, three ways:

(a) model-bound: steps on a random batch already in memory;
(b) full pipeline: real images from disk through decode, augmentation and the model (a DataLoader as in training);
(c) pipeline alone: the same DataLoader with no model.

(b)/(a) near 1 means the data pipeline keeps up. Each data setup ("before": two loader processes decoding each
JPEG every epoch, the old default; "after": the `faceattr cache` memory-mapped decoded images read in-process)
is reported, with peak RSS per batch size from a fresh process each. Data: ../shared/data/utkface files (read in place).

    python -m benchmarks.throughput --image-size 128 --batch-size 32

`--denormals` instead times the age-gender preset's model (configs/utkface_age_gender.yaml, its packaged weights)
with subnormal floats kept and taken as zero, each in a fresh process (a process keeps the switch), on torch and
exported to onnxruntime (`predict` and `serve` on a CPU; its own switch, a session option; an export loads the
weights without their subnormals, models/net.py):

    python -m benchmarks.throughput --denormals --image-size 112 --batch-size 32
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from benchmarks.common import SHARED_UTKFACE, save, take
from faceattr.config import load_config
from faceattr.data.datamodule import FaceDataset
from faceattr.data.decoded_cache import DecodedCache, build_cache
from faceattr.data.sources import read_utkface
from faceattr.data.transforms import eval_transform, train_transform
from faceattr.labels import TASK_CLASSES
from faceattr.models.module import FaceAttrModule


def _module(backbone: str, channels_last: bool, compile_model: bool = False):
    cfg = load_config(
        None,
        [
            f"model.backbone={backbone}",
            "model.pretrained=none",
            "model.heads=[mask,gender,age_bin]",
            f"model.channels_last={str(channels_last).lower()}",
        ],
    )
    module = FaceAttrModule.from_config(cfg, load_pretrained=False)
    if compile_model:
        module.model = torch.compile(module.model)
    return cfg, module


def _targets(n: int, heads: tuple[str, ...] = ("mask", "gender", "age_bin")) -> dict[str, torch.Tensor]:
    """Random labels for `heads` (years for the exact-age head), the same on every call."""
    g = torch.Generator().manual_seed(0)
    return {
        t: torch.rand(n, generator=g) * 80 if t == "age" else torch.randint(0, TASK_CLASSES[t], (n,), generator=g)
        for t in heads
    }


class Runner:
    def __init__(self, module: FaceAttrModule) -> None:
        self.module = module
        self.optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)

    def train_step(self, images: torch.Tensor, targets: dict) -> None:
        self.module.train()
        losses = self.module._losses(self.module(images), targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.module._total(losses).backward()
        self.optimizer.step()

    @torch.no_grad()
    def infer(self, images: torch.Tensor) -> None:
        self.module.eval()
        self.module(images)


def _rate(batches, consume, warmup: int = 2) -> float:
    """Images per second over the batches after `warmup`."""
    seen, start = 0, None
    for i, batch in enumerate(batches):
        if i == warmup:
            start = time.perf_counter()
        if i >= warmup:
            seen += len(batch[0])
        consume(batch)
    return seen / (time.perf_counter() - start)


def _loader(frame: pd.DataFrame, transform, batch_size: int, workers: int, cache=None) -> DataLoader:
    return DataLoader(
        FaceDataset(frame, transform, cache=cache),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        drop_last=True,
    )


def measure(args, frame: pd.DataFrame, setup: dict) -> dict:
    torch.manual_seed(0)
    cfg, module = _module(args.backbone, setup["channels_last"], setup.get("compile", False))
    runner = Runner(module)
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    size, bs = args.image_size, args.batch_size
    fixed = (torch.randn(bs, 3, size, size), _targets(bs))
    steps = args.steps
    out = {"setup": setup["name"]}
    out["train_a"] = _rate([fixed] * (steps + 2), lambda b: runner.train_step(*b))
    cache = DecodedCache(setup["cache"]) if setup.get("cache") else None
    loader = _loader(frame, train_transform(size, cfg.augment, mean, std), bs, setup["workers"], cache)
    out["train_c"] = _rate(take(loader, steps + 2), lambda b: None)
    out["train_b"] = _rate(take(loader, steps + 2), lambda b: runner.train_step(*b))
    out["infer_a"] = _rate([fixed] * (steps * 2 + 2), lambda b: runner.infer(b[0]))
    eval_loader = _loader(frame, eval_transform(size, mean, std), bs, setup["workers"], cache)
    out["infer_c"] = _rate(take(eval_loader, steps * 2 + 2), lambda b: None)
    out["infer_b"] = _rate(take(eval_loader, steps * 2 + 2), lambda b: runner.infer(b[0]))
    for kind in ("train", "infer"):
        out[f"{kind}_b_over_a"] = out[f"{kind}_b"] / out[f"{kind}_a"]
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}


def _peak_rss_child(backbone: str, size: int, batch: int, channels_last: bool, queue) -> None:
    torch.manual_seed(0)
    _, module = _module(backbone, channels_last)
    runner = Runner(module)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(2):
        runner.train_step(torch.randn(batch, 3, size, size), _targets(batch))
    queue.put((before / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def in_fresh_process(target, *args):
    """What `target(*args, queue)` puts on its queue, run in a spawned process (memory and CPU switches start clean)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def peak_rss(backbone: str, size: int, batch: int, channels_last: bool) -> tuple[float, float]:
    """(MiB after building the model, peak MiB after two training steps) in a fresh process."""
    return in_fresh_process(_peak_rss_child, backbone, size, batch, channels_last)


PRESET = "configs/utkface_age_gender.yaml"  # the model --denormals times


def _preset_module() -> FaceAttrModule:
    """The age-gender preset's model with its packaged weights, as training builds it."""
    return FaceAttrModule.from_config(load_config(PRESET, []))


def _denormal_rates(flush: bool, size: int, batch: int, steps: int, queue) -> None:
    torch.set_flush_denormal(flush)  # before the model is built, as training does (models/floats.py)
    module = _preset_module()
    torch.manual_seed(0)
    runner = Runner(module)
    fixed = (torch.randn(batch, 3, size, size), _targets(batch, tuple(module.tasks)))
    train = _rate([fixed] * (steps + 2), lambda b: runner.train_step(*b))
    infer = _rate([fixed] * (steps * 2 + 2), lambda b: runner.infer(b[0]))
    queue.put(
        {"subnormals": "taken as zero" if flush else "kept", "train_a": round(train, 1), "infer_a": round(infer, 1)}
    )


def _export_preset(queue) -> None:
    """The preset's model as `predict` and `serve` run it on a CPU: its ONNX copy (path put on the queue)."""
    from faceattr.config import to_dict
    from faceattr.inference.export import export_onnx

    module = _preset_module()
    checkpoint = Path(tempfile.mkdtemp()) / "preset.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": {"config": to_dict(module.cfg)}}, checkpoint)
    queue.put(str(export_onnx(checkpoint, checkpoint.with_suffix(".onnx"))[0]))


def _onnx_rate(model: str, flush: bool, size: int, batch: int, steps: int, queue) -> None:
    """onnxruntime alone in its process (torch's idle threads would compete for the cores), its own switch."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.add_session_config_entry("session.set_denormal_as_zero", "1" if flush else "0")
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    images = np.random.default_rng(0).standard_normal((batch, 3, size, size), dtype=np.float32)
    queue.put(round(_rate([(images,)] * (steps * 2 + 2), lambda b: session.run(None, {"images": b[0]})), 1))


def denormals(args) -> None:
    size, batch, steps = args.image_size, args.batch_size, args.steps
    rows = [in_fresh_process(_denormal_rates, f, size, batch, steps) for f in (False, True)]
    model = in_fresh_process(_export_preset)
    for row, flush in zip(rows, (False, True), strict=True):
        row["infer_onnx"] = in_fresh_process(_onnx_rate, model, flush, size, batch, steps)
    settings = {**vars(args), "model": f"{PRESET} (lite0_face, packaged weights)"}
    save("denormals", rows, ["subnormals", "train_a", "infer_a", "infer_onnx"], {**settings, "units": "images/s"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED_UTKFACE)
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=12, help="timed training steps per measurement")
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--memory-batches", default="16,32,64")
    parser.add_argument("--denormals", action="store_true", help="time the preset's model with subnormals kept/zeroed")
    args = parser.parse_args()
    if args.denormals:
        denormals(args)
        return
    if not args.data.is_dir():
        raise SystemExit(f"UTKFace not found at {args.data}; pass --data")
    frame = read_utkface(args.data).sample(n=args.images, random_state=0).reset_index(drop=True)
    cache = build_cache(frame, Path(tempfile.mkdtemp()) / "decoded.npy", args.image_size, progress=False)
    setups = [
        {"name": "before: 2 workers (old default), NCHW", "workers": 2, "channels_last": False},
        {"name": "2 workers, channels_last", "workers": 2, "channels_last": True},
        {"name": "in-process JPEG decoding, channels_last", "workers": 0, "channels_last": True},
        {
            "name": "after: decoded cache, in-process, channels_last",
            "workers": 0,
            "channels_last": True,
            "cache": cache,
        },
    ]
    if torch.cuda.is_available():
        setups.append({"name": "decoded cache, 4 workers", "workers": 4, "channels_last": True, "cache": cache})
    rows = [measure(args, frame, s) for s in setups]
    columns = ["setup", "train_a", "train_b", "train_c", "train_b_over_a", "infer_a", "infer_b", "infer_c"]
    columns.append("infer_b_over_a")
    save("throughput", rows, columns, {**vars(args), "data": "shared/data/utkface", "units": "images/s"})
    memory = []
    for batch in [int(b) for b in args.memory_batches.split(",")]:
        base, peak = peak_rss(args.backbone, args.image_size, batch, True)
        memory.append({"batch_size": batch, "model_mib": round(base), "peak_train_mib": round(peak)})
    save("memory", memory, ["batch_size", "model_mib", "peak_train_mib"], {**vars(args), "device": "cpu"})
    print(np.round([r["train_b_over_a"] for r in rows], 3))


if __name__ == "__main__":
    main()
