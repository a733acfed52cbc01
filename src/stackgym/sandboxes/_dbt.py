"""Run ``dbt run`` in each project folder given on the command line (one dbt import).

Used by :mod:`stackgym.sandboxes.warehouse` in a subprocess whose environment
turns telemetry and version checks off. Partial parsing stays on: each
recipe's project folder is reused across snapshots (see ``warehouse.py``). Each folder holds a
dbt project and its ``profiles.yml``.
"""

from __future__ import annotations

import sys


def main(projects: list[str]) -> int:
    from dbt.cli.main import dbtRunner

    for project in projects:
        result = dbtRunner().invoke(
            [
                "run",
                "--project-dir",
                project,
                "--profiles-dir",
                project,
                "--target-path",
                f"{project}/target",
                "--log-path",
                f"{project}/logs",
                "--threads",
                "4",
                "--no-version-check",
                "--no-send-anonymous-usage-stats",
                "--partial-parse",
                "--log-format",
                "text",
            ]
        )
        if not result.success:
            print(f"dbt run failed in {project}: {result.exception or 'see the log above'}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
