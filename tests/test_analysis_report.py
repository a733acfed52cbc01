"""Reports from real experiment folders: suites, determinism, charts, and numbers recomputed by hand."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from harness_env import register_vault
from stackgym.analysis import write_report
from stackgym.core.registry import registry
from stackgym.harness.experiment import run_spec
from stackgym.harness.spec import parse_spec


@pytest.fixture(scope="module")
def vault_suite(tmp_path_factory):
    """A suite of two real experiments on the vault env, played by the harness."""
    register_vault()
    root = tmp_path_factory.mktemp("suite")
    suite = parse_spec(
        {
            "name": "vault-suite",
            "experiments": [
                {
                    "name": "rooms",
                    "env": "vault",
                    "factor": "room",
                    "conditions": ["north", "south"],
                    "tasks": ["open", "peek"],
                    "models": ["oracle", "solver", "wrong"],
                    "runs": 3,
                    "max_turns": 5,
                    # Seed 1 crashes a step: those runs are infrastructure errors.
                    "options": {"crash_seed": 1},
                    "concurrency": 4,
                },
                {
                    "name": "budget",
                    "env": "vault",
                    "factor": "max_turns",
                    "conditions": [{"name": "two", "value": 2}, {"name": "eight", "value": 8}],
                    "models": ["solver", "wrong"],
                    "runs": 2,
                    "concurrency": 4,
                },
            ],
        },
        "test",
    )
    run_spec(suite, root / "suite")
    yield root / "suite"
    registry.remove("vault")


@pytest.fixture(scope="module")
def suite_report(vault_suite, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    summary = write_report([vault_suite], out)
    return summary, out


def final_lines(folder: Path) -> list[dict]:
    """The last line of each run id, read with the json module alone."""
    final: dict[str, dict] = {}
    for line in (folder / "results.jsonl").read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            final[record["run_id"]] = record
    return list(final.values())


def test_a_suite_folder_gives_one_section_per_experiment(suite_report):
    summary, out = suite_report
    assert [s.name for s in summary.sections] == ["rooms", "budget"]
    text = (out / "report.md").read_text()
    assert "## rooms" in text and "## budget" in text
    rooms = summary.sections[0]
    assert rooms.factor == "room" and list(rooms.conditions) == ["north", "south"]
    assert rooms.experiments[0].planned == 2 * 2 * 3 * 3 and rooms.experiments[0].missing == 0


def test_the_reports_numbers_match_a_recount_of_results_jsonl(suite_report, vault_suite):
    _, out = suite_report
    raw = json.loads((out / "summary.json").read_text())
    for section in raw["sections"]:
        runs = final_lines(vault_suite / section["name"])
        groups: dict[tuple, dict] = defaultdict(lambda: defaultdict(float))
        for run in runs:
            for key in (
                ("condition", run["condition"]),
                ("model", run["model"]),
                ("task", run["task"] or "-"),
            ):
                group = groups[key]
                group["runs"] += 1
                if run["status"] == "infra_error":
                    group["infra"] += 1
                    continue
                group["completed"] += 1
                group["judged"] += run["passed"] is not None
                group["passed"] += run["passed"] is True
                group["tokens"] += run["usage"]["prompt_tokens"] + run["usage"]["completion_tokens"]
                group["turns"] += run["turns"]
                if run["passed"]:
                    group["pass_turns"] += run["turns"]
        for block, dimension in (
            ("by_condition", "condition"),
            ("by_model", "model"),
            ("by_task", "task"),
        ):
            for row in section[block]:
                expected = groups[(dimension, row[dimension])]
                assert row["runs"] == expected["runs"]
                assert row["infra_errors"] == expected["infra"]
                assert row["completed"] == expected["completed"]
                assert row["pass_rate"]["passed"] == expected["passed"]
                assert row["pass_rate"]["judged"] == expected["judged"]
                assert row["turns_per_run"] == pytest.approx(
                    expected["turns"] / expected["completed"]
                )
                if expected["passed"]:
                    assert row["turns_to_pass"] == pytest.approx(
                        expected["pass_turns"] / expected["passed"]
                    )
        total = len(runs)
        assert section["overall"]["runs"] == total
    rooms = raw["sections"][0]
    infra = [r for r in final_lines(vault_suite / "rooms") if r["status"] == "infra_error"]
    assert len(infra) == 2 * 2 * 3  # seed 1 = repeat 1, in every condition, task and model
    assert rooms["overall"]["infra_errors"] == len(infra)
    assert rooms["taxonomy"]["total"]["counts"]["infra_error"] == len(infra)


def test_infra_errors_are_left_out_of_the_denominators(suite_report):
    summary, _ = suite_report
    rooms = summary.sections[0]
    oracle = next(r for r in rooms.by_model if r.model == "oracle")
    # oracle passes every run it plays; its crashed runs must not pull the rate down.
    assert oracle.infra_errors == 4 and oracle.pass_rate.rate == 1.0
    assert oracle.pass_rate.judged == oracle.runs - oracle.infra_errors


def test_every_chart_is_a_sane_png(suite_report):
    summary, out = suite_report
    charts = [path for section in summary.sections for path in section.charts.values()]
    assert len(charts) == 8
    for relative in charts:
        path = out / relative
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = image.imread(path)
        height, width = pixels.shape[:2]
        assert 300 <= width <= 4000 and 200 <= height <= 3000, (relative, width, height)
        assert float(np.std(pixels[..., :3])) > 0.05, f"{relative} looks blank"
    text = (out / "report.md").read_text()
    for relative in charts:
        assert f"]({relative})" in text


def test_reports_are_byte_identical_for_the_same_input(vault_suite, tmp_path):
    write_report([vault_suite], tmp_path / "a")
    write_report([vault_suite], tmp_path / "b")
    files_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    files_b = sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    assert files_a == files_b and len(files_a) == 2 + 8
    for relative in files_a:
        assert (tmp_path / "a" / relative).read_bytes() == (
            tmp_path / "b" / relative
        ).read_bytes(), relative


def test_a_partial_experiment_reports_what_it_has_and_names_what_is_missing(vault_suite, tmp_path):
    folder = tmp_path / "rooms"
    shutil.copytree(vault_suite / "rooms", folder)
    lines = (folder / "results.jsonl").read_text().splitlines(keepends=True)
    kept = [line for line in lines if '"model":"wrong"' not in line or '"room":"south"' not in line]
    dropped = len(lines) - len(kept)
    (folder / "results.jsonl").write_text("".join(kept))
    summary = write_report([folder], tmp_path / "report", charts=False)
    (section,) = summary.sections
    (info,) = section.experiments
    assert dropped == 6 and info.missing == 6 and info.recorded == 30
    assert [(m.condition, m.model, m.missing) for m in info.missing_by_cell] == [
        ("south", "wrong", 3),
        ("south", "wrong", 3),
    ]
    assert all("/south/" in i and "/wrong/" in i for i in info.missing_ids)
    text = (tmp_path / "report" / "report.md").read_text()
    assert "30 of 36 planned runs recorded; 6 missing" in text
    assert "rooms/south/open/wrong/0" in text
    wrong = next(
        r for r in section.by_model_condition if r.model == "wrong" and r.condition == "south"
    )
    assert wrong.planned == 6 and wrong.runs == 0


def test_an_experiment_with_no_results_yet_still_reports(vault_suite, tmp_path):
    folder = tmp_path / "rooms"
    folder.mkdir()
    shutil.copy(vault_suite / "rooms" / "experiment.json", folder / "experiment.json")
    summary = write_report([folder], tmp_path / "report")
    (section,) = summary.sections
    assert section.overall.runs == 0 and section.experiments[0].missing == 36
    assert section.charts == {} and section.comparisons == []
    text = (tmp_path / "report" / "report.md").read_text()
    assert "has no run recorded yet" in text and "0 of 36 planned runs recorded" in text


def test_corrupt_result_lines_are_named_and_skipped(vault_suite, tmp_path):
    folder = tmp_path / "rooms"
    shutil.copytree(vault_suite / "rooms", folder)
    lines = (folder / "results.jsonl").read_text().splitlines(keepends=True)
    lines[4] = "{not json at all\n"
    lines.append('{"run_id": "torn')
    (folder / "results.jsonl").write_text("".join(lines))
    summary = write_report([folder], tmp_path / "report", charts=False)
    (info,) = summary.sections[0].experiments
    assert len(info.problems) == 2
    assert info.problems[0].startswith(f"{folder / 'results.jsonl'}:5: not a valid results record")
    assert ":37: torn final line" in info.problems[1]
    assert info.recorded == 35 and info.missing == 1
    text = (tmp_path / "report" / "report.md").read_text()
    assert "results.jsonl:5:" in text and "could not be read and were skipped" in text


def test_a_retried_run_counts_once_with_its_last_result(vault_suite, tmp_path):
    folder = tmp_path / "rooms"
    shutil.copytree(vault_suite / "rooms", folder)
    runs = final_lines(folder)
    crashed = next(r for r in runs if r["status"] == "infra_error" and r["model"] == "oracle")
    retried = {**crashed, "status": "completed", "passed": True, "error": None}
    with open(folder / "results.jsonl", "a") as handle:
        handle.write(json.dumps(retried) + "\n")
    summary = write_report([folder], tmp_path / "report", charts=False)
    section = summary.sections[0]
    assert section.experiments[0].superseded == 1 and section.overall.runs == 36
    assert section.overall.infra_errors == 11


def test_records_outside_the_plan_are_named_and_left_out(vault_suite, tmp_path):
    folder = tmp_path / "rooms"
    shutil.copytree(vault_suite / "rooms", folder)
    stray = {**final_lines(folder)[0], "run_id": "rooms/east/open/oracle/0", "condition": "east"}
    with open(folder / "results.jsonl", "a") as handle:
        handle.write(json.dumps(stray) + "\n")
    summary = write_report([folder], tmp_path / "report", charts=False)
    section = summary.sections[0]
    assert section.experiments[0].unplanned_ids == ["rooms/east/open/oracle/0"]
    assert "east" not in section.conditions and section.overall.runs == 36


def test_a_suite_experiment_that_never_started_is_named(vault_suite, tmp_path):
    suite = tmp_path / "suite"
    shutil.copytree(vault_suite, suite)
    record = json.loads((suite / "suite.json").read_text())
    record["experiments"]["ghost"] = "ghost"
    (suite / "suite.json").write_text(json.dumps(record))
    summary = write_report([suite], tmp_path / "report", charts=False)
    assert [s.name for s in summary.sections] == ["rooms", "budget"]
    (note,) = summary.notes
    assert "lists experiment 'ghost'" in note and "never started" in note
    assert "ghost" in (tmp_path / "report" / "report.md").read_text()


def test_an_empty_results_folder_reports_nothing_without_failing(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "results.jsonl").write_text("")
    summary = write_report([tmp_path / "runs"], tmp_path / "report")
    (section,) = summary.sections
    assert section.overall.runs == 0 and section.overall.pass_rate.rate is None
    assert "has no run recorded yet" in " ".join(section.notes)
