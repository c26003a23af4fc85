"""Robust image reading: every image the project opens goes through `load_rgb`.

Photos in the wild are rotated by EXIF tags, stored as grayscale, palette, RGBA, CMYK or 16-bit, truncated by a
failed copy, or not images at all. We turn the first kinds into plain RGB and refuse the rest with an
`ImageLoadError` whose `reason` is one of REASONS, so callers can skip and report instead of crashing.
Source files are only ever opened for reading.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceattr.atomic import appending_csv, atomic_path, read_appended_csv, refuse_to_replace
from faceattr.config import MAX_PIXELS
from faceattr.data.text_tables import decode_legacy
from faceattr.errors import ImageLoadError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")  # a GIF: its first frame
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")  # `predict` reads these too
REASONS = ("missing", "empty_file", "not_an_image", "corrupt", "truncated", "too_many_pixels")


def is_utf8_name(path: str | Path) -> bool:
    """Whether a path is valid text: names made on Korean or Windows machines can hold CP949 or Latin-1 bytes,
    which Python keeps as surrogates that no UTF-8 CSV or manifest can store."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def text_named(files: list[Path], where: str | Path) -> list[Path]:
    """The files whose names a manifest can store; the others are left out with a warning naming them and the fix
    (a manifest is UTF-8 text, so such a file could not be found again from it)."""
    readable, odd = [], []
    for f in files:
        (readable if is_utf8_name(f) else odd).append(f)
    if odd:
        log.warning(
            "%s: %d file name(s) are not UTF-8 (e.g. %s) and are left out: rename them to UTF-8 (for example "
            "`convmv -f cp949 -t utf-8 -r --notest %s`) and prepare again",
            where,
            len(odd),
            readable_path(odd[0]),
            where,
        )
    return readable


def readable_path(path: str | Path) -> str:
    """`path` as text a UTF-8 table can hold: a name in another encoding decoded by the rule user CSVs are read
    with (`decode_legacy`: CP949 when that gives Korean, else Windows-1252); the file itself is still read by its
    real name."""
    if is_utf8_name(path):
        return str(path)
    import os

    raw = os.fsencode(str(path))
    legacy = decode_legacy(raw)
    return legacy[0] if legacy is not None else raw.decode("cp1252", errors="replace")


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB (16-bit scaled down, alpha composited on white)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(scaled.astype(np.uint8), mode="L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def load_rgb(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as an HxWx3 uint8 RGB array, upright per its EXIF orientation.

    Raises ImageLoadError(reason=missing|empty_file|not_an_image|corrupt|truncated|too_many_pixels).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(str(path), "missing", "no such file")
    if path.stat().st_size == 0:
        raise ImageLoadError(str(path), "empty_file", "zero bytes")
    return decode_rgb(path, str(path), max_pixels)


def decode_rgb(source: str | Path | bytes, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a file path or in-memory bytes (e.g. an upload, never written to disk) like `load_rgb`."""
    if isinstance(source, bytes):
        if not source:
            raise ImageLoadError(name, "empty_file", "zero bytes")
        source = io.BytesIO(source)  # type: ignore[assignment]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageLoadError(
                        name, "too_many_pixels", f"{width}x{height} exceeds the limit of {max_pixels} pixels"
                    )
                img.load()
                img = ImageOps.exif_transpose(img) or img
                rgb = _to_rgb(img)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(name, "not_an_image", "not a format Pillow can read") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        # Pillow's own bomb check fires before the size is read; say our limit, not Pillow's
        raise ImageLoadError(name, "too_many_pixels", f"over the limit of {max_pixels} pixels ({e})") from None
    except OSError as e:
        reason = "truncated" if "truncated" in str(e).lower() else "corrupt"
        raise ImageLoadError(name, reason, str(e)) from None
    except (SyntaxError, ValueError, MemoryError, EOFError) as e:
        raise ImageLoadError(name, "corrupt", str(e)) from None
    except Exception as e:  # a decoder plugin's own failure (struct.error, IndexError...): still a bad file
        raise ImageLoadError(name, "corrupt", f"{type(e).__name__}: {e}") from None
    arr = np.asarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageLoadError(name, "corrupt", f"decoded to an empty array {arr.shape}")
    return arr


def save_jpeg(image: np.ndarray, path: Path, quality: int = 95) -> None:
    """Write an RGB uint8 array as JPEG atomically (temp file, then rename): a killed run leaves no half file."""
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="JPEG", quality=quality)


def skip_report_path(out: Path) -> Path:
    """Where the inputs an output could not use are listed: `<out stem>.skipped.csv` beside it."""
    return out.with_name(out.stem + ".skipped.csv")


def fresh_skip_file(out: Path, overwrite: bool, inputs: Iterable[str | Path] = ()) -> Path:
    """`out`'s skip report (`skip_report_path`), cleared for a new run: a report faceattr wrote is replaced (a refused
    run's, say, so the re-run its error suggests goes through); any other file there only with `overwrite`, and
    never one of the command's `inputs`."""
    report = skip_report_path(out)
    if report.exists() and not SkipReport.is_ours(report):
        refuse_to_replace([report], overwrite, inputs)
    report.unlink(missing_ok=True)
    return report


class SkipReport:
    """Collects images that could not be used, and appends them to a `skipped.csv` so nothing drops silently.

    Safe to share between threads; worker processes each append their own rows to the same file.
    """

    FIELDS = ("path", "reason", "detail")

    def __init__(self, csv_path: str | Path | None = None) -> None:
        self.csv_path = Path(csv_path) if csv_path else None
        self.rows: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def add(self, error: ImageLoadError) -> None:
        row = {"path": readable_path(error.path), "reason": error.reason, "detail": error.detail}
        with self._lock:
            self.rows.append(row)
            if self.csv_path is not None:
                with appending_csv(self.csv_path, self.FIELDS) as append:
                    append(row)

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def is_ours(cls, csv_path: str | Path) -> bool:
        """Whether the file at `csv_path` is a report faceattr wrote (its header): one a new run may replace."""
        try:
            with Path(csv_path).open() as f:
                return f.readline().strip() == ",".join(cls.FIELDS)
        except (OSError, UnicodeDecodeError):
            return False

    @staticmethod
    def read(csv_path: str | Path) -> list[dict[str, str]]:
        """Rows written so far by every process (empty when nothing was skipped; a row a kill cut short left out)."""
        return read_appended_csv(csv_path)
