"""Analysis: statistically honest reports from experiment folders, without re-running anything.

>>> from stackgym.analysis import write_report
>>> summary = write_report(["runs/post1-validation"], "runs/post1-validation/report")
>>> summary.sections[0].by_condition[0].pass_rate.rate

``stackgym report RUN_DIR [RUN_DIR…] --out DIR`` does the same from the
command line. See ``docs/analysis.md``.
"""

from stackgym.analysis.gate import Comparators, evaluate_gate, load_comparators
from stackgym.analysis.report import build_report, read_summary, write_report
from stackgym.analysis.summary import ReportSummary, SectionSummary
from stackgym.analysis.taxonomy import Taxonomy, load_taxonomy

__all__ = [
    "Comparators",
    "ReportSummary",
    "SectionSummary",
    "Taxonomy",
    "build_report",
    "evaluate_gate",
    "load_comparators",
    "load_taxonomy",
    "read_summary",
    "write_report",
]
