"""The progress bar of a running experiment: done/total, passes, tokens, cost, ETA."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from stackgym.core.results import RunRecord
from stackgym.harness.runner import Tally


def stats_line(tally: Tally) -> str:
    """``pass 3/7 · infra 1 · 12.3k tok · $0.0123``."""
    judged = tally.passed + tally.failed
    tokens = tally.tokens
    shown = (
        f"{tokens / 1e6:.2f}M"
        if tokens >= 1e6
        else f"{tokens / 1e3:.1f}k"
        if tokens >= 1e3
        else str(tokens)
    )
    parts = [f"pass {tally.passed}/{judged}"]
    if tally.infra_errors:
        parts.append(f"[red]infra {tally.infra_errors}[/]")
    parts.append(f"{shown} tok")
    parts.append(f"${tally.cost_usd:.4f}")
    return " · ".join(parts)


class ProgressView:
    """A rich progress bar fed one run record at a time (silent when not a terminal)."""

    def __init__(self, console: Console, description: str, total: int, done: int) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task(description, total=total, completed=done, stats="")

    def update(self, record: RunRecord, tally: Tally) -> None:
        self.progress.update(self.task, advance=1, stats=stats_line(tally))

    def __enter__(self) -> ProgressView:
        self.progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.progress.stop()
