"""The ``stackgym`` command line. Each room adds its commands from its own module."""

from __future__ import annotations

import importlib
import pkgutil

import typer

from stackgym.version import __version__

app = typer.Typer(
    name="stackgym",
    help="Build, run, measure and train LLM agents on data-stack troubleshooting tasks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _command_modules() -> list[str]:
    """Every module of this package that defines ``register(app)``.

    Each room keeps its commands in its own module (imports of heavy libraries
    stay inside the command functions, so start-up stays fast).
    """
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name != "common")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"stackgym {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Build, run, measure and train LLM agents on data-stack troubleshooting tasks."""


for _name in _command_modules():
    _module = importlib.import_module(f"stackgym.cli.{_name}")
    if hasattr(_module, "register"):
        _module.register(app)


def main() -> None:
    app()
