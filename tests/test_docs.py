"""The docs: the README stays a user's guide that links only pages that exist, the commands and config keys the
pages show are real, the reference pages are current with the code, and the site builds with MkDocs' strict checks
(a broken link or a missing page fails)."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_is_a_guide_not_a_lab_notebook():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 350


def test_every_page_the_readme_links_exists():
    links = re.findall(r"\]\(((?:docs|configs|benchmarks)/[^)#\s]+)", (ROOT / "README.md").read_text())
    assert links, "the README links its docs pages"
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, missing


def test_every_results_table_the_docs_name_exists():
    """A table moved or renamed leaves no page pointing at nothing (NAME is the docs' placeholder)."""
    texts = [ROOT / "README.md", *(ROOT / "docs").glob("**/*.md"), *(ROOT / "docs" / "experiments").glob("*.py")]
    named = {
        (page.relative_to(ROOT), path)
        for page in texts
        if "results" not in page.parent.name
        for path in re.findall(r"((?:benchmarks|docs/experiments)/results/\w+\.(?:md|json))", page.read_text())
        if "/NAME." not in path
    }
    assert len(named) > 20, "the docs cite their tables"
    missing = sorted((str(page), path) for page, path in named if not (ROOT / path).is_file())
    assert not missing, missing


def _pages_and_configs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "configs").glob("*.yaml"))]


def _shown_commands() -> list[tuple[str, str]]:
    """Every `faceattr ...` command the README, the docs pages and the configs' headers show: in code blocks (with
    `\\` continuations joined), in inline code, and on the configs' comment lines; each with where it stands."""
    found = []
    for page in _pages_and_configs():
        text = page.read_text()
        blocks = re.findall(r"```\w*\n(.*?)```", text, flags=re.S)
        spans = [*(b.replace("\\\n", " ") for b in blocks), *re.findall(r"`(faceattr [^`]+)`", text)]
        spans += re.findall(r"^#\s+(faceattr .*)$", text, flags=re.M) if page.suffix == ".yaml" else []
        for span in spans:
            for line in span.splitlines():
                line = re.sub(r"\s#.*$", "", line).replace("\\|", "/")  # a comment after it; a table's `\|`
                for part in re.split(r"&&|\|\||[|;]", line):
                    if part.strip().startswith("faceattr "):
                        found.append((page.name, part.strip()))
    return found


def test_every_command_option_and_config_key_the_docs_show_exists():
    """A renamed option or config key leaves no page telling users to type what fails: each `faceattr` command
    shown must exist with every `--option` it uses, and every `section.key=` anywhere in the pages must be a key of
    the config schema (a free mapping such as priors.target takes any name below it)."""
    import shlex

    import click
    import typer

    from faceattr.cli import app
    from faceattr.config import Config, to_dict

    group = typer.main.get_command(app)
    context = click.Context(group)
    schema = to_dict(Config())

    def is_key(key: str) -> bool:
        node = schema
        for part in key.split("."):
            if not isinstance(node, dict):
                return False
            if part not in node:
                return node == {}  # a free mapping (priors.target, per_task) names its own keys
            node = node[part]
        return True

    commands = _shown_commands()
    assert len(commands) > 50, "the docs show the commands"
    wrong = []
    for where, shown in commands:
        words = shlex.split(shown.replace("[", " ").replace("]", " "))  # `[--opt]`: an optional part
        command = group.get_command(context, words[1]) if len(words) > 1 else None
        if command is None:
            wrong.append((where, shown, "no such command"))
            continue
        options = {o for p in command.params for o in (*p.opts, *getattr(p, "secondary_opts", []))}
        wrong += [(where, shown, w) for w in words[2:] if w.startswith("--") and w.split("=")[0] not in options]
    for page in _pages_and_configs():
        for key in re.findall(r"(?<![\w./-])([a-z_]+(?:\.[a-z_0-9]+)+)=", page.read_text()):
            if key.split(".")[0] in schema and not is_key(key):
                wrong.append((page.name, key, "no such config key"))
    assert not wrong, wrong


def _load_gen_reference():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_code_layout_page_names_every_module():
    """A newcomer finds each module of the package on docs/layout.md, with what it does."""
    layout = (ROOT / "docs" / "layout.md").read_text()
    modules = [p for p in (ROOT / "faceattr").rglob("*.py") if p.stem not in ("__init__", "__main__")]
    assert len(modules) > 50
    unnamed = sorted(str(p.relative_to(ROOT)) for p in modules if f"{p.stem}.py" not in layout)
    assert not unnamed, f"add these to docs/layout.md: {unnamed}"


def test_the_reference_pages_are_generated_from_the_current_code():
    module = _load_gen_reference()
    assert (ROOT / "docs/reference/config.md").read_text() == module.config_reference() + "\n"
    assert (ROOT / "docs/reference/cli.md").read_text() == module.cli_reference() + "\n"
    assert "`faces.detector`" in module.config_reference() and "## `faceattr predict`" in module.cli_reference()


@dataclasses.dataclass
class _Notes:
    # a note above a field is that field's
    above: int = 0
    beside: int = 0  # a note beside a field that runs on
    # goes on below it, when the next field has its own note
    next_one: int = 0  # its own note only
    # a note between a field with a note beside it and one without is the second's
    last: int = 0


def test_the_reference_gives_each_field_its_own_note_above_beside_or_continued_below():
    notes = _load_gen_reference()._comments(_Notes)
    assert notes == {
        "above": "a note above a field is that field's",
        "beside": "a note beside a field that runs on goes on below it, when the next field has its own note",
        "next_one": "its own note only",
        "last": "a note between a field with a note beside it and one without is the second's",
    }


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("material", reason="the docs site needs pip install 'faceattr[dev]' (mkdocs-material)")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "reference" / "config" / "index.html").is_file()


def test_benchmarks_are_a_suite_whose_scripts_share_only_public_names():
    import ast

    scripts = sorted((ROOT / "benchmarks").glob("*.py"))
    assert len(scripts) <= 15, [s.name for s in scripts]  # one-off studies live in docs/experiments/
    for script in [*scripts, *(ROOT / "docs" / "experiments").glob("*.py")]:
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(("benchmarks", "docs")):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{script.name} imports {private} from {node.module}"
