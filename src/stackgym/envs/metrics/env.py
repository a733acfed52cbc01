"""The metrics environment: compute a business metric inside one architecture.

An episode is (sandbox, task, data snapshot). The agent explores the
sandbox with the original tools (``read_file``, ``write_file``,
``list_files``, ``done``; ``run_sql`` and ``lint`` only when configured),
writes its answer to the sandbox's answer file and calls ``done``; the
answer runs (SQL in DuckDB, TypeScript on Node.js, Python) and is graded with
the original rubric. Each tool call is one turn; at ``max_turns`` the answer
as it stands is graded and the episode is truncated.

The episode seed changes nothing in the episode: the data snapshot comes
from ``data_seed``/``scale``/``drift``/``anchor`` (so an experiment runs on
one snapshot whatever the seeds), and sandboxes, prompts and grading are
deterministic. The seed only feeds agents' randomness (the random baseline).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

from stackgym.core.env import Env
from stackgym.core.errors import ConfigError, StackgymError
from stackgym.core.models import Action, StepResult
from stackgym.core.tools import ActionSet
from stackgym.data import DEFAULT_ANCHOR, DatasetSpec, Truth, dataset_for, metric_tasks
from stackgym.envs.metrics.models import (
    EPISODE_OPTIONS,
    FIX_WINDOW_TURNS,
    Done,
    Lint,
    ListFiles,
    MetricsConfig,
    MetricsObservation,
    ReadFile,
    RunSql,
    WriteFile,
)
from stackgym.envs.metrics.rubric import Grade, Tally, episode_metrics, grade
from stackgym.envs.options import episode_options, validate_options
from stackgym.sandboxes.build import SandboxBuild
from stackgym.sandboxes.catalog import Sandbox, default_catalog
from stackgym.sandboxes.lint import LintReport, lint_answer
from stackgym.sandboxes.runtimes import AnswerResult, run_answer
from stackgym.sandboxes.sql import SqlError
from stackgym.sandboxes.workspace import Access, ToolError, Workspace

BASE_TOOLS: tuple[type[Action], ...] = (ReadFile, WriteFile, ListFiles, Done)
EXTRA_TOOLS: dict[str, type[Action]] = {"run_sql": RunSql, "lint": Lint}
#: Placeholder answers for the env checker and the random baseline.
TRIVIAL_ANSWERS = {
    "sql": "select 0 as value\n",
    "typescript": "export function computeMetric(): number {\n  return 0;\n}\n",
    "python": "def compute_metric(data):\n    return 0\n",
}
_TEMPLATE = re.compile(r"\{(\w+)\}")


def _config(options: dict[str, Any]) -> MetricsConfig:
    config = validate_options("metrics", MetricsConfig, options)
    default_catalog().get(config.sandbox)  # unknown ids fail here, listing the known ones
    return config


def render_prompt(template: str, values: dict[str, str]) -> str:
    """Fill ``{name}`` placeholders; ``{{ ref('x') }}`` and other braces stay as they are."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ConfigError(f"prompt template names an unknown field {{{name}}}")
        return values[name]

    return _TEMPLATE.sub(replace, template)


# Process-wide caches: ground truth per snapshot; answer and lint results per
# (build, task, files). Grading is deterministic, so a repeated answer (the env
# checker's placeholder, an agent resubmitting) is not run twice.
_TRUTHS: dict[str, Truth] = {}
_ANSWERS: OrderedDict[tuple[str, ...], AnswerResult] = OrderedDict()
_LINTS: OrderedDict[tuple[str, ...], LintReport] = OrderedDict()
_CACHE_LIMIT = 512


def _remember(table: OrderedDict, key: tuple[str, ...], value: Any) -> Any:
    table[key] = value
    table.move_to_end(key)
    while len(table) > _CACHE_LIMIT:
        table.popitem(last=False)
    return value


def _inputs_key(workspace: Workspace, task: str) -> tuple[str, ...]:
    """What an answer's result depends on: the build, the task and the files it can import.

    SQL answers see only their own file (the database is the build's); code
    answers may import any text file of the workspace.
    """
    manifest = workspace.manifest
    digest = hashlib.sha256()
    answer = workspace.root / manifest.answer_path(task)
    if manifest.answer.runtime == "sql":
        files = [answer]
    else:
        databases = {d.path for d in manifest.databases.values()}
        files = sorted(
            p
            for p in workspace.root.rglob("*")
            if p.is_file() and workspace.relative(p) not in databases
        )
    for path in files:
        digest.update(workspace.relative(path).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        digest.update(b"\0")
    return (str(workspace.build.folder), task, digest.hexdigest())


class MetricsEnv(Env):
    """See the module docstring; options are :class:`MetricsConfig`'s fields."""

    env_id = "metrics"
    observation_type = MetricsObservation

    def __init__(self, **options: Any) -> None:
        self.config = _config(options)
        super().__init__(**self.config.model_dump(mode="json"))
        self._actions = ActionSet([*BASE_TOOLS, *(EXTRA_TOOLS[name] for name in self.config.tools)])
        self.episode = self.config
        self.sandbox: Sandbox | None = None
        self.build: SandboxBuild | None = None
        self.workspace: Workspace | None = None
        self._snapshot: str | None = None
        self._turn = 0
        self._fix_window = 0
        self._lint_turns = 0
        self._lint_window_used = False
        self._finished: tuple[bool, bool] | None = None  # (terminated, truncated)
        self._tally = Tally.start(())

    # -- protocol pieces ------------------------------------------------------

    @property
    def action_set(self) -> ActionSet:
        return self._actions

    @property
    def data_snapshot(self) -> str | None:
        return self._snapshot

    def _extra_state(self) -> dict[str, Any]:
        return {
            "sandbox": self.episode.sandbox,
            "task": self.episode.task,
            "turn": self._turn,
            "max_turns": self.config.max_turns,
            "fix_window": self._fix_window,
        }

    def tool_names(self) -> list[str]:
        return list(self._actions.names)

    # -- reset ------------------------------------------------------------------

    def _episode_config(self, options: dict[str, Any]) -> MetricsConfig:
        merged = episode_options(self.config, options, EPISODE_OPTIONS)
        return self.config if merged is None else _config(merged)

    def _spec(self) -> DatasetSpec:
        config = self.episode
        anchor: datetime = config.anchor or DEFAULT_ANCHOR
        return DatasetSpec(
            seed=config.data_seed, scale=config.scale, anchor=anchor, drift=config.drift
        )

    def expected(self) -> float:
        """The ground truth of this episode's task on its snapshot."""
        assert self._snapshot is not None
        truth = _TRUTHS.get(self._snapshot)
        if truth is None:
            truth = _TRUTHS[self._snapshot] = dataset_for(self._spec()).truth()
        return float(getattr(truth, self.episode.task))

    def _reset(
        self, seed: int, options: dict[str, Any]
    ) -> tuple[MetricsObservation, dict[str, Any]]:
        self.episode = self._episode_config(options)
        self.sandbox = default_catalog().get(self.episode.sandbox)
        if self.sandbox.manifest.answer.runtime == "typescript":
            from stackgym.sandboxes.node import require_node

            require_node()
        self.build = self.sandbox.build(self._spec())
        self._snapshot = self.build.info.snapshot
        if self.workspace is not None:
            self.workspace.close(wait=False)
        self.workspace = self.build.checkout()
        manifest = self.sandbox.manifest
        self._turn = 0
        self._fix_window = 0
        self._lint_turns = 0
        self._lint_window_used = False
        self._finished = None
        self._tally = Tally.start(manifest.context_files)
        task = metric_tasks()[self.episode.task]
        values = {
            "task": self.episode.task,
            "title": task.title,
            "definition": task.definition,
            "unit": task.unit,
            "decimals": str(task.decimals),
            "answer_path": manifest.answer_path(self.episode.task),
            "tools": ", ".join(self.tool_names()),
            "context_files": ", ".join(manifest.context_files),
            "max_turns": str(self.config.max_turns),
        }
        system = render_prompt(manifest.prompts.system, values)
        task_prompt = render_prompt(manifest.prompts.task, values)
        observation = self._observe(
            f"{system}\n\n{task_prompt}", system_prompt=system, task_prompt=task_prompt
        )
        info = {
            "sandbox": self.episode.sandbox,
            "task": self.episode.task,
            "data_snapshot": self._snapshot,
            "dataset": self.build.info.spec.model_dump(mode="json"),
            "answer_path": values["answer_path"],
            "runtime": manifest.answer.runtime,
            "tools": self.tool_names(),
            "context_files": list(manifest.context_files),
            "lint": self.config.lint,
            "max_turns": self.config.max_turns,
        }
        return observation, info

    # -- observations --------------------------------------------------------------

    def _observe(
        self,
        text: str,
        *,
        error: str | None = None,
        done: bool = False,
        reward: float | None = None,
        system_prompt: str | None = None,
        task_prompt: str | None = None,
    ) -> MetricsObservation:
        manifest = self.sandbox.manifest if self.sandbox else None
        return MetricsObservation(
            text=text,
            error=error,
            done=done,
            reward=reward,
            sandbox=self.episode.sandbox,
            task=self.episode.task,
            answer_path=manifest.answer_path(self.episode.task) if manifest else "",
            tools=self.tool_names(),
            turn=self._turn,
            max_turns=self.config.max_turns,
            turns_left=max(0, self.config.max_turns - self._turn) if not self._fix_window else 0,
            fix_window=self._fix_window,
            system_prompt=system_prompt,
            task_prompt=task_prompt,
        )

    # -- tools ----------------------------------------------------------------------

    def _tool(self, action: Action) -> tuple[str, list[Access]]:
        """Run one non-terminal tool; raises ToolError/SqlError for the agent to read."""
        workspace = self.workspace
        assert workspace is not None
        tally = self._tally
        if isinstance(action, ReadFile):
            text, access = workspace.read_file(action.path)
            tally.files_read.add(access.path)
            tally.reads.append((access.path, access.layer))
            return text, [access]
        if isinstance(action, WriteFile):
            access = workspace.write_file(action.path, action.content)
            tally.files_written.add(access.path)
            return f"wrote {len(action.content):,} characters to {access.path}", [access]
        if isinstance(action, ListFiles):
            entries, access = workspace.list_files(action.path)
            tally.files_listed.update(e.split("  (")[0] for e in entries)
            return "\n".join(entries) if entries else "(no files)", [access]
        if isinstance(action, RunSql):
            return self._run_sql(action)
        if isinstance(action, Lint):
            tally.lint_calls += 1
            return self._lint().text(), []
        raise ToolError(f"unhandled tool {action.type!r}")  # pragma: no cover

    def _run_sql(self, action: RunSql) -> tuple[str, list[Access]]:
        workspace = self.workspace
        assert workspace is not None and self.sandbox is not None
        name = action.database or self.sandbox.manifest.answer.database
        spec = self.sandbox.manifest.databases.get(name)
        if spec is None:
            known = ", ".join(self.sandbox.manifest.databases)
            raise ToolError(f"this sandbox has no database {name!r}", f"databases: {known}")
        self._tally.sql_queries += 1
        result = workspace.sql(name).query(action.sql, allowed=("select", "explain"))
        accesses = []
        for table in sorted(result.tables) or [spec.path]:
            schema = table.split(".")[0] if "." in table else None
            layer = spec.layer_of(schema)
            accesses.append(Access("query", f"{name}:{table}", layer))
            self._tally.reads.append((f"{name}:{table}", layer))
        return result.format(), accesses

    def _lint(self) -> LintReport:
        assert self.workspace is not None
        key = ("lint", *_inputs_key(self.workspace, self.episode.task))
        cached = _LINTS.get(key)
        if cached is not None:
            return cached
        return _remember(_LINTS, key, lint_answer(self.workspace, self.episode.task))

    def _run_answer(self) -> AnswerResult:
        assert self.workspace is not None
        key = _inputs_key(self.workspace, self.episode.task)
        cached = _ANSWERS.get(key)
        if cached is not None:
            return cached
        return _remember(_ANSWERS, key, run_answer(self.workspace, self.episode.task))

    # -- steps -----------------------------------------------------------------------

    def _step(self, action: Action) -> StepResult:
        self._turn += 1
        in_window = self._fix_window > 0
        if in_window:
            self._lint_turns += 1
        tool = action.type
        if isinstance(action, Done):
            return self._on_done(in_window)
        error = None
        accesses: list[Access] = []
        try:
            text, accesses = self._tool(action)
        except (ToolError, SqlError) as exc:
            self._tally.tool_errors += 1
            error = str(exc)
            text = f"{tool} failed: {exc.message}"
        except StackgymError as exc:  # e.g. a database that could not be opened
            self._tally.tool_errors += 1
            error = str(exc)
            text = f"{tool} failed: {exc.message}"
        assert self.workspace is not None
        text = self.workspace.sanitize(text)
        return self._after_turn(text, error, tool, accesses, in_window)

    def _after_turn(
        self,
        text: str,
        error: str | None,
        tool: str,
        accesses: list[Access],
        in_window: bool,
    ) -> StepResult:
        info: dict[str, Any] = {
            "turn": self._turn,
            "tool": tool,
            "accesses": [a.as_dict() for a in accesses],
            "layers": sorted({a.layer for a in accesses if a.layer}),
        }
        if in_window:
            self._fix_window -= 1
            if self._fix_window == 0:
                return self._finish(terminated=True, truncated=False, info=info, before=text)
        elif self._turn >= self.config.max_turns:
            return self._finish(terminated=False, truncated=True, info=info, before=text)
        observation = self._observe(text, error=error, reward=0.0)
        return StepResult(observation, 0.0, False, False, info)

    def _on_done(self, in_window: bool) -> StepResult:
        info: dict[str, Any] = {"turn": self._turn, "tool": "done", "accesses": [], "layers": []}
        if self.config.lint == "lint" and not self._lint_window_used:
            report = self._lint()
            info["lint"] = {"ok": report.ok, "problems": report.problems}
            if not report.ok:
                self._lint_window_used = True
                self._fix_window = FIX_WINDOW_TURNS
                text = (
                    f"{report.text()}\n\nYou have up to {FIX_WINDOW_TURNS} more turns to fix "
                    "the answer; call done when it is ready (it is graded then, or when the "
                    "turns run out)."
                )
                observation = self._observe(
                    self.workspace.sanitize(text) if self.workspace else text
                )
                return StepResult(observation, 0.0, False, False, info)
        if in_window:
            self._fix_window = 0
        return self._finish(terminated=True, truncated=False, info=info)

    def _finish(
        self, *, terminated: bool, truncated: bool, info: dict[str, Any], before: str = ""
    ) -> StepResult:
        assert self.workspace is not None and self.sandbox is not None
        task = metric_tasks()[self.episode.task]
        answer = self._run_answer()
        result = grade(
            answer,
            task,
            self.expected(),
            context_read=self._tally.context_read,
            context_total=len(self._tally.context_files),
        )
        answer_path = self.sandbox.manifest.answer_path(self.episode.task)
        metrics = episode_metrics(
            result,
            self._tally,
            turns=self._turn,
            lint_turns=self._lint_turns,
            max_turns_reached=truncated,
            answered=answer.error_kind != "no_answer",
            network_isolated=answer.network_isolated,
        )
        error = self.workspace.sanitize(answer.error) if answer.error else None
        info = {
            **info,
            "outcome": {"passed": result.passed, "metrics": metrics, "error": error},
            "grade": self._grade_info(result, answer),
            "expected": result.expected,
            "actual": result.actual,
        }
        self._finished = (terminated, truncated)
        self._fix_window = 0
        lines = [before] if before else []
        if truncated:
            lines.append(f"The turn budget ({self.config.max_turns}) is used up.")
        lines.append(self._verdict(result, answer_path))
        observation = self._observe("\n\n".join(lines), done=True, reward=result.score, error=None)
        return StepResult(observation, result.score, terminated, truncated, info)

    def _grade_info(self, result: Grade, answer: AnswerResult) -> dict[str, Any]:
        layers = set()
        assert self.sandbox is not None
        database = self.sandbox.manifest.databases[self.sandbox.manifest.answer.database]
        for table in answer.tables:
            layers.add(database.layer_of(table.split(".")[0]))
        return {
            "passed": result.passed,
            "score": result.score,
            "runtime": result.runtime,
            "output": result.output,
            "schema": result.schema,
            "tool_usage": result.tool_usage,
            "error_kind": result.error_kind,
            "answer_seconds": round(answer.seconds, 4),
            "answer_tables": sorted(answer.tables),
            "answer_layers": sorted(layers),
            "tolerance": metric_tasks()[self.episode.task].tolerance,
        }

    @staticmethod
    def _verdict(result: Grade, answer_path: str) -> str:
        if result.error_kind == "no_answer":
            return f"No answer was graded: {answer_path} does not exist."
        verdict = "PASSED" if result.passed else "FAILED"
        if result.actual is None:
            return f"{answer_path} was run and {verdict}: it raised an error:\n{result.error}"
        return f"{answer_path} was run and {verdict}: it returned {result.actual:g}."

    def _invalid(self, message: str) -> StepResult:
        if self._finished is not None:
            terminated, truncated = self._finished
            observation = self._observe("the episode is over", error=message, done=True, reward=0.0)
            return StepResult(observation, 0.0, terminated, truncated, {})
        # a refused action still uses a turn, so a confused agent cannot loop forever
        self._turn += 1
        in_window = self._fix_window > 0
        if in_window:
            self._lint_turns += 1
        self._tally.invalid_actions += 1
        result = self._after_turn(f"invalid action: {message}", message, "invalid", [], in_window)
        observation = result.observation.model_copy(update={"error": message})
        return result._replace(observation=observation)

    # -- helpers for checkers and baselines -------------------------------------

    def example_actions(self, rng: random.Random) -> list[Action]:
        """One meaningful action per tool (a context file, the answer path…)."""
        assert self.sandbox is not None
        manifest = self.sandbox.manifest
        path = manifest.answer_path(self.episode.task)
        actions: list[Action] = [
            ReadFile(path=rng.choice(manifest.context_files)),
            WriteFile(path=path, content=TRIVIAL_ANSWERS[manifest.answer.runtime]),
            ListFiles(path=rng.choice([".", str(Path(manifest.context_files[0]).parent)])),
            Done(),
        ]
        if "run_sql" in self._actions:
            actions.append(RunSql(sql="select 1 as value"))
        if "lint" in self._actions:
            actions.append(Lint())
        return actions

    def close(self) -> None:
        if self.workspace is not None:
            self.workspace.close()
            self.workspace = None
