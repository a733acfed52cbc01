"""Run one Python answer of a stackgym sandbox and print its value.

Usage: python -I run_answer.py ROOT ANSWER PROVIDER EXPORT ENTRY DATABASE

ROOT is put first on ``sys.path`` (so ``app.models`` imports); PROVIDER is a
module path relative to ROOT whose EXPORT is called with DATABASE, and the
result is passed to the answer's ENTRY function. The last line of stdout is
MARK followed by JSON: {"value": ..., "type": ...} or {"error": {...}}.
"""

import importlib.util
import json
import math
import sys
import traceback

MARK = "__STACKGYM_RESULT__"


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(root, answer_path, provider_path, export, entry, database):
    sys.path.insert(0, root)
    answer = _load(answer_path, "stackgym_answer")
    compute = getattr(answer, entry, None)
    if not callable(compute):
        exported = ", ".join(n for n in vars(answer) if not n.startswith("_")) or "nothing"
        return {
            "error": {
                "name": "AnswerShapeError",
                "message": f"the answer must define a function named {entry} "
                f"(it defines {exported})",
                "stack": "",
            }
        }
    provider = _load(provider_path, "stackgym_provider")
    value = compute(getattr(provider, export)(database))
    if isinstance(value, bool):
        return {"value": None, "type": "boolean", "text": repr(value)}
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return {"value": None, "type": "number", "text": repr(value)}
        return {"value": value, "type": "number"}
    if value is None or isinstance(value, str):
        return {"value": value, "type": "string" if value is not None else "null"}
    try:  # Decimal, NumPy scalars
        return {"value": float(value), "type": "number"}
    except (TypeError, ValueError):
        return {"value": None, "type": type(value).__name__, "text": repr(value)[:200]}


if __name__ == "__main__":
    try:
        result = main(*sys.argv[1:7])
    except BaseException as exc:  # the answer's own failure is the result
        result = {
            "error": {
                "name": type(exc).__name__,
                "message": str(exc),
                "stack": "".join(traceback.format_exception(exc)),
            }
        }
    sys.stdout.write("\n" + MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
