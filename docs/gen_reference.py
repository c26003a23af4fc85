"""The reference pages, generated from the code so they cannot drift: every config key (from the dataclasses in
faceattr/config/schema.py, with the comment beside each field) and every command (from the Typer app). The MkDocs
hook (docs/hooks.py) rewrites them on every build; tests/test_docs.py checks the committed copies are current.

    python docs/gen_reference.py
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

HERE = Path(__file__).parent / "reference"
FIELD = re.compile(r"^\s{4}(\w+): [^=]+?(?: = (.+?))?\s*(?:#\s*(.*))?$")


def _comments(cls) -> dict[str, str]:
    """Field name -> its comment: the lines just above it and the one beside it. Comment lines between two fields
    that both have a beside comment finish the first one's note (a long note continued below); otherwise they sit
    above the next field and are its note."""
    out: dict[str, str] = {}
    block: list[str] = []
    previous: str | None = None  # the last field, when it had a beside comment
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            block.append(stripped.lstrip("# "))
            continue
        match = FIELD.match(line)
        if match:
            name, _, beside = match.groups()
            if previous is not None and beside and block:
                out[previous] += " " + " ".join(block)
                block = []
            out[name] = " ".join([*block, beside or ""]).strip()
            previous = name if beside else None
        else:
            previous = None
        block = []
    return out


def _default(field: dataclasses.Field) -> str:
    if field.default is not dataclasses.MISSING:
        return repr(field.default)
    if field.default_factory is not dataclasses.MISSING:
        return repr(field.default_factory())
    return ""


def config_reference() -> str:
    from faceattr.config import Config
    from faceattr.config.choices import CONFIG_CHOICES, names

    lines = [
        "# Configuration reference",
        "",
        "Generated from `faceattr/config/schema.py` by `docs/gen_reference.py`: every key, its default and what it",
        "does. Set keys in a YAML file (`-c configs/x.yaml`) or on the command line (`key=value`). A YAML file may",
        "start from another with `base: other.yaml` (a path beside it, read first), stating only what differs;",
        "`faceattr train -c x.yaml --print-config` shows the resolved result.",
        "",
    ]
    for section in dataclasses.fields(Config):
        cls = section.type if isinstance(section.type, type) else type(getattr(Config(), section.name))
        if not dataclasses.is_dataclass(cls):
            lines += [f"## `{section.name}`", "", f"Default: `{_default(section)}`", ""]
            continue
        notes = _comments(cls)
        lines += [f"## `{section.name}`", "", "| key | default | what it does |", "|---|---|---|"]
        for field in dataclasses.fields(cls):
            note = notes.get(field.name, "").replace("|", "\\|")
            choice = CONFIG_CHOICES.get(f"{section.name}.{field.name}")
            if choice is not None:
                note += ("; one of " if note else "One of ") + ", ".join(f"`{name}`" for name in names(choice))
            default = _default(field).replace("|", "\\|")
            lines.append(f"| `{section.name}.{field.name}` | `{default}` | {note} |")
        lines.append("")
    return "\n".join(lines)


def cli_reference() -> str:
    import typer.main

    from faceattr.cli import app

    group = typer.main.get_command(app)
    lines = [
        "# Command reference",
        "",
        "Generated from the Typer app by `docs/gen_reference.py` (`faceattr --help`).",
        "",
    ]
    for name in sorted(group.commands):
        command = group.commands[name]
        summary = (command.help or "").strip().replace("\n", " ")
        lines += [f"## `faceattr {name}`", "", summary, "", "| argument or option | default | help |", "|---|---|---|"]
        for param in command.params:
            names = ", ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts)) or f"`{param.name}`"
            if param.param_type_name == "argument":
                names = f"`{param.name.upper()}`"
            default = "" if param.default is None or callable(param.default) else f"`{param.default}`"
            text = (getattr(param, "help", None) or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {names} | {default} | {text} |")
        lines.append("")
    return "\n".join(lines)


def write() -> list[Path]:
    HERE.mkdir(exist_ok=True)
    pages = {"config.md": config_reference(), "cli.md": cli_reference()}
    for name, text in pages.items():
        (HERE / name).write_text(text + "\n")
    return [HERE / name for name in pages]


if __name__ == "__main__":
    for path in write():
        print(f"wrote {path}")
