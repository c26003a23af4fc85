"""CSV files people bring, in whatever encoding their tools wrote: UTF-8 (with or without a BOM) first, then the
encoding charset-normalizer detects (Latin-1, CP949/EUC-KR from Korean tools, ...), else a clear error.

A table that cannot be read stops with a `DatasetError` naming the file and the fix, never a UnicodeDecodeError
traceback."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import pandas as pd

from faceattr.errors import DatasetError

# when detection ties: Korean tools' CP949 (the mask competition's home), then Western Windows / ISO encodings
PREFERRED = ("cp949", "euc_kr", "cp1252", "latin_1")


def _only(text: str, script: str) -> bool:
    """Whether every non-ASCII letter of `text` belongs to `script` (a Unicode name prefix: HANGUL, LATIN)."""
    return all(ord(c) < 128 or not c.isalpha() or unicodedata.name(c, "").startswith(script) for c in text) and any(
        ord(c) >= 128 for c in text
    )


def decode_legacy(data: bytes) -> tuple[str, str] | None:
    """(text, encoding) in the legacy encodings users send, each taken only when it yields one script's letters:
    CP949 -> Hangul (the competition's home), Windows-1252 -> Latin; None when neither fits. Text too short for a
    statistical guess (a file name, a few accented names) is read right this way."""
    for encoding, script in (("cp949", "HANGUL"), ("cp1252", "LATIN")):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _only(text, script):
            return text, encoding
    return None


def decode_text(path: Path, data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 (BOM stripped) when it decodes; UTF-16 with its BOM; then the legacy encodings users
    send, each taken only when it yields one script's letters (CP949 -> Hangul, Windows-1252 -> Latin); else the
    encoding charset-normalizer detects. Statistical detection alone misreads short Latin-1 text (a few accented
    names in an extra column came back as Shift-JIS)."""
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    legacy = decode_legacy(data)
    if legacy is not None:
        return legacy
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    best = matches[0] if matches else None
    if best is not None:  # short files tie (big5 = cp949 on a few Hangul names): prefer the encodings users send
        tied = [m for m in matches if m.chaos <= best.chaos and m.coherence >= best.coherence]
        best = next((m for enc in PREFERRED for m in tied if m.encoding == enc), best)
    if best is None:
        raise DatasetError(
            f"{path}: not a text file in any encoding faceattr recognises; save it as UTF-8 CSV "
            "(in Excel: Save As > CSV UTF-8) and run the command again"
        )
    return str(best), best.encoding


DELIMITERS = (",", ";", "\t")  # Excel writes ';' where the decimal mark is a comma (most of Europe); tools, tabs


def delimiter(text: str) -> str:
    """The delimiter of a table's header line: the one of DELIMITERS it holds most of (a comma when none)."""
    header = text.lstrip().partition("\n")[0]
    return max(DELIMITERS, key=header.count) if any(d in header for d in DELIMITERS) else ","


def read_text_table(path: str | Path, **read_csv_args) -> pd.DataFrame:
    """pandas.read_csv on a user's CSV in any common encoding, with commas, semicolons or tabs between its fields;
    errors name the file and the fix."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot be read ({e.strerror or e}); check the path and its permissions") from None
    text, encoding = decode_text(path, data)
    read_csv_args.setdefault("sep", delimiter(text))
    try:
        return pd.read_csv(io.StringIO(text), **read_csv_args)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise DatasetError(f"{path}: not a readable CSV table (read as {encoding}: {str(e).splitlines()[0]})") from None
