"""Imports point one way, down the pipeline (.importlinter's layers contract), lazy imports included."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports")
pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter is a dev dependency: pip install 'faceattr[dev]'")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(root), "PATH": str(Path(sys.executable).parent)}
    return subprocess.run(
        [LINT, "--config", str(root / ".importlinter")], cwd=root, env=env, capture_output=True, text=True
    )


def test_the_package_keeps_the_layers_contract():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_back_import_breaks_the_contract(tmp_path):
    """The data stage importing a model (a lazy import inside a function, even) is caught."""
    shutil.copytree(ROOT / "faceattr", tmp_path / "faceattr", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    (tmp_path / "faceattr" / "data" / "back.py").write_text("def f():\n    from faceattr.models import net\n")
    result = _lint(tmp_path)
    assert result.returncode != 0 and "faceattr.data is not allowed to import faceattr.models" in result.stdout
