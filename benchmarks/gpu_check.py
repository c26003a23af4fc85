"""Training images/s on a GPU: does the data pipeline keep the GPU busy? (the CPU's is benchmarks/throughput.py)

model-bound: training steps on a batch already on the GPU (bf16 autocast, channels_last, AdamW). pipeline: the same
steps fed by the training run's own loader (`FaceDataModule.train_dataloader`: JPEGs decoded, drawn masks and
augmentation in DataLoader workers, pinned, copied), either with every augmentation in the workers or with
`augment.on_device` (the workers only decode and resize to uint8; the batch is augmented on the GPU inside the timed
step), and with `--decoded-cache` also reading a `faceattr cache` file instead of JPEGs. pipeline / model-bound near
1 means the GPU never waits for data. augment alone: `DeviceAugment` on a uint8 batch already on the GPU, with each
step's milliseconds. Augmentation settings come from a preset (`--augment-from`, default the GPU preset). Writes
benchmarks/results/gpu_check.{json,md}; run through benchmarks/gpu_check.sh on a lent GPU, after making what it
carries here (the wheels the GPU image lacks, 5,400 faces):

    python -m benchmarks.gpu_check --carry-from data/utkface.framed.csv        # here: .whl/ and .gpu/
    python -m benchmarks.gpu_check --manifest M.csv --workers 8,15 --decoded-cache M.npy   # there
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import torch
from PIL import Image

from benchmarks.common import RESULTS, save, take
from faceattr.config import load_config
from faceattr.data.datamodule import FaceDataModule
from faceattr.data.manifest import read_manifest, write_manifest
from faceattr.models.module import FaceAttrModule

TASKS = ("gender", "age_bin", "age")
DEVICE = torch.device("cuda")


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


def configured(args, size: int, backbone: str, on_device: bool, workers: int, cache: Path | None = None):
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
            *([f"data.decoded_cache={cache}"] if cache else []),
        ],
    )


def trainer_step(module: FaceAttrModule, device_augment=None):
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)

    def step(batch) -> None:
        images, targets = batch
        images = images.to(DEVICE, non_blocking=True)
        if device_augment is not None and images.dtype == torch.uint8:
            images = device_augment(images)
        images = images.contiguous(memory_format=torch.channels_last)
        targets = {k: v.to(DEVICE, non_blocking=True) for k, v in targets.items() if k in module.tasks}
        with torch.autocast(DEVICE.type, dtype=torch.bfloat16):
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
    return images.to(DEVICE), {k: v.to(DEVICE) for k, v in targets.items()}


def model_bound(args, backbone: str, size: int) -> tuple[float, float]:
    cfg = configured(args, size, backbone, False, 0)
    module = FaceAttrModule.from_config(cfg, load_pretrained=False).to(DEVICE).to(memory_format=torch.channels_last)
    torch.cuda.reset_peak_memory_stats()
    batch = fixed_batch(args.batch_size, size)
    images_per_s = rate([batch] * (args.steps + 5), trainer_step(module))
    return images_per_s, peak_gib()


def augment_alone(args, size: int) -> tuple[float, dict[str, float]]:
    """`DeviceAugment` with the preset's settings on a uint8 batch on the GPU: images/s, and milliseconds per batch
    for each of its steps (each timed alone, the device synchronised around it)."""
    from faceattr.data.device_augment import DeviceAugment
    from faceattr.data.transforms import AUGMENT_STEPS

    cfg = configured(args, size, "tf_efficientnet_lite0", True, 0)
    augment = DeviceAugment(size, cfg.augment, (0.5,) * 3, (0.5,) * 3).to(DEVICE)
    images = torch.randint(0, 256, (args.batch_size, 3, size, size), dtype=torch.uint8, device=DEVICE)
    images_per_s = rate([(images,)] * (args.steps + 5), lambda batch: augment(batch[0]))
    x = images.float() / 255
    names = [name for name in AUGMENT_STEPS if getattr(cfg.augment, name) > 0]
    per_step = {}
    for name, step in zip(names, augment.steps, strict=True):
        per_step[name] = round(1000 * args.batch_size / rate([(x,)] * 25, lambda batch, op=step: op(batch[0])), 3)  # ms
    return images_per_s, per_step


def pipeline(args, size: int, on_device: bool, workers: int, cache: Path | None = None) -> float:
    cfg = configured(args, size, "tf_efficientnet_lite0", on_device, workers, cache)
    module = FaceAttrModule.from_config(cfg, load_pretrained=False).to(DEVICE).to(memory_format=torch.channels_last)
    mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    data = FaceDataModule(cfg, mean, std)
    if cfg.augment.synthetic_mask_p > 0:
        from faceattr.synth.augment import SyntheticMasker

        aug = cfg.augment
        data.masker_factory = lambda frame: SyntheticMasker(frame, aug.synthetic_mask_p, aug.synthetic_mask_incorrect)
    data.setup("fit")
    augment = data.device_augment.to(DEVICE) if data.device_augment is not None else None
    loader = data.train_dataloader()
    return rate(take(loader, args.steps + 5), trainer_step(module, augment))


# faceattr's needs that the GPU image (KINDS.md in the device tool's library) does not hold
MISSING_THERE = (
    "albumentations",
    "albucore",
    "stringzilla",
    "simsimd",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-inspection",
    "omegaconf",
    "antlr4-python3-runtime",
    "kornia",
    "kornia-rs",
    "facenet-pytorch",
)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
PLACEHOLDER = "GPU_CARRY/"  # gpu_check.sh puts the checkout's .gpu/ there


def download_wheels(folder: Path) -> None:
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    for name in MISSING_THERE:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
             "3.12", "--implementation", "cp", *platforms, "-d", str(folder), f"{name}=={version(name)}"],
            check=True,
        )  # fmt: skip


def make_carry(manifest: Path, faces: int, quality: int, overwrite: bool) -> None:
    """`.whl/` (the wheels the GPU image lacks, for its Python 3.12, at the versions installed here) and `.gpu/`
    (faces of a framed manifest with landmarks, re-saved as JPEG, and their manifest): what gpu_check.sh needs there,
    which has no registry and takes 64 MiB. Both are git-ignored (.git/info/exclude) and named in the device tool's
    `carry`; the faces are research-only data: never commit them."""
    root = Path(__file__).resolve().parents[1]
    wheels, data = root / ".whl", root / ".gpu"
    for folder in (wheels, data):
        if folder.exists() and not overwrite:
            raise SystemExit(f"{folder} exists: pass --overwrite to make it again")
    for folder in (wheels, data):
        shutil.rmtree(folder, ignore_errors=True)
    download_wheels(wheels)
    copy_faces(manifest, data, faces, quality)
    size = sum(f.stat().st_size for folder in (wheels, data) for f in folder.rglob("*") if f.is_file())
    print(f"wrote {wheels} and {data}: {size / 2**20:.1f} MiB to carry (the device tool takes 64 MiB in all)")


def copy_faces(manifest: Path, folder: Path, n: int, quality: int) -> None:
    frame = read_manifest(manifest)
    frame = frame[frame["landmarks"].notna()].sample(n=n, random_state=0).reset_index(drop=True)
    (folder / "faces").mkdir(parents=True)
    paths = []
    for i, path in enumerate(frame["path"]):  # same pixels size: the manifest's boxes and landmarks still fit
        Image.open(path).convert("RGB").save(folder / "faces" / f"{i:05d}.jpg", "JPEG", quality=quality)
        paths.append(f"{PLACEHOLDER}faces/{i:05d}.jpg")
    write_manifest(frame.assign(path=paths), folder / "utk.framed.csv")


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30


def table_row(
    row: str, backbone: str, size: int, augment: str, workers: int, images_per_s: float, ratio: float, memory: float
) -> dict:
    """One row of the results table, rounded as it is published."""
    return {
        "row": row,
        "backbone": backbone,
        "image_size": size,
        "augment": augment,
        "workers": workers,
        "images_per_s": round(images_per_s),
        "ratio": round(ratio, 3),
        "gpu_mem_gib": round(memory, 2),
    }


def parse(numbers: str) -> list[int]:
    return [int(n) for n in numbers.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", type=Path, help="the faces to feed (on the GPU machine)")
    parser.add_argument("--carry-from", type=Path, help="here: make .whl/ and .gpu/ from this framed manifest, stop")
    parser.add_argument("--faces", type=int, default=5400, help="faces carried (5,400 x 4 = the union's 21,600)")
    parser.add_argument("--quality", type=int, default=60, help="JPEG quality of the carried faces (5,400: ~28 MB)")
    parser.add_argument("--overwrite", action="store_true", help="replace .whl/ and .gpu/")
    parser.add_argument("--augment-from", type=Path, default=Path("configs/utkface_age_gender_gpu.yaml"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per row")
    parser.add_argument("--workers", default="8,15")
    parser.add_argument("--model-sizes", default="128,224")
    parser.add_argument("--decoded-cache", type=Path, default=None, help="also feed the GPU from this cache file")
    parser.add_argument("--name", default="gpu_check", help="results file name (benchmarks/results/NAME.md)")
    args = parser.parse_args()
    if args.carry_from:
        return make_carry(args.carry_from, args.faces, args.quality, args.overwrite)
    if args.manifest is None:
        parser.error("--manifest is needed to measure (or --carry-from to make what a GPU machine needs)")
    if not torch.cuda.is_available():
        raise SystemExit("no GPU here: benchmarks/throughput.py measures the CPU")
    torch.backends.cudnn.benchmark = True
    rows, bound = [], {}
    for backbone in ("tf_efficientnet_lite0", "lite0_face"):
        for size in parse(args.model_sizes):
            images_per_s, memory = model_bound(args, backbone, size)
            bound[(backbone, size)] = images_per_s
            rows.append(table_row("model-bound", backbone, size, "-", 0, images_per_s, 1.0, memory))
            print(rows[-1], flush=True)
    augment_rate, per_step = augment_alone(args, 128)
    ratio = augment_rate / bound[("tf_efficientnet_lite0", 128)]
    rows.append(table_row("augment alone", "-", 128, "on the GPU", 0, augment_rate, ratio, peak_gib()))
    print(rows[-1], "ms per step:", per_step, flush=True)
    feeds = [(on_device, workers, None) for on_device in (False, True) for workers in parse(args.workers)]
    if args.decoded_cache:
        feeds += [(True, workers, args.decoded_cache) for workers in parse(args.workers)]
    for on_device, workers, cache in feeds:
        images_per_s = pipeline(args, 128, on_device, workers, cache)
        ratio = images_per_s / bound[("tf_efficientnet_lite0", 128)]
        augment = ("on the GPU" if on_device else "in the workers") + (", decoded cache" if cache else "")
        rows.append(
            table_row("pipeline", "tf_efficientnet_lite0", 128, augment, workers, images_per_s, ratio, peak_gib())
        )
        print(rows[-1], flush=True)
    best = max((r for r in rows if r["row"] == "pipeline"), key=lambda r: r["images_per_s"])
    summary = {
        "gpu": torch.cuda.get_device_name(0),
        "date": datetime.date.today().isoformat(),
        "pipeline_ratio": best["ratio"],
        "pipeline_images_per_s": best["images_per_s"],
        "pipeline_best": f"{best['augment']}, {best['workers']} workers",
        "augment_ms_per_step": per_step,
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
