"""Training images/s on a GPU: is the model the only bottleneck? (the CPU version is benchmarks/throughput.py)

(a) model-bound: training steps on a batch already on the GPU; (b) the full pipeline: JPEGs from disk decoded and
augmented by DataLoader workers, or the `faceattr cache` memory-mapped decoded images, pinned and copied to the GPU;
(b)/(a) near 1 means the data pipeline keeps up. Mixed precision (bf16 autocast), channels_last, AdamW.

    python -m benchmarks.gpu_throughput --manifest M.csv --sizes 128,224 --workers 4,8,15
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import save
from benchmarks.throughput import _loader, _module, _take, _targets
from faceattr.data.decoded_cache import DecodedCache, build_cache
from faceattr.data.manifest import read_manifest
from faceattr.data.transforms import train_transform


def _rate(batches, step, warmup: int = 3) -> float:
    seen, start = 0, None
    for i, batch in enumerate(batches):
        if i == warmup:
            torch.cuda.synchronize()
            start = time.perf_counter()
        if i >= warmup:
            seen += len(batch[0])
        step(batch)
    torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--backbone", default="tf_efficientnet_lite0")
    parser.add_argument("--sizes", default="128,224")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--workers", default="4,8,15")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no GPU here: benchmarks/throughput.py measures the CPU")
    device = torch.device("cuda")
    frame = read_manifest(args.manifest)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        cfg, module = _module(args.backbone, True)
        module.to(device)
        optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)

        def step(batch, module=module, optimizer=optimizer):
            images, targets = batch
            images = images.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            targets = {k: v.to(device, non_blocking=True) for k, v in targets.items() if k in module.tasks}
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = module._total(module._losses(module(images), targets))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        bs = args.batch_size
        fixed = (torch.randn(bs, 3, size, size, device=device), {k: v.to(device) for k, v in _targets(bs).items()})
        model_bound = _rate([fixed] * (args.steps + 3), step)
        transform = train_transform(size, cfg.augment, (0.5,) * 3, (0.5,) * 3)
        cache = build_cache(frame, Path(tempfile.mkdtemp()) / "decoded.npy", size, progress=False)
        for source in ("JPEG decoding", "decoded cache"):
            for workers in [int(w) for w in args.workers.split(",")]:
                loader = _loader(
                    frame, transform, bs, workers, DecodedCache(cache) if source != "JPEG decoding" else None
                )
                pipeline = _rate(_take(loader, args.steps + 3), step)
                rows.append(
                    {
                        "image_size": size,
                        "data": source,
                        "workers": workers,
                        "model_bound": round(model_bound),
                        "pipeline": round(pipeline),
                        "pipeline_over_model": round(pipeline / model_bound, 3),
                    }
                )
                print(rows[-1])
                _save(rows, args)
    _save(rows, args)


def _save(rows: list[dict], args) -> None:
    save(
        "gpu_throughput",
        rows,
        list(rows[0]),
        {**vars(args), "gpu": torch.cuda.get_device_name(0), "cpu_count": os.cpu_count(), "precision": "bf16 autocast"},
    )


if __name__ == "__main__":
    main()
