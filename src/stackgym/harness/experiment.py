"""Running an experiment (or a suite) into a folder, resumably.

``run_experiment(spec, out)``:

1. checks parity (refuses, naming the fields that differ between conditions);
2. preflight: makes every agent once (a missing API key stops here, before
   anything is written) and every env configuration once, resetting it to
   read the data snapshot it serves (conditions must share it) and to time it;
3. opens the folder: a new folder gets ``experiment.json``; a folder that
   already holds *this* experiment is resumed (its finished runs are skipped;
   episodes traced but not yet recorded when a run was killed are recorded
   from their traces instead of being played again); a folder holding another
   experiment, or other settings, is refused with the differences named;
4. plays the remaining runs with the :class:`~stackgym.harness.runner.Runner`;
5. finishes ``experiment.json`` (status, counts, times).

Ctrl-C once: no new runs start, runs in flight finish and are recorded.
Ctrl-C twice (or SIGTERM): runs in flight are abandoned. Either way nothing is
half-written, and running the same command again resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from stackgym.agents.llm import is_llm_agent
from stackgym.core.agents import make_agent
from stackgym.core.errors import ConfigError, StackgymError
from stackgym.core.results import RunRecord, run_record_from_episode
from stackgym.harness import loop
from stackgym.harness.folder import (
    EXPERIMENT_FILE,
    SUITE_FILE,
    ExperimentFolder,
    ExperimentRecord,
    Session,
    SuiteRecord,
    count,
    write_json_atomic,
)
from stackgym.harness.names import check_names
from stackgym.harness.parity import check_parity, resolve_all, snapshot_differences
from stackgym.harness.plan import PlannedRun, llm_settings, plan_runs
from stackgym.harness.progress import ProgressView, stats_line
from stackgym.harness.runner import (
    SLOW_RESET_S,
    EnvThreadPolicy,
    Runner,
    Tally,
    open_env,
    options_key,
)
from stackgym.harness.spec import ExperimentSpec, LoadedSpec

log = logging.getLogger("stackgym.harness")

#: Spec fields that may change between sessions of one experiment folder: how
#: runs execute (not what is measured), the gate thresholds (read by analysis),
#: and ``runs``, which may grow: more repeats of the same design.
RESUMABLE_CHANGES = {
    "description",
    "concurrency",
    "timeouts",
    "retries",
    "env_thread",
    "env_url",
    "gate",
    "runs",
}


class RunInterrupted(StackgymError):
    """The user stopped the run; what finished is recorded and the run can resume."""


@dataclass
class ExperimentOutcome:
    """What one ``run_experiment`` call did."""

    name: str
    folder: Path
    record: ExperimentRecord
    tally: Tally
    records: list[RunRecord] = field(default_factory=list)
    interrupted: bool = False


def spec_hash(spec: ExperimentSpec) -> str:
    """Hash of what the experiment measures (execution knobs excluded)."""
    data = spec.model_dump(mode="json", exclude=RESUMABLE_CHANGES)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


def _spec_changes(old: ExperimentSpec, new: ExperimentSpec) -> list[str]:
    before = _flatten(old.model_dump(mode="json", exclude=RESUMABLE_CHANGES))
    after = _flatten(new.model_dump(mode="json", exclude=RESUMABLE_CHANGES))
    return [
        f"{key} ({_dumps(before.get(key))} -> {_dumps(after.get(key))})"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


def refuse_broken_parity(spec: ExperimentSpec) -> None:
    report = check_parity(spec)
    if not report.ok:
        raise ConfigError(
            f"experiment {spec.name!r} breaks parity: conditions differ in "
            + "; ".join(d.describe() for d in report.differences),
            f"only the factor {spec.factor!r} may differ; remove the per-condition overrides "
            "or make the difference the experiment's factor",
        )


def preflight_agents(spec: ExperimentSpec) -> None:
    """Make every agent once, so a missing API key or bad name stops the run now."""
    for condition in resolve_all(spec).values():
        settings = llm_settings(spec, condition)
        for model in condition.models:
            kwargs = {"settings": settings} if is_llm_agent(model) else {}
            make_agent(model, spec.env, **kwargs).close()


def preflight_envs(
    plan: list[PlannedRun], seed: int
) -> tuple[dict[str, dict[str, str | None]], set[str]]:
    """Make and reset each env configuration once: data snapshots, and which envs are slow."""
    snapshots: dict[str, dict[str, str | None]] = {}
    slow: set[str] = set()
    seen: set[str] = set()
    for run in plan:
        key = options_key(run.env_id, run.options)
        if key in seen:
            continue
        seen.add(key)
        try:
            env = open_env(run.env_id, run.options, run.env_url)
            try:
                env.reset(seed=seed)
                started = time.perf_counter()  # the second reset is the warm one
                env.reset(seed=seed)
                if time.perf_counter() - started > SLOW_RESET_S:
                    slow.add(run.env_id)
                snapshot = env.state.data_snapshot
            finally:
                env.close()
        except StackgymError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"preflight: env {run.env_id!r} with options {run.options} failed: "
                f"{type(exc).__name__}: {exc}",
                f"try `stackgym check-env {run.env_id}` with these options",
            ) from exc
        snapshots.setdefault(run.condition or "-", {})[run.task or "-"] = snapshot
    return snapshots, slow


@contextlib.contextmanager
def _session_log(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("stackgym.harness")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()


def _recover_from_traces(
    folder: ExperimentFolder, plan: dict[str, PlannedRun], final: dict[str, RunRecord]
) -> list[RunRecord]:
    """Record runs whose episode reached the traces but whose record did not.

    That is a run killed between its two writes; or a retried infra-error run
    killed the same way (its new episode is not the one its record names).
    """
    traces = folder.traces()
    if not traces.exists():
        return []
    recovered: list[RunRecord] = []
    for episode in traces.episodes():
        planned = plan.get(episode.run_id or "")
        if planned is None:
            continue
        known = final.get(planned.run_id)
        retried = known is not None and known.status == "infra_error"
        if known is not None and not (retried and known.episode_id != episode.episode_id):
            continue
        record = run_record_from_episode(
            episode,
            run_id=planned.run_id,
            experiment=planned.experiment,
            model=planned.model,
            factor=planned.factor,
            condition=planned.condition,
            task=planned.task,
            repeat=planned.repeat,
            settings=planned.settings,
        )
        final[planned.run_id] = record
        recovered.append(record)
    return recovered


def _print_header(console: Console, spec: ExperimentSpec, report_line: str, source: str) -> None:
    console.print(f"[bold]experiment {spec.name}[/] ({source})")
    dumped = yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, width=100)
    console.print(dumped.rstrip(), markup=False, highlight=False)
    console.print(report_line)


async def arun_experiment(
    spec: ExperimentSpec,
    out: str | Path,
    *,
    source: str = "<spec>",
    resume_only: bool = False,
    retry_errors: bool = False,
    concurrency: int | None = None,
    env_url: str | None = None,
    console: Console | None = None,
) -> ExperimentOutcome:
    """Run (or resume) ``spec`` into ``out``; see the module docstring for the steps."""
    out = Path(out)
    if concurrency is not None:
        spec = spec.model_copy(update={"concurrency": concurrency})
    if env_url is not None:
        spec = spec.model_copy(update={"env_url": env_url})
    check_names(spec)
    refuse_broken_parity(spec)
    parity = check_parity(spec)
    plan = plan_runs(spec)
    preflight_agents(spec)
    if console is not None:
        configurations = len({options_key(p.env_id, p.options) for p in plan})
        console.print(f"preparing {configurations} env configuration(s) of {spec.env!r}…")
    snapshots, slow = preflight_envs(plan, spec.seed)
    differences = snapshot_differences(snapshots)
    if differences and spec.factor not in ("data_seed", "scale", "drift", "anchor"):
        raise ConfigError(
            f"experiment {spec.name!r} breaks parity: conditions serve different data: "
            + "; ".join(d.describe() for d in differences),
            "every condition must read the same data snapshot; check the env options",
        )
    values = {s for per_task in snapshots.values() for s in per_task.values()}
    folder = ExperimentFolder(out)
    digest = spec_hash(spec)
    if folder.exists():
        existing = folder.read()
        if existing.name != spec.name:
            raise ConfigError(
                f"{out} holds experiment {existing.name!r}, not {spec.name!r}",
                "choose another --out",
            )
        if existing.spec_hash != digest:
            raise ConfigError(
                f"{out} holds experiment {spec.name!r} run with other settings: "
                + "; ".join(_spec_changes(existing.spec, spec)),
                "choose another --out for the changed experiment, or restore the spec",
            )
        if spec.runs < existing.spec.runs:
            raise ConfigError(
                f"{out} holds {existing.spec.runs} runs per model per condition; "
                f"the spec asks for {spec.runs}",
                "runs may grow on resume (more repeats), never shrink; use another --out",
            )
        record = existing.model_copy(
            update={
                "spec": spec,
                "source": source,
                "parity": parity,
                "conditions": {n: r.flat(spec.factor) for n, r in resolve_all(spec).items()},
                "planned_runs": len(plan),
            }
        )
    else:
        if resume_only:
            raise ConfigError(
                f"--resume: {out} holds no experiment to resume ({EXPERIMENT_FILE} is missing)",
                "drop --resume to start it, or check the --out folder",
            )
        if (out / "results.jsonl").exists():
            raise ConfigError(
                f"{out} already holds results.jsonl but no {EXPERIMENT_FILE}",
                "it is not an experiment folder (perhaps from `stackgym run --out`); "
                "choose another --out",
            )
        record = ExperimentRecord(
            name=spec.name,
            source=source,
            spec=spec,
            spec_hash=digest,
            parity=parity,
            conditions={n: r.flat(spec.factor) for n, r in resolve_all(spec).items()},
            planned_runs=len(plan),
        )
    record.data_snapshots = snapshots
    record.data_snapshot = next(iter(values)) if len(values) == 1 else None

    by_id = {p.run_id: p for p in plan}
    results = folder.results()
    final: dict[str, RunRecord] = {}
    for previous in results.records():
        final[previous.run_id] = previous
    recovered = _recover_from_traces(folder, by_id, final)
    results.write_many(recovered)
    retried = [
        p
        for p in plan
        if retry_errors and p.run_id in final and final[p.run_id].status == "infra_error"
    ]
    order = {p.run_id: index for index, p in enumerate(plan)}
    todo = sorted(
        [p for p in plan if p.run_id not in final] + retried, key=lambda p: order[p.run_id]
    )
    session = Session(
        ran=0,
        skipped=len(plan) - len(todo),
        recovered=len(recovered),
        retried=len(retried),
        concurrency=spec.concurrency,
    )
    record.sessions.append(session)
    record.status = "running"
    record.finished_at = None
    folder.write(record)

    interrupted = False
    failed = True
    runner = Runner(
        todo,
        results=results,
        traces=folder.traces(),
        concurrency=spec.concurrency,
        run_timeout_s=spec.timeouts.run_s,
        env_thread=EnvThreadPolicy(spec.env_thread, slow),
    )
    runner.tally.skipped = session.skipped
    with _session_log(folder.log_path):
        log.info("experiment %s (%s) into %s", spec.name, source, out)
        log.info("spec:\n%s", yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
        log.info("%s", parity.describe())
        threaded = spec.env_thread == "always" or (spec.env_thread == "auto" and spec.env in slow)
        log.info(
            "env work of %s runs %s (env_thread: %s)",
            spec.env,
            "on worker threads" if threaded else "on the event loop",
            spec.env_thread,
        )
        log.info(
            "%d planned runs: %d to play, %d already recorded, "
            "%d recovered from traces, %d retried",
            len(plan),
            len(todo),
            session.skipped,
            len(recovered),
            len(retried),
        )
        if console is not None:
            _print_header(console, spec, parity.describe(), source)
            console.print(
                f"{len(plan)} runs planned: {len(todo)} to play"
                + (f", {session.skipped} already done (resuming)" if session.skipped else "")
                + (f", {len(recovered)} recovered from traces" if recovered else "")
                + (f", {len(retried)} infra errors retried" if retried else "")
                + f"; concurrency {spec.concurrency}; folder {out}"
            )
        try:
            interrupted = await _play(runner, console, spec.name, len(plan), session.skipped)
            failed = False
        finally:
            for new in runner.records:
                final[new.run_id] = new
            session.ran = len(runner.records)
            session.finished_at = record.finished_at = datetime.now(UTC)
            complete = all(p.run_id in final for p in plan)
            record.status = (
                "failed" if failed else "interrupted" if interrupted or not complete else "finished"
            )
            session.status = record.status
            record.counts = count([final[p.run_id] for p in plan if p.run_id in final], len(plan))
            folder.write(record)
            results.close()
            log.info(
                "session %s: %d runs played; %s",
                record.status,
                session.ran,
                stats_line(runner.tally),
            )
    return ExperimentOutcome(
        name=spec.name,
        folder=out,
        record=record,
        tally=runner.tally,
        records=[final[p.run_id] for p in plan if p.run_id in final],
        interrupted=interrupted,
    )


async def _play(runner: Runner, console: Console | None, name: str, total: int, done: int) -> bool:
    """Run with the progress bar and Ctrl-C handling; True when interrupted."""
    loop = asyncio.get_running_loop()
    task = asyncio.create_task(runner.run())
    abandoned = False

    def abandon() -> None:
        nonlocal abandoned
        abandoned = True
        task.cancel()

    def stop_gently() -> None:
        if runner.stopping:
            abandon()
            return
        runner.stop()
        if console is not None:
            console.print(
                "[yellow]stopping: no new runs start; runs in flight finish "
                "(Ctrl-C again to abandon them)[/]"
            )

    installed = []
    for signum, handler in ((signal.SIGINT, stop_gently), (signal.SIGTERM, abandon)):
        try:
            loop.add_signal_handler(signum, handler)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread: no signal handling, as in any library call
    view = ProgressView(console or Console(quiet=True), name, total, done)
    runner.on_record = view.update
    try:
        with view:
            await task
    except asyncio.CancelledError:
        if not abandoned:
            raise
        return True
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return runner.stopping and runner.remaining > 0


async def arun_spec(
    loaded: LoadedSpec,
    out: str | Path,
    *,
    resume_only: bool = False,
    retry_errors: bool = False,
    concurrency: int | None = None,
    env_url: str | None = None,
    console: Console | None = None,
) -> list[ExperimentOutcome]:
    """Run a loaded spec: one experiment into ``out``, or a suite into ``out/<name>/``."""
    out = Path(out)
    if loaded.suite is None:
        outcome = await arun_experiment(
            loaded.experiments[0],
            out,
            source=loaded.source,
            resume_only=resume_only,
            retry_errors=retry_errors,
            concurrency=concurrency,
            env_url=env_url,
            console=console,
        )
        if outcome.interrupted:
            raise RunInterrupted(
                _stopped_message([outcome]), "run the same command again to resume"
            )
        return [outcome]
    suite = loaded.suite
    for experiment in suite.experiments:  # every name checked before the first run starts
        check_names(experiment)
        refuse_broken_parity(experiment)
    suite_path = out / SUITE_FILE
    if resume_only and not suite_path.is_file():
        raise ConfigError(f"--resume: {out} holds no suite to resume ({SUITE_FILE} is missing)")
    suite_record = SuiteRecord(
        name=suite.name,
        source=loaded.source,
        description=suite.description,
        experiments={e.name: e.name for e in suite.experiments},
    )
    write_json_atomic(suite_path, suite_record)
    outcomes: list[ExperimentOutcome] = []
    try:
        for experiment in suite.experiments:
            outcome = await arun_experiment(
                experiment,
                out / experiment.name,
                source=f"{loaded.source}#{experiment.name}",
                resume_only=resume_only and (out / experiment.name / EXPERIMENT_FILE).is_file(),
                retry_errors=retry_errors,
                concurrency=concurrency,
                env_url=env_url,
                console=console,
            )
            outcomes.append(outcome)
            if outcome.interrupted:
                raise RunInterrupted(
                    _stopped_message(outcomes), "run the same command again to resume"
                )
        suite_record.status = "finished"
    except RunInterrupted:
        suite_record.status = "interrupted"
        raise
    except BaseException:
        suite_record.status = "failed"
        raise
    finally:
        suite_record.finished_at = datetime.now(UTC)
        write_json_atomic(suite_path, suite_record)
    return outcomes


def _stopped_message(outcomes: list[ExperimentOutcome]) -> str:
    last = outcomes[-1]
    counts = last.record.counts
    return (
        f"stopped: experiment {last.name!r} has {counts.recorded} of {counts.planned} "
        f"runs recorded in {last.folder}"
    )


def run_spec(loaded: LoadedSpec, out: str | Path, **kwargs: Any) -> list[ExperimentOutcome]:
    """Synchronous :func:`arun_spec`."""
    return loop.run(arun_spec(loaded, out, **kwargs))


def run_experiment(spec: ExperimentSpec, out: str | Path, **kwargs: Any) -> ExperimentOutcome:
    """Synchronous :func:`arun_experiment`."""
    return loop.run(arun_experiment(spec, out, **kwargs))
