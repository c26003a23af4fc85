"""Helpers shared by the benchmark scripts: machine facts and writing a result table as JSON and Markdown."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

import torch

from faceattr.runinfo import git_commit, versions

RESULTS = Path(__file__).parent / "results"
SHARED_UTKFACE = Path(__file__).resolve().parents[2] / "shared" / "data" / "utkface"


def machine() -> dict:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "git_commit": git_commit(Path(__file__).parent),
        "versions": versions(),
    }


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def save(name: str, rows: list[dict], columns: list[str], settings: dict) -> str:
    """Print the table and write benchmarks/results/<name>.json and .md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows, columns)
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"settings": settings, "machine": machine(), "rows": rows}, indent=2, default=str)
    )
    (RESULTS / f"{name}.md").write_text(f"# {name}\n\nsettings: `{json.dumps(settings, default=str)}`\n\n{table}\n")
    print(table)
    return table
