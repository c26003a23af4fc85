"""Training augmentation alone, images/s: per image in a DataLoader worker (Albumentations, the default) against
whole batches where training runs (`augment.on_device`, batched torch ops), on this machine's CPU and, where there
is one, the GPU. Why: on a GPU the workers' augmentation, not the model, limited training (README "Training on the lent
GPU"); this shows what moving it costs or saves before a full training run.

Faces: UTKFace crops (or any manifest) decoded once and resized to --size, so decoding is not timed; the worker
path is timed on one core (each worker has one), the batched path with the threads torch uses. One more row times a
worker's whole item (read the JPEG, decode, augment: `FaceDataset`), to compare with what a GPU run received.

    python -m benchmarks.augment_speed --config configs/utkface_age_gender_gpu.yaml --name augment_speed
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.common import save
from faceattr.config import load_config
from faceattr.data.datamodule import FaceDataset
from faceattr.data.device_augment import DeviceAugment, ResizeToUint8
from faceattr.data.images import load_rgb
from faceattr.data.manifest import read_manifest
from faceattr.data.transforms import train_transform

SHARED_FACES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "utkface"


def face_paths(manifest: Path | None, n: int) -> list[str]:
    if manifest is not None:
        paths = read_manifest(manifest)["path"].astype(str).tolist()[:n]
    else:
        paths = [str(p) for p in sorted(SHARED_FACES.glob("*.jpg"))[:n]]
    if len(paths) < n:
        raise SystemExit(f"need {n} face images: pass --manifest M.csv (found {len(paths)})")
    return paths


def faces(paths: list[str], size: int) -> list[np.ndarray]:
    """The face crops at `size` px (uint8 RGB)."""
    resize = ResizeToUint8(size)
    return [resize(image=load_rgb(p))["image"].permute(1, 2, 0).numpy() for p in paths]


def item_rate(paths: list[str], transform) -> float:
    """A DataLoader worker's whole item: read, decode, augment (labels are placeholders)."""
    torch.set_num_threads(1)
    frame = pd.DataFrame({"path": paths, "mask": 2, "gender": 0, "age_bin": 0, "label18": 0, "age": 30.0})
    dataset = FaceDataset(frame, transform)
    start = time.perf_counter()
    for i in range(len(dataset)):
        dataset[(i, i)]  # seeded per item, as the training sampler does
    return len(dataset) / (time.perf_counter() - start)


def per_image_rate(images: list[np.ndarray], transform, repeats: int) -> float:
    torch.set_num_threads(1)
    start = time.perf_counter()
    for _ in range(repeats):
        for image in images:
            transform(image=image)
    return repeats * len(images) / (time.perf_counter() - start)


def batched_rate(images: list[np.ndarray], augment: DeviceAugment, batch: int, device: str, repeats: int) -> float:
    torch.set_num_threads(os.cpu_count() or 1)
    stack = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous().to(device)
    batches = [stack[i : i + batch] for i in range(0, len(stack) - batch + 1, batch)]
    augment = augment.to(device)
    augment(batches[0])  # first-call set-up (kernels, JPEG tables)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        for b in batches:
            augment(b)
    if device == "cuda":
        torch.cuda.synchronize()
    return repeats * len(batches) * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="whose augment.* settings (default: the defaults)")
    parser.add_argument("--manifest", type=Path, help="faces to augment (default: ../shared/data/utkface)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--name", default="augment_speed")
    args = parser.parse_args()
    aug = load_config(args.config).augment
    paths = face_paths(args.manifest, args.images)
    images = faces(paths, args.size)
    mean, std = (0.5,) * 3, (0.5,) * 3
    per_image = train_transform(args.size, aug, mean, std)
    rows = [
        {
            "augment": "per image (Albumentations), one worker",
            "device": "cpu, 1 thread",
            "images_per_s": round(per_image_rate(images, per_image, args.repeats)),
        },
        {
            "augment": "read + decode + augment per image (FaceDataset), one worker",
            "device": "cpu, 1 thread",
            "images_per_s": round(item_rate(paths, per_image)),
        },
    ]
    print(rows, flush=True)
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    for device in devices:
        rate = batched_rate(images, DeviceAugment(args.size, aug, mean, std), args.batch_size, device, args.repeats)
        name = torch.cuda.get_device_name(0) if device == "cuda" else f"cpu, {os.cpu_count()} threads"
        rows.append(
            {"augment": f"batches of {args.batch_size} (ours, torch)", "device": name, "images_per_s": round(rate)}
        )
        print(rows[-1], flush=True)
    save(args.name, rows, ["augment", "device", "images_per_s"], {**vars(args), "augment_settings": vars(aug)})


if __name__ == "__main__":
    main()
