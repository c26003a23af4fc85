"""Training images/s on a GPU: is the model the only bottleneck? (the CPU version is benchmarks/throughput.py)

(a) model-bound: training steps on a batch already on the GPU; (b) the full pipeline: JPEGs from disk decoded and
augmented by DataLoader workers, or the `faceattr cache` memory-mapped decoded images, pinned and copied to the GPU;
(b)/(a) near 1 means the data pipeline keeps up. Mixed precision (bf16 autocast), channels_last, AdamW.
`--augment device` rows augment on the GPU instead (`augment.on_device`: the workers only decode and resize, the
batch is augmented after the copy, inside the timed step); `--augment-from CONFIG` takes a preset's `augment.*`
settings (the robustness ones cost the workers most), the defaults otherwise.

    python -m benchmarks.gpu_throughput --manifest M.csv --sizes 128,224 --workers 4,8,15
    python -m benchmarks.gpu_throughput --manifest M.csv --sizes 128 --workers 8 --augment workers,device \
        --augment-from configs/utkface_age_gender_gpu.yaml --name gpu_throughput_on_device
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
from faceattr.config import load_config
from faceattr.data.decoded_cache import DecodedCache, build_cache
from faceattr.data.device_augment import DeviceAugment, ResizeToUint8
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
    parser.add_argument("--augment", default="workers", help="where to augment: workers, device, or workers,device")
    parser.add_argument("--name", default="gpu_throughput", help="results file name (benchmarks/results/NAME.md)")
    parser.add_argument("--augment-from", type=Path, help="a config whose augment.* settings to use")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no GPU here: benchmarks/throughput.py measures the CPU")
    device = torch.device("cuda")
    frame = read_manifest(args.manifest)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        cfg, module = _module(args.backbone, True)
        aug = load_config(args.augment_from).augment if args.augment_from else cfg.augment
        module.to(device)
        optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
        on_device = DeviceAugment(size, aug, (0.5,) * 3, (0.5,) * 3).to(device)

        def step(batch, module=module, optimizer=optimizer, on_device=on_device):
            images, targets = batch
            images = images.to(device, non_blocking=True)
            if images.dtype == torch.uint8:  # --augment device: the workers only resized
                images = on_device(images)
            images = images.contiguous(memory_format=torch.channels_last)
            targets = {k: v.to(device, non_blocking=True) for k, v in targets.items() if k in module.tasks}
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = module._total(module._losses(module(images), targets))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        bs = args.batch_size
        fixed = (torch.randn(bs, 3, size, size, device=device), {k: v.to(device) for k, v in _targets(bs).items()})
        model_bound = _rate([fixed] * (args.steps + 3), step)
        transforms = {"workers": train_transform(size, aug, (0.5,) * 3, (0.5,) * 3), "device": ResizeToUint8(size)}
        cache = build_cache(frame, Path(tempfile.mkdtemp()) / "decoded.npy", size, progress=False)
        for place, source, workers in (
            (place, source, int(w))
            for place in args.augment.split(",")
            for source in ("JPEG decoding", "decoded cache")
            for w in args.workers.split(",")
        ):
            loader = _loader(
                frame, transforms[place], bs, workers, DecodedCache(cache) if source != "JPEG decoding" else None
            )
            pipeline = _rate(_take(loader, args.steps + 3), step)
            rows.append(
                {
                    "image_size": size,
                    "augment": "on the GPU" if place == "device" else "in the workers",
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
        args.name,
        rows,
        list(rows[0]),
        {**vars(args), "gpu": torch.cuda.get_device_name(0), "cpu_count": os.cpu_count(), "precision": "bf16 autocast"},
    )


if __name__ == "__main__":
    main()
