"""Errors a user can act on.

Every error stackgym raises for bad input is a :class:`StackgymError`: it says
what was wrong and, in ``hint``, what to do about it. The CLI prints both and
exits with code 2 instead of showing a traceback.
"""

from __future__ import annotations


class StackgymError(Exception):
    """Base class for errors caused by input the user can fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UnknownNameError(StackgymError, KeyError):
    """A name (env id, agent, sandbox, task…) that is not among the known ones."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]) -> None:
        choices = ", ".join(sorted(known)) or "(none registered)"
        super().__init__(f"unknown {kind} {name!r}", f"choose one of: {choices}")
        self.kind = kind
        self.name = name
        self.known = sorted(known)

    # KeyError.__str__ would repr() the message; keep the readable form.
    __str__ = StackgymError.__str__


class ConfigError(StackgymError, ValueError):
    """A setting, spec or option that cannot be used as given."""


class DataError(StackgymError):
    """A dataset folder or file that is missing, incomplete or corrupt."""


class TraceSchemaError(StackgymError):
    """A trace or results file written with another schema version."""


class ActionError(StackgymError, ValueError):
    """An agent's action that could not be parsed or validated."""


class InfraError(StackgymError):
    """A failure outside the agent's control (provider 401/5xx, hung model).

    Runs that end with one are reported as infrastructure errors and never
    counted as the model failing a task.
    """
