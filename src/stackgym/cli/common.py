"""What every CLI command shares: consoles, JSON output and clean error exits."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from stackgym.core.errors import ConfigError, StackgymError

# Lines of text are never folded at the terminal's width (rich's default): a
# folded path or figure cannot be copied or searched for. Tables still fit it.
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

#: Exit code for bad input (the same code click uses for usage errors).
EXIT_BAD_INPUT = 2


def print_json(data: Any) -> None:
    """Machine-readable output: one JSON document on stdout, nothing else."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def config_error(exc: ValidationError, what: str) -> ConfigError:
    """A pydantic validation error as a message a user can act on."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or what}: {e['msg']}"
        for e in exc.errors(include_url=False)
    )
    return ConfigError(f"invalid {what}: {problems}")


def fail(exc: StackgymError) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {exc.message}", markup=True, soft_wrap=True)
    if exc.hint:
        err_console.print(f"[yellow]hint:[/] {exc.hint}", markup=True, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def handles_errors(function: F) -> F:
    """Turn :class:`StackgymError` into a message on stderr and exit code 2."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except StackgymError as exc:
            raise fail(exc) from None

    return wrapper  # type: ignore[return-value]


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["mode=x", "max_turns=10"]`` -> a dict; values are parsed as JSON where valid."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"option {pair!r} is not KEY=VALUE", "e.g. -o mode=root_cause_visible"
            )
        try:
            options[key.strip()] = json.loads(value)
        except ValueError:
            options[key.strip()] = value
    return options
