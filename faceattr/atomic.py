"""The one way faceattr writes a file: to a unique temp file beside it, then an atomic rename.

A killed run leaves the old file or the complete new one, never half of one; two processes (DDP ranks) writing
the same file never share a temp name. Logs that grow row by row (the crop cache's index, skipped.csv) are appended
instead, so a kill keeps what was done: `appending_csv` and `read_appended_csv` survive a row the kill cut short.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask can only read by setting)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | Path, fsync: bool = False, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces `path` (fsynced first if asked), on failure it is removed.
    `keep_suffix` ends the temp name with `path`'s own suffix, for writers that pick the format from it (video)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes the file 0600; give it the mode any other new file gets (or the old file's), so a shared run
        # stays readable by the team and its tools
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def link_or_copy(source: str, path: str) -> None:
    """`path` as a hard link to `source` (a copy where the filesystem has none), swapped in by rename: the old
    `path` or the new one, never neither."""
    with atomic_path(path) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(data: dict, path: str | Path) -> Path:
    """Write `data` as indented JSON, atomically (the project's one JSON writer)."""
    return write_text(path, json.dumps(data, indent=2, default=str))


def write_csv(frame, path: str | Path) -> Path:
    """Atomically write a pandas DataFrame as CSV, without its index."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def save_figure(figure, path: str | Path, **savefig_kwargs) -> Path:
    """Atomically save a matplotlib figure (the format follows `path`'s suffix, which the temp name keeps)."""
    with atomic_path(path, keep_suffix=True) as tmp:
        figure.savefig(tmp, **savefig_kwargs)
    return Path(path)


def save_image(image, path: str | Path, **save_kwargs) -> Path:
    """Atomically save a PIL image (the format follows `path`'s suffix, which the temp name keeps)."""
    with atomic_path(path, keep_suffix=True) as tmp:
        image.save(tmp, **save_kwargs)
    return Path(path)


def refuse_other_format(path: str | Path, suffixes: tuple[str, ...] = (".csv",)) -> None:
    """Before any work: a table named for a format it is not written in is refused (CSV text in a .xlsx is a file
    Excel refuses to open, and a .json one nothing reads)."""
    from faceattr.errors import FaceAttrError

    if Path(path).suffix.lower() not in suffixes:
        raise FaceAttrError(f"--out {path}: written as {' or '.join(suffixes)}; name the file so (Excel opens .csv)")


def refuse_to_replace(outputs: Iterable[str | Path], overwrite: bool, inputs: Iterable[str | Path] = ()) -> None:
    """Before any work: an output never replaces one of the command's inputs, nor a folder, nor an existing file
    without `--overwrite`. The one wording of these refusals, for every command that writes files; the inputs are
    resolved once, however many outputs (a folder of photos can be thousands of inputs)."""
    from faceattr.errors import FaceAttrError

    read = {Path(i).resolve() for i in inputs}
    for path in outputs:
        if Path(path).is_dir():
            raise FaceAttrError(
                f"{path} is a folder, and this output is a file: give a file name (a folder is never replaced)"
            )
        if Path(path).resolve() in read:
            raise FaceAttrError(
                f"{path} is one of the inputs of this command; writing it would replace the data it reads: pick "
                "another output name"
            )
        if Path(path).exists() and not overwrite:
            raise FaceAttrError(f"{path} already exists; pick another output or pass --overwrite to replace it")


def nearest_on_disk(path: str | Path) -> Path:
    """`path` itself if it exists, else its nearest parent that does: where writing under `path` will start."""
    return next(p for p in (Path(path), *Path(path).parents) if p.exists())


def refuse_file_as_folder(path: str | Path, option: str) -> None:
    """Before any work: a folder to write into (`option` names it) must not be, or lie under, an existing file."""
    from faceattr.errors import FaceAttrError

    on_disk = nearest_on_disk(path)
    if not on_disk.is_dir():
        raise FaceAttrError(f"{option} {path}: {on_disk} is a file, and {option} names a folder to write into")


def _log_ready(path: Path, line_end: bytes) -> bool:
    """Make a CSV log ready for rows: its folder made, a last line a kill cut short ended with `line_end`; whether
    the log is new (its header still to write)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file() or path.stat().st_size == 0
    if not new:
        with path.open("rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(line_end)
    return new


@contextmanager
def appending_csv(path: str | Path, fields: Iterable[str]) -> Iterator[Callable[[dict], None]]:
    """`append(row)` for a CSV log, each row flushed as it is written (the header first when the file is new). A
    row a killed run cut short is ended first, so the next row starts a line of its own and `read_appended_csv`
    drops only the cut one."""
    path = Path(path)
    new = _log_ready(path, b"\r\n")  # csv's own line ending
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(fields))
        if new:
            writer.writeheader()

        def append(row: dict) -> None:
            writer.writerow(row)
            f.flush()

        yield append


def append_table(frame, path: str | Path) -> None:
    """Append a pandas DataFrame to a CSV log (the header first when the file is new), on disk before this returns;
    a line a kill cut short is ended first, so these rows start lines of their own."""
    path = Path(path)
    new = _log_ready(path, b"\n")  # pandas' line ending
    with path.open("a", newline="") as f:
        frame.to_csv(f, header=new, index=False)
        f.flush()
        os.fsync(f.fileno())


def read_appended_csv(path: str | Path) -> list[dict[str, str]]:
    """The complete rows of a CSV log written by `appending_csv`: a row cut short by a kill (fields missing, or a
    row glued onto it by an older writer) is left out."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [row for row in csv.DictReader(f) if None not in row and None not in row.values()]
