"""The original XML tag protocol, for models without native tool calling.

The model writes one tool call per reply as tags::

    <tool>write_file</tool>
    <path>models/answer.sql</path>
    <content>select 1</content>

:func:`tools_prompt` describes the env's tools in that form for the system
prompt; :func:`parse_action` turns a reply back into an action dict (values
converted by the parameter's JSON type). Anything it cannot read is left for
the environment to refuse, so the model sees what was wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_TOOL = re.compile(r"<tool>\s*([^<\s]+)\s*</tool>", re.IGNORECASE)


def tools_prompt(tools: Sequence[Mapping[str, Any]]) -> str:
    """A system-prompt section describing ``tools`` (OpenAI specs) in the tag protocol."""
    lines = [
        "Call exactly one tool per reply by writing tags, nothing inside them but the value:",
        "<tool>TOOL_NAME</tool>",
        "<PARAMETER_NAME>value</PARAMETER_NAME>",
        "",
        "Tools:",
    ]
    for tool in tools:
        function = tool.get("function", {})
        parameters = function.get("parameters", {})
        required = set(parameters.get("required") or [])
        lines.append(f"- {function.get('name')}: {function.get('description', '')}".rstrip())
        for name, schema in (parameters.get("properties") or {}).items():
            kind = schema.get("type", "string")
            if "enum" in schema:
                kind = " | ".join(str(v) for v in schema["enum"])
            note = "" if name in required else ", optional"
            about = f" - {schema['description']}" if schema.get("description") else ""
            lines.append(f"    <{name}> ({kind}{note}){about}")
    example = tools[0].get("function", {}) if tools else {}
    if example:
        params = "".join(
            f"\n<{name}>...</{name}>"
            for name in (example.get("parameters", {}).get("required") or [])
        )
        lines += ["", "Example:", f"<tool>{example.get('name')}</tool>{params}"]
    return "\n".join(lines)


def _convert(value: str, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    text = value.strip()
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
        if kind == "boolean" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind in ("array", "object"):
            return json.loads(text)
    except ValueError:
        return value  # let the env's validation say what is wrong
    # Strings keep inner whitespace (file contents) but not the tag's own line breaks.
    return value.strip("\n")


def parse_action(text: str, tools: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The first ``<tool>`` call in ``text`` as an action dict, or None if there is none."""
    match = _TOOL.search(text or "")
    if match is None:
        return None
    name = match.group(1)
    rest = text[match.end() :]
    following = _TOOL.search(rest)
    if following is not None:
        rest = rest[: following.start()]
    spec = next(
        (t.get("function", {}) for t in tools if t.get("function", {}).get("name") == name), {}
    )
    properties = spec.get("parameters", {}).get("properties") or {}
    action: dict[str, Any] = {"type": name}
    for param, schema in properties.items():
        found = re.search(rf"<{re.escape(param)}>(.*?)</{re.escape(param)}>", rest, re.DOTALL)
        if found is not None:
            action[param] = _convert(found.group(1), schema)
    return action
