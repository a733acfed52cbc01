"""The ``stackgym`` command line. Each room adds its commands from its own module."""

from __future__ import annotations

import importlib

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

#: Modules under stackgym.cli that add commands with ``register(app)``.
COMMAND_MODULES = ("data", "envs", "run")


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


for _module in COMMAND_MODULES:
    importlib.import_module(f"stackgym.cli.{_module}").register(app)


def main() -> None:
    app()
