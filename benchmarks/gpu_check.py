"""Training images/s on a GPU: does the data pipeline keep the GPU busy? (the CPU's is benchmarks/throughput.py)

model-bound: training steps on a batch already on the GPU (bf16 autocast, channels_last, AdamW). pipeline: the same
steps fed by the training run's own loader (`FaceDataModule.train_dataloader`: JPEGs decoded, drawn masks and
augmentation in DataLoader workers, pinned, copied), either with every augmentation in the workers or with
`augment.on_device` (the workers only decode and resize to uint8; the batch is augmented on the GPU inside the timed
step). pipeline / model-bound near 1 means the GPU never waits for data. Augmentation settings come from a preset
(`--augment-from`, default the GPU preset). Writes benchmarks/results/gpu_check.{json,md}; run through
benchmarks/gpu_check.sh on a lent GPU.

    python -m benchmarks.gpu_check --manifest M.csv --workers 8,15
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path

import torch

from benchmarks.common import RESULTS, save, take
from faceattr.config import load_config
from faceattr.data.datamodule import FaceDataModule
from faceattr.models.module import FaceAttrModule

TASKS = ("gender", "age_bin", "age")


def rate(batches, step, warmup: int = 5) -> float:
    """Images per second over the batches after `warmup` (the device synchronised at both ends)."""
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


def configured(args, size: int, backbone: str, on_device: bool, workers: int):
    """The preset's config with this row's settings (offline weights off: speed does not depend on them)."""
    return load_config(
        args.augment_from,
        [
            f"data.manifest={args.manifest}",
            f"data.image_size={size}",
            f"data.batch_size={args.batch_size}",
            f"data.num_workers={workers}",
            f"model.backbone={backbone}",
            "model.pretrained=none",
            f"model.heads=[{','.join(TASKS)}]",
            "model.channels_last=true",
            f"augment.on_device={str(on_device).lower()}",
        ],
    )


def trainer_step(module: FaceAttrModule, device_augment=None):
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    device = torch.device("cuda")

    def step(batch) -> None:
        images, targets = batch
        images = images.to(device, non_blocking=True)
        if device_augment is not None and images.dtype == torch.uint8:
            images = device_augment(images)
        images = images.contiguous(memory_format=torch.channels_last)
        targets = {k: v.to(device, non_blocking=True) for k, v in targets.items() if k in module.tasks}
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = module._total(module._losses(module(images), targets))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def fixed_batch(n: int, size: int):
    g = torch.Generator().manual_seed(0)
    targets = {"gender": torch.randint(0, 2, (n,), generator=g), "age_bin": torch.randint(0, 3, (n,), generator=g)}
    targets["age"] = torch.randint(0, 101, (n,), generator=g)
    images = torch.randn(n, 3, size, size, generator=g)
    return images.cuda(), {k: v.cuda() for k, v in targets.items()}


def model_bound(args, backbone: str, size: int) -> tuple[float, float]:
    cfg = configured(args, size, backbone, False, 0)
    module = FaceAttrModule.from_config(cfg, load_pretrained=False).cuda().to(memory_format=torch.channels_last)
    torch.cuda.reset_peak_memory_stats()
    batch = fixed_batch(args.batch_size, size)
    images_per_s = rate([batch] * (args.steps + 5), trainer_step(module))
    return images_per_s, torch.cuda.max_memory_allocated() / 2**30


def pipeline(args, size: int, on_device: bool, workers: int) -> float:
    cfg = configured(args, size, "tf_efficientnet_lite0", on_device, workers)
    module = FaceAttrModule.from_config(cfg, load_pretrained=False).cuda().to(memory_format=torch.channels_last)
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    data = FaceDataModule(cfg, mean, std)
    if cfg.augment.synthetic_mask_p > 0:
        from faceattr.synth.augment import SyntheticMasker

        aug = cfg.augment
        data.masker_factory = lambda frame: SyntheticMasker(frame, aug.synthetic_mask_p, aug.synthetic_mask_incorrect)
    data.setup("fit")
    augment = data.device_augment.cuda() if data.device_augment is not None else None
    loader = data.train_dataloader()
    return rate(take(loader, args.steps + 5), trainer_step(module, augment))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--augment-from", type=Path, default=Path("configs/utkface_age_gender_gpu.yaml"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per row")
    parser.add_argument("--workers", default="8,15")
    parser.add_argument("--model-sizes", default="128,224")
    parser.add_argument("--name", default="gpu_check", help="results file name (benchmarks/results/NAME.md)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no GPU here: benchmarks/throughput.py measures the CPU")
    torch.backends.cudnn.benchmark = True
    rows, bound = [], {}
    for backbone in ("tf_efficientnet_lite0", "lite0_face"):
        for size in [int(s) for s in args.model_sizes.split(",")]:
            images_per_s, memory = model_bound(args, backbone, size)
            bound[(backbone, size)] = images_per_s
            rows.append(
                {
                    "row": "model-bound",
                    "backbone": backbone,
                    "image_size": size,
                    "augment": "-",
                    "workers": 0,
                    "images_per_s": round(images_per_s),
                    "ratio": 1.0,
                    "gpu_mem_gib": round(memory, 2),
                }
            )
            print(rows[-1], flush=True)
    for on_device in (False, True):
        for workers in [int(w) for w in args.workers.split(",")]:
            images_per_s = pipeline(args, 128, on_device, workers)
            ratio = images_per_s / bound[("tf_efficientnet_lite0", 128)]
            rows.append(
                {
                    "row": "pipeline",
                    "backbone": "tf_efficientnet_lite0",
                    "image_size": 128,
                    "augment": "on the GPU" if on_device else "in the workers",
                    "workers": workers,
                    "images_per_s": round(images_per_s),
                    "ratio": round(ratio, 3),
                    "gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                }
            )
            print(rows[-1], flush=True)
    best = max((r for r in rows if r["row"] == "pipeline"), key=lambda r: r["images_per_s"])
    summary = {
        "gpu": torch.cuda.get_device_name(0),
        "date": datetime.date.today().isoformat(),
        "pipeline_ratio": best["ratio"],
        "pipeline_images_per_s": best["images_per_s"],
        "pipeline_best": f"{best['augment']}, {best['workers']} workers",
    }
    save(
        args.name,
        rows,
        list(rows[0]),
        {
            **vars(args),
            **summary,
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "precision": "bf16 autocast, channels_last",
        },
    )
    path = RESULTS / f"{args.name}.json"  # the headline figures at the top level too, for a reader of the JSON
    path.write_text(json.dumps({**summary, **json.loads(path.read_text())}, indent=2, default=str))


if __name__ == "__main__":
    main()
