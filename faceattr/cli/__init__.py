"""The `faceattr` command line (Typer). Each command is a thin call into the module that does the work; the
commands live by pipeline stage, and register (so `--help` lists them) in the pipeline's order."""

# isort: skip_file
from faceattr.cli.common import app
from faceattr.cli import data_commands  # noqa: F401
from faceattr.cli import training_commands  # noqa: F401
from faceattr.cli import prediction_commands  # noqa: F401

__all__ = ["app"]
