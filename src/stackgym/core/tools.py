"""Tools described as JSON schema, and parsing of untrusted actions.

An environment declares its actions as :class:`~stackgym.core.models.Action`
subclasses. :class:`ActionSet` turns them into OpenAI function-calling tool
specs and parses whatever an agent sends (a model instance, a dict, a JSON
string or an OpenAI-style tool call) into exactly one of them, or raises an
:class:`~stackgym.core.errors.ActionError` that says what is valid.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from stackgym.core.errors import ActionError
from stackgym.core.models import Action

#: Raw actions longer than this are refused before parsing (agents are untrusted).
MAX_RAW_ACTION_CHARS = 200_000

ActionLike = Action | Mapping[str, Any] | str


def _strip_titles(schema: Any) -> Any:
    """Drop pydantic's auto-generated ``title`` keys: noise in a prompt."""
    if isinstance(schema, dict):
        return {
            k: _strip_titles(v)
            for k, v in schema.items()
            if not (k == "title" and isinstance(v, str))
        }
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


def _clip(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tool_spec(action_type: type[Action]) -> dict[str, Any]:
    """The OpenAI function-calling spec of one action type."""
    schema = _strip_titles(action_type.model_json_schema())
    schema.get("properties", {}).pop("type", None)
    required = [r for r in schema.get("required", []) if r != "type"]
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": schema.get("properties", {}),
        "required": required,
        "additionalProperties": False,
    }
    if "$defs" in schema:
        parameters["$defs"] = schema["$defs"]
    description = " ".join((action_type.__doc__ or action_type.tool_name).split())
    return {
        "type": "function",
        "function": {
            "name": action_type.tool_name,
            "description": description,
            "parameters": parameters,
        },
    }


class ActionSet:
    """The actions (tools) an environment accepts, and how to parse them."""

    def __init__(self, action_types: Iterable[type[Action]]) -> None:
        types = list(action_types)
        if not types:
            raise ValueError("an ActionSet needs at least one action type")
        self._by_name: dict[str, type[Action]] = {}
        for action_type in types:
            name = action_type.tool_name
            if not name:
                raise TypeError(
                    f"{action_type.__name__} needs a `type: Literal['name'] = 'name'` field"
                )
            if name in self._by_name:
                raise TypeError(f"two action types share the tool name {name!r}")
            self._by_name[name] = action_type
        self._tools_json: str | None = None

    @property
    def names(self) -> list[str]:
        """Tool names, in declaration order."""
        return list(self._by_name)

    @property
    def types(self) -> list[type[Action]]:
        return list(self._by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def tools(self) -> list[dict[str, Any]]:
        """OpenAI function-calling specs, one per action type (a fresh copy each call)."""
        # Building JSON schemas costs about a millisecond per tool, and LLM agents
        # ask for the tools at every reset; the action types never change.
        if self._tools_json is None:
            self._tools_json = json.dumps([tool_spec(t) for t in self._by_name.values()])
        return json.loads(self._tools_json)

    def usage(self) -> str:
        """A one-line reminder of the valid actions, for error messages."""
        parts = []
        for name, action_type in self._by_name.items():
            fields = [f for f in action_type.model_fields if f != "type"]
            args = ", ".join(f'"{f}": ...' for f in fields)
            parts.append(f'{{"type": "{name}"{", " + args if args else ""}}}')
        return "valid actions: " + " | ".join(parts)

    def parse(self, raw: ActionLike) -> Action:
        """Parse an untrusted action or raise :class:`ActionError` saying why."""
        if isinstance(raw, Action):
            if type(raw) is self._by_name.get(raw.type):
                return raw
            raise ActionError(
                f"action type {raw.type!r} is not enabled in this environment",
                self.usage(),
            )
        data = self._as_mapping(raw)
        name = data.get("type")
        if not isinstance(name, str) or not name:
            raise ActionError("action has no 'type' field naming the tool to call", self.usage())
        action_type = self._by_name.get(name)
        if action_type is None:
            raise ActionError(f"unknown action type {_clip(name)}", self.usage())
        try:
            return action_type.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or name}: {err['msg']}"
                for err in exc.errors(include_url=False)[:5]
            )
            spec = tool_spec(action_type)["function"]["parameters"]
            expected = ", ".join(
                f"{k}{'' if k in spec['required'] else '?'}" for k in spec["properties"]
            )
            raise ActionError(
                f"invalid {name!r} action: {problems}",
                f"{name} takes: {expected or 'no arguments'}",
            ) from None

    def _as_mapping(self, raw: Any) -> dict[str, Any]:
        if isinstance(raw, (str, bytes)):
            if len(raw) > MAX_RAW_ACTION_CHARS:
                raise ActionError(
                    f"action is {len(raw):,} characters long; the limit is "
                    f"{MAX_RAW_ACTION_CHARS:,}",
                    self.usage(),
                )
            try:
                raw = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ActionError(f"action is not valid JSON ({exc})", self.usage()) from None
        if not isinstance(raw, Mapping):
            raise ActionError(
                f"action must be a JSON object, got {type(raw).__name__}", self.usage()
            )
        data = dict(raw)
        # OpenAI tool-call shape: {"name": ..., "arguments": {...} or "json"}.
        if "type" not in data and "name" in data and set(data) <= {"name", "arguments", "id"}:
            arguments = data.get("arguments") or {}
            if isinstance(arguments, str):
                try:
                    arguments = json.loads(arguments) if arguments.strip() else {}
                except ValueError as exc:
                    raise ActionError(
                        f"arguments of tool call {_clip(data['name'])} are not valid JSON ({exc})",
                        self.usage(),
                    ) from None
            if not isinstance(arguments, Mapping):
                raise ActionError("tool-call arguments must be a JSON object", self.usage())
            data = {**arguments, "type": data["name"]}
        return data


def _example_value(schema: dict[str, Any], defs: dict[str, Any], rng: Any, depth: int = 0) -> Any:
    if "$ref" in schema:
        return _example_value(defs[schema["$ref"].split("/")[-1]], defs, rng, depth)
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _example_value(rng.choice(options), defs, rng, depth)
    kind = schema.get("type")
    if kind == "string":
        return "x" * max(int(schema.get("minLength", 0)), 12)
    if kind == "integer":
        return int(schema.get("minimum", schema.get("exclusiveMinimum", -1) + 1))
    if kind == "number":
        return float(schema.get("minimum", 0.0))
    if kind == "boolean":
        return False
    if kind == "array":
        items = schema.get("items", {})
        count = max(int(schema.get("minItems", 0)), 1 if depth < 2 else 0)
        return [_example_value(items, defs, rng, depth + 1) for _ in range(count)]
    if kind == "object":
        props = schema.get("properties", {})
        required = schema.get("required", list(props))
        return {k: _example_value(props[k], defs, rng, depth + 1) for k in required}
    return None


def example_action(action_type: type[Action], rng: Any) -> Action:
    """A schema-valid instance of ``action_type`` built from its JSON schema.

    Enumerated fields take a value drawn with ``rng`` (a ``random.Random``);
    free-form fields take a placeholder. Envs override ``Env.example_actions``
    where placeholders would be meaningless.
    """
    schema = action_type.model_json_schema()
    defs = schema.get("$defs", {})
    props = {k: v for k, v in schema.get("properties", {}).items() if k != "type"}
    data = {k: _example_value(v, defs, rng) for k, v in props.items()}
    data["type"] = action_type.tool_name
    return action_type.model_validate(data)
