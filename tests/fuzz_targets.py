"""atheris fuzz targets for the readers; run bounded, e.g. `python tests/fuzz_targets.py image -runs=3000`.

Each target counts inputs, clear errors (the project's own FaceAttrError) and anything else (a crash), and
writes the counts as JSON to $FUZZ_COUNTS after every input (atheris leaves through os._exit, so no atexit).
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from faceattr.data.images import decode_rgb
    from faceattr.data.manifest import read_manifest
    from faceattr.errors import FaceAttrError

COUNTS = {"inputs": 0, "accepted": 0, "clear_errors": 0, "other_errors": 0}
WORK = Path(tempfile.mkdtemp(prefix="faceattr-fuzz-"))


COUNTS_FILE = os.environ.get("FUZZ_COUNTS")


def _record(fn, data: bytes) -> None:
    COUNTS["inputs"] += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fn(data)
        COUNTS["accepted"] += 1
    except FaceAttrError:
        COUNTS["clear_errors"] += 1
    except Exception:
        COUNTS["other_errors"] += 1
        raise
    finally:
        if COUNTS_FILE:
            Path(COUNTS_FILE).write_text(json.dumps(COUNTS))


def image_target(data: bytes) -> None:
    _record(lambda d: decode_rgb(d, "fuzz", max_pixels=4_000_000), data)


def manifest_target(data: bytes) -> None:
    def read(d: bytes) -> None:
        path = WORK / ("m.parquet" if d[:1] == b"P" else "m.csv")
        path.write_bytes(d)
        read_manifest(path)

    _record(read, data)


def _seed_corpus(kind: str) -> Path:
    corpus = WORK / f"corpus-{kind}"
    corpus.mkdir()
    if kind == "image":
        from PIL import Image

        for fmt in ("JPEG", "PNG", "GIF", "BMP"):
            buf = io.BytesIO()
            Image.new("RGB", (16, 12), (10, 200, 30)).save(buf, fmt)
            (corpus / fmt).write_bytes(buf.getvalue())
    else:
        (corpus / "ok").write_text(
            "path,person_id,mask,gender,age,age_bin,label18,source\na.jpg,1,0,1,45,1,4,t\nb.jpg,2,2,0,70,2,14,t\n"
        )
    return corpus


def main() -> None:
    kind, args = sys.argv[1], sys.argv[2:]
    target = image_target if kind == "image" else manifest_target
    atheris.Setup([sys.argv[0], *args, str(_seed_corpus(kind))], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
