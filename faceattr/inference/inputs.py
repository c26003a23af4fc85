"""What `predict` is given -> the media files to read: files, folders searched recursively, .txt lists."""

from __future__ import annotations

from pathlib import Path

from faceattr.data.images import IMAGE_SUFFIXES
from faceattr.data.text_tables import decode_text
from faceattr.errors import FaceAttrError


def collect_images(
    inputs: list[str | Path], suffixes: tuple[str, ...] = IMAGE_SUFFIXES, ignored: list[str] | None = None
) -> list[str]:
    """Files, folders (searched recursively for `suffixes`) and .txt lists of paths -> paths, sorted per folder.
    Files in those folders with other suffixes are appended to `ignored`, so the caller can say so."""
    found: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.name.startswith(".") or not f.is_file():
                    continue
                if f.suffix.lower() in suffixes:
                    found.append(str(f))
                elif ignored is not None:
                    ignored.append(str(f))
        elif p.suffix.lower() == ".txt" and p.is_file():
            found += listed_paths(p)
        elif p.exists() or p.suffix.lower() in suffixes:
            found.append(str(p))  # a missing image file is reported as skipped, not silently dropped
        else:
            raise FaceAttrError(f"{p}: not found; give image files, folders of images, or a .txt list of paths")
    return found


def listed_paths(listing: Path) -> list[str]:
    """The paths a .txt list holds, one a line, in any encoding a user's tool wrote (`decode_text`); blank lines and
    `#` comment lines are skipped."""
    text, _ = decode_text(listing, listing.read_bytes())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
