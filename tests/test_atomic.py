"""Every file faceattr writes goes through faceattr.atomic: a killed or failed write leaves the old file or the
complete new one, and never a stray temp file."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest
from PIL import Image

from faceattr.atomic import save_figure, save_image, write_csv, write_json, write_text

PACKAGE = Path(__file__).resolve().parents[1] / "faceattr"
# the plain writes allowed, each with the reason it is not a file a reader could find half-written
ALLOWED = {
    ("training/batch_size.py", 'open("/proc/self/clear_refs", "w")'): "a kernel control file, not a file",
    ("synth/dataset.py", 'log_path.open("w", newline="")'): "the skip log streams while a long run goes on",
    ("data/drawn_faces.py", '.save(folder / f"{stem}.jpg", quality=92)'): "a generated demo dataset, rebuilt whole",
    ("data/drawn_faces.py", ".save(eval_images / name, quality=92)"): "a generated demo dataset, rebuilt whole",
}
PLAIN_WRITE = re.compile(
    r"\.to_csv\(|\.to_parquet\(|\.savefig\(|\.write_text\(|\.write_bytes\(|open\([^)]*\"w|\.save\("
)


ATOMIC_TEMP = re.compile(r"atomic_path\([^)]*\)\s+as\s+(\w+)")


def plain_writes(rel: str, source: str) -> list[str]:
    """The lines of a module's `source` that write a file other than through faceattr.atomic: a write is fine when
    its target is the temp path a `with atomic_path(...) as NAME` of the module yields, or when ALLOWED says why."""
    temps = set(ATOMIC_TEMP.findall(source))
    found = []
    for line in source.splitlines():
        if not PLAIN_WRITE.search(line) or any(rel == f and snippet in line for f, snippet in ALLOWED):
            continue
        if any(re.search(rf"\b{name}\b", line) for name in temps):
            continue
        found.append(f"{rel}: {line.strip()}")
    return found


def test_no_module_writes_a_file_without_the_atomic_writer():
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel != "atomic.py":
            found += plain_writes(rel, path.read_text())
    assert not found, "write these through faceattr.atomic:\n" + "\n".join(found)


def test_the_scan_tells_a_write_through_atomic_path_from_a_plain_one():
    inside = "with atomic_path(path) as tmp:\n    df.to_csv(tmp, index=False)\n"
    assert plain_writes("x.py", inside) == []
    assert plain_writes("x.py", "df.to_csv(tmp_out, index=False)\n") == ["x.py: df.to_csv(tmp_out, index=False)"]
    assert plain_writes("x.py", "Path(out).write_text(text)\n")


@pytest.mark.parametrize(
    ("name", "write", "read"),
    [
        ("t.csv", lambda p: write_csv(pd.DataFrame({"a": [1, 2]}), p), lambda p: pd.read_csv(p)["a"].tolist()),
        ("t.json", lambda p: write_json({"a": 1}, p), lambda p: p.read_text().count('"a"')),
        ("t.txt", lambda p: write_text(p, "hello"), lambda p: p.read_text()),
    ],
)
def test_writers_replace_the_file_and_leave_no_temp(tmp_path, name, write, read):
    path = tmp_path / "sub" / name
    write(path)
    first = read(path)
    write(path)
    assert read(path) == first
    assert [p.name for p in path.parent.iterdir()] == [name]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "table.csv"
    write_csv(pd.DataFrame({"a": [1]}), path)

    class Broken:
        def to_csv(self, target, index):
            Path(target).write_text("half a ro")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_csv(Broken(), path)
    assert path.read_text() == "a\n1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_figures_and_images_keep_their_format_from_the_suffix(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    save_figure(fig, tmp_path / "chart.png", dpi=50)
    save_figure(fig, tmp_path / "chart.pdf")
    plt.close(fig)
    save_image(Image.new("RGB", (8, 8), "red"), tmp_path / "tile.jpg", quality=90)
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "chart.pdf").read_bytes()[:4] == b"%PDF"
    assert Image.open(tmp_path / "tile.jpg").format == "JPEG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.pdf", "chart.png", "tile.jpg"]
