"""``stackgym train``: learn from traces (Tier 1 scorer, DPO, SFT, GRPO), watch, status, audit.

Every command reads one training config (``--config FILE`` and ``--set
KEY=VALUE`` overrides, see ``stackgym train config``) and prints it in full
before it trains, so what ran is never a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from stackgym.cli.common import console, err_console, handles_errors, parse_options, print_json

train_app = typer.Typer(
    help="Train from traces: Tier 1 scorer, DPO, SFT, GRPO; watch, status, audit.",
    no_args_is_help=True,
)

_CONFIG = typer.Option(
    None,
    "--config",
    help="Training config YAML [default: $STACKGYM_TRAIN_CONFIG or ./stackgym-train.yaml].",
)
_SET = typer.Option([], "--set", "-s", help="Override one setting: KEY=VALUE, e.g. tier1.rank=32.")


def _config(path: Path | None, overrides: list[str], *, show: bool = True) -> Any:
    from stackgym.train.config import load_config

    config = load_config(path, overrides)
    if show:
        err_console.print("[bold]training config[/] (every value, defaults included):", markup=True)
        err_console.print(config.to_yaml().rstrip(), markup=False, highlight=False)
    return config


@train_app.command("config")
@handles_errors
def config_command(config: Path | None = _CONFIG, overrides: list[str] = _SET) -> None:
    """Print the effective training config as YAML (save it to start your own)."""
    console.print(_config(config, overrides, show=False).to_yaml().rstrip(), markup=False)


@train_app.command(
    "collect", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
@handles_errors
def collect_command(
    ctx: typer.Context,
    env_id: str = typer.Argument(..., help="Environment id, e.g. stack_doctor."),
    out: Path = typer.Option(..., "--out", help="Folder for traces/ (appended to)."),
    agent: str = typer.Option("heuristic", "--agent", "-a", help="Base agent to explore around."),
    episodes: int = typer.Option(500, "--episodes", "-n", min=1, help="Seeds to play."),
    repeats: int | None = typer.Option(
        None,
        "--repeats",
        "-r",
        min=1,
        help="Plays of each seed with ε-exploration (default 8; not with --branches).",
    ),
    epsilon: float = typer.Option(0.25, "--epsilon", min=0, max=1, help="Exploration rate."),
    branches: int = typer.Option(
        0,
        "--branches",
        "-b",
        min=0,
        help="Counterfactual rollouts: at every step of the base agent's episode, play up to "
        "this many other candidates (its best of each action type first) and let the base "
        "agent finish (0: ε-exploration).",
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="First seed."),
    config: Path | None = _CONFIG,
    overrides: list[str] = _SET,
    option: list[str] = typer.Option([], "--option", "-o", help="Env option KEY=VALUE."),
) -> None:
    """Record exploratory episodes for training (never on a held-out split).

    ε-exploration by default; `--branches K` records counterfactual rollouts
    around the base agent's own episodes instead (the values of K other actions
    at every step, with the base agent finishing each), e.g.
    `stackgym train collect stack_doctor --split train --branches 4 --out DIR`.

    Any other `--name value` is an env option, e.g.
    `stackgym train collect stack_doctor --mode blind_diagnosis --split train --out runs/sd-train`.
    """
    from stackgym.cli.run import env_options_from_args
    from stackgym.train.collect import collect

    options = {**env_options_from_args(list(ctx.args)), **parse_options(option)}
    settings = _config(config, overrides, show=False)
    if repeats is None:
        repeats = 1 if branches else 8
    summary = collect(
        env_id, options, base=agent, episodes=episodes, repeats=repeats, epsilon=epsilon,
        out=out, config=settings, seed=seed, branches=branches,
    )  # fmt: skip
    print_json(summary)


@train_app.command("tier1")
@handles_errors
def tier1_command(
    trace_dir: Path = typer.Argument(..., help="Folder with trace stores (searched recursively)."),
    config: Path | None = _CONFIG,
    overrides: list[str] = _SET,
    fresh: bool = typer.Option(
        False, "--fresh", help="Move an existing checkpoint aside and start a new one."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train the Tier 1 low-rank scorer on every experience under TRACE_DIR."""
    from stackgym.train.pipeline import run_tier1

    settings = _config(config, overrides)
    result = run_tier1(trace_dir, settings, fresh=fresh, log=err_console.print)
    _show(result, json_output)


@train_app.command("dpo")
@handles_errors
def dpo_command(
    trace_dir: Path = typer.Argument(..., help="Folder with trace stores."),
    config: Path | None = _CONFIG,
    overrides: list[str] = _SET,
    force: bool = typer.Option(False, "--force", help="Train even below tier2.min_pairs."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Tier 2: mine preference pairs and train with DPO once there are enough."""
    from stackgym.train.experience import discover
    from stackgym.train.lmtrain import run_dpo

    settings = _config(config, overrides)
    _show(run_dpo(discover(trace_dir, settings), settings, force=force), json_output)


@train_app.command("sft")
@handles_errors
def sft_command(
    trace_dir: Path = typer.Argument(..., help="Folder with trace stores."),
    config: Path | None = _CONFIG,
    overrides: list[str] = _SET,
    force: bool = typer.Option(False, "--force", help="Train even below tier3.min_traces."),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Tier 3: distil successful episodes (with reasoning) with SFT once there are enough."""
    from stackgym.train.experience import discover
    from stackgym.train.lmtrain import run_sft

    settings = _config(config, overrides)
    _show(run_sft(discover(trace_dir, settings), settings, force=force), json_output)


@train_app.command("grpo")
@handles_errors
def grpo_command(
    config: Path | None = _CONFIG,
    overrides: list[str] = _SET,
    model: str | None = typer.Option(
        None, "--model", help="Start from this local model folder (e.g. runs/train/sft/model)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """GRPO with rewards from the environment (`grpo.env`, `grpo.options`), in-process."""
    from stackgym.train.grpo import run_grpo

    settings = _config(config, overrides)
    _show(run_grpo(settings, model_path=model), json_output)


@train_app.command("all")
@handles_errors
def all_command(
    trace_dir: Path = typer.Argument(..., help="Folder with trace stores."),
    config: Path | None = _CONFIG,
    overrides: list[str] = _SET,
    json_output: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """Tier 1, then DPO and SFT where their thresholds are met (one pass over the traces)."""
    from stackgym.train.pipeline import run_all

    settings = _config(config, overrides)
    results = run_all(trace_dir, settings, log=err_console.print)
    if json_output:
        print_json([r.model_dump(mode="json") for r in results])
        return
    for result in results:
        console.print(result.line(), markup=False)


@train_app.command(
    "lift", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
@handles_errors
def lift_command(
    ctx: typer.Context,
    env_id: str = typer.Argument(..., help="Environment id, e.g. stack_doctor."),
    base: str = typer.Option("heuristic", "--base", help="The base agent the scorer re-ranks."),
    episodes: int = typer.Option(1000, "--episodes", "-n", min=2, help="Seeds (paired)."),
    seed: int = typer.Option(0, "--seed", min=0, help="First seed."),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Tier 1 folder [default: <out>/tier1]."
    ),
    config: Path | None = _CONFIG,
    overrides: list[str] = _SET,
    option: list[str] = typer.Option([], "--option", "-o", help="Env option KEY=VALUE."),
    top: int = typer.Option(
        6, "--deviations", min=0, help="Deviation groups to list (where the scorer changed a move)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Paired comparison of `scorer:BASE` against BASE on the same seeds (95 % intervals).

    Also lists where the scorer first left BASE's path (step, action types) and
    what each such decision gained or lost.

    E.g. `stackgym train lift stack_doctor --mode blind_diagnosis --split eval -n 1000`.
    """
    from stackgym.cli.run import env_options_from_args
    from stackgym.train.agent import scorer_agent
    from stackgym.train.lift import compare

    options = {**env_options_from_args(list(ctx.args)), **parse_options(option)}
    settings = _config(config, overrides, show=False)
    candidate = scorer_agent(base, env_id, config=settings, checkpoint=checkpoint)
    result = compare(env_id, options, base=base, candidate=candidate, episodes=episodes, seed=seed)
    if json_output:
        print_json(result)
        return
    from stackgym.train.lift import describe

    console.print(describe(result, top=top), markup=False)


@train_app.command("watch")
@handles_errors
def watch_command(
    trace_dir: Path = typer.Argument(..., help="Folder with trace stores to follow."),
    config: Path | None = _CONFIG,
    overrides: list[str] = _SET,
    cycles: int | None = typer.Option(
        None, "--cycles", min=1, help="Stop after this many polls [default: run until Ctrl-C]."
    ),
) -> None:
    """Follow TRACE_DIR: train Tier 1 on new episodes, DPO/SFT when thresholds are reached."""
    from stackgym.train.watch import Watcher

    settings = _config(config, overrides)
    watcher = Watcher(trace_dir, settings, log=err_console.print)
    try:
        watcher.run(cycles=cycles)
    except KeyboardInterrupt:
        err_console.print("stopped")


@train_app.command("status")
@handles_errors
def status_command(
    config: Path | None = _CONFIG,
    overrides: list[str] = _SET,
    json_output: bool = typer.Option(False, "--json", help="Print the status as JSON."),
) -> None:
    """What the background trainer and each tier last did (from files under `out`)."""
    from stackgym.train.watch import status, status_text

    settings = _config(config, overrides, show=False)
    data = status(settings)
    if json_output:
        print_json(data)
        return
    console.print(status_text(data), markup=False)


@train_app.command("audit")
@handles_errors
def audit_command(
    trace_dir: Path = typer.Argument(
        Path("runs"), help="Folder with trace stores [default: runs]."
    ),
    config: Path | None = _CONFIG,
    overrides: list[str] = _SET,
    out: Path | None = typer.Option(None, "--out", help="Also write the report to this file."),
) -> None:
    """Write a training audit (seed 003's report) from the traces, checkpoints and config."""
    from stackgym.train.audit import audit

    settings = _config(config, overrides, show=False)
    report = audit(trace_dir, settings, config_source=str(config) if config else None)
    console.print(report, markup=False, highlight=False, soft_wrap=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report + "\n", "utf-8")
        err_console.print(f"written to {out}")


def _show(result: Any, json_output: bool) -> None:
    if json_output:
        print_json(result.model_dump(mode="json"))
    else:
        console.print(result.line(), markup=False)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
