"""`faceattr cache`: every image of a manifest decoded once, resized to a square, in one memory-mapped file.

Training then reads a uint8 array slice instead of opening and decoding a JPEG per sample per epoch, so the
loader keeps up with the model with fewer (or no) worker processes. The cache is `<name>.npy` (N x S x S x 3,
uint8, opened with `np.load(mmap_mode="r")`) plus `<name>.json` (size, and per row the path and the source's
size and mtime). Rows whose image could not be read are marked invalid; the dataset reads those from disk, where
they are reported as usual. A cache whose sources have changed since is refused with the command to rebuild it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from rich.progress import Progress

from faceattr.atomic import atomic_path, write_text
from faceattr.data.images import SkipReport, load_rgb
from faceattr.errors import ConfigError, ImageLoadError


def cache_paths(cache: str | Path) -> tuple[Path, Path]:
    """The array and its index for a cache named with or without .npy / .json; other dots stay in the name
    (`faces.decoded-160` is not `faces.npy`, which could be a user's file)."""
    base = Path(cache)
    base = base.with_suffix("") if base.suffix in (".npy", ".json") else base
    return base.with_name(f"{base.name}.npy"), base.with_name(f"{base.name}.json")


def _stamp(path: str) -> list[int]:
    stat = Path(path).stat()
    return [stat.st_size, stat.st_mtime_ns]


def build_cache(
    frame: pd.DataFrame, cache: str | Path, size: int, skips: SkipReport | None = None, progress: bool = True
) -> Path:
    """Decode and resize every distinct path of `frame` into the cache; returns the .npy path."""
    npy, index = cache_paths(cache)
    npy.parent.mkdir(parents=True, exist_ok=True)
    paths = list(dict.fromkeys(frame["path"].astype(str)))
    rows: list[dict] = []
    with atomic_path(npy) as tmp:
        _decode_into(tmp, paths, size, skips if skips is not None else SkipReport(), progress, rows)
    write_text(index, json.dumps({"size": size, "rows": rows}))
    return npy


def _decode_into(tmp: Path, paths: list[str], size: int, skips: SkipReport, progress: bool, rows: list) -> None:
    """Decode and resize `paths` into a new .npy at `tmp`, appending one index row per path to `rows`."""
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(paths), size, size, 3))
    with Progress(disable=not progress) as bar:
        task = bar.add_task("decoding into the cache", total=len(paths))
        for i, path in enumerate(paths):
            try:
                image = load_rgb(path)
                array[i] = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
                shape = [image.shape[1], image.shape[0]]
                rows.append({"path": path, "stamp": _stamp(path), "valid": True, "original": shape})
            except ImageLoadError as e:
                skips.add(e)
                rows.append({"path": path, "stamp": None, "valid": False})
            bar.advance(task)
    array.flush()
    del array


class DecodedCache:
    """Read side: path -> the cached uint8 image, or None where the row is invalid or the path not cached."""

    def __init__(self, cache: str | Path, expected_size: int | None = None) -> None:
        npy, index = cache_paths(cache)
        if not npy.is_file() or not index.is_file():
            raise ConfigError(f"data.decoded_cache: {npy} (with its .json) not found; build it with `faceattr cache`")
        meta = json.loads(index.read_text())
        self.size = int(meta["size"])
        if expected_size is not None and self.size < expected_size:
            raise ConfigError(
                f"data.decoded_cache holds {self.size}px images but data.image_size is {expected_size}; "
                f"rebuild with `faceattr cache MANIFEST --size {expected_size}`"
            )
        self.npy = npy
        self.row_of = {r["path"]: i for i, r in enumerate(meta["rows"]) if r["valid"]}
        self.original = {r["path"]: tuple(r["original"]) for r in meta["rows"] if r["valid"]}
        changed = [r["path"] for r in meta["rows"][:2000] if r["valid"] and _safe_stamp(r["path"]) != r["stamp"]]
        if changed:
            raise ConfigError(
                f"data.decoded_cache is stale: {changed[0]} changed since the cache was built "
                f"({len(changed)} of the first 2000 checked); rebuild it with `faceattr cache`"
            )
        self._array: np.ndarray | None = None  # opened lazily, once per worker process

    def scale(self, path: str) -> tuple[float, float]:
        """How the cached image was resized from the original: (x factor, y factor)."""
        width, height = self.original[path]
        return self.size / width, self.size / height

    def get(self, path: str) -> np.ndarray | None:
        row = self.row_of.get(path)
        if row is None:
            return None
        if self._array is None:
            self._array = np.load(self.npy, mmap_mode="r")
        return np.array(self._array[row])  # a copy: augmentations may write into it

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_array"] = None  # each DataLoader worker maps the file itself
        return state


def _safe_stamp(path: str) -> list[int] | None:
    try:
        return _stamp(path)
    except OSError:
        return None
