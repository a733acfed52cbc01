"""The billing provider's API (``check_api``): Stripe-like list endpoints over the clean objects.

Resources, fields and filters are data (``api.yaml``, validated by
:class:`ApiDefinition`); objects come from the sandbox's ``mock-api/stripe.db``
(built by :func:`stores.write_stripe_store` from the clean snapshot). The
store is read by this trusted code with parameterized SQL, read-only; agents
never send SQL here, only a resource name and filter values, each checked
against the definition. Anything wrong comes back as an :class:`ApiError`
naming what is valid, like an API's 400 answer.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackgym.core.errors import ConfigError
from stackgym.envs.troubleshoot.models import parse_time
from stackgym.sandboxes.workspace import ToolError

DEFINITION_FILE = Path(__file__).with_name("api.yaml")
RANGE_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
MAX_LIMIT = 100

_Strict = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(BaseModel):
    model_config = _Strict

    column: str
    kind: Literal["text", "integer", "timestamp", "boolean", "json"]


class FilterSpec(BaseModel):
    model_config = _Strict

    column: str
    kind: Literal["equal", "boolean", "range", "member"]
    all_value: str | None = None
    default_exclude: str | None = None
    link: str | None = None
    link_key: str | None = None


class ResourceSpec(BaseModel):
    model_config = _Strict

    object: str
    table: str
    truth_for: list[str]
    fields: dict[str, FieldSpec]
    filters: dict[str, FilterSpec]


class ApiDefinition(BaseModel):
    """``api.yaml``: the resources ``check_api`` serves."""

    model_config = _Strict

    resources: dict[str, ResourceSpec] = Field(min_length=1)

    def resource_for_table(self, table: str) -> str | None:
        """The resource that is the source of truth for dataset ``table``, if any."""
        for name, resource in self.resources.items():
            if table in resource.truth_for:
                return name
        return None


@cache
def api_definition() -> ApiDefinition:
    """The API definition, loaded and validated once."""
    try:
        return ApiDefinition.model_validate(yaml.safe_load(DEFINITION_FILE.read_text()))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{DEFINITION_FILE} is invalid: {exc}") from None


class ApiError(ToolError):
    """A request the API refuses (unknown resource or filter, bad value)."""


def _split_filters(filters: Mapping[str, Any]) -> list[tuple[str, str | None, Any]]:
    """``{"created[gte]": x, "created": {"lt": y}, "status": "paid"}`` -> (name, op, value)."""
    out: list[tuple[str, str | None, Any]] = []
    for key, value in filters.items():
        name, op = str(key), None
        if name.endswith("]") and "[" in name:
            name, _, rest = name.partition("[")
            op = rest[:-1]
        if isinstance(value, Mapping):
            if op is not None:
                raise ApiError(f"filter {key!r} is given both as {key}[...] and as an object")
            if not value:
                raise ApiError(f"filter {name!r} is an empty object", 'e.g. {"gte": "2025-10-01"}')
            out.extend((name, str(o), v) for o, v in value.items())
        else:
            out.append((name, op, value))
    return out


def _text(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ApiError(f"filter {name!r} takes a text value, not {type(value).__name__}")
    return str(value)


def _seconds(value: Any, name: str) -> int:
    try:
        moment = parse_time(value)
    except ValueError as exc:
        raise ApiError(f"filter {name!r}: {exc}") from None
    return int((moment - parse_time(0)).total_seconds())


class BillingApi:
    """List endpoints over one store file (see the module docstring)."""

    def __init__(self, store: Path, definition: ApiDefinition | None = None) -> None:
        self.definition = definition or api_definition()
        # a published build file that nothing writes again: immutable skips locking
        self._db = sqlite3.connect(
            f"{Path(store).resolve().as_uri()}?mode=ro&immutable=1",
            uri=True,
            check_same_thread=False,
        )

    def close(self) -> None:
        self._db.close()

    def resource(self, name: str) -> ResourceSpec:
        spec = self.definition.resources.get(str(name).strip().lower().removeprefix("/v1/"))
        if spec is None:
            known = ", ".join(self.definition.resources)
            raise ApiError(f"the API has no resource {name!r}", f"resources: {known}")
        return spec

    def _conditions(
        self, resource: str, spec: ResourceSpec, filters: Mapping[str, Any]
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        given = set()
        for name, op, value in _split_filters(filters):
            if name in ("limit", "starting_after"):
                raise ApiError(f"{name} is an argument of check_api of its own, not a filter")
            filt = spec.filters.get(name)
            if filt is None:
                known = ", ".join(spec.filters)
                raise ApiError(f"{resource} has no filter {name!r}", f"{resource} filters: {known}")
            given.add(name)
            if filt.kind == "range":
                if op is None:
                    where.append(f"{filt.column} = ?")
                elif op in RANGE_OPERATORS:
                    where.append(f"{filt.column} {RANGE_OPERATORS[op]} ?")
                else:
                    raise ApiError(
                        f"filter {name!r} has no operator {op!r}",
                        f"use {name}[gt], {name}[gte], {name}[lt] or {name}[lte]",
                    )
                params.append(_seconds(value, name))
                continue
            if op is not None:
                raise ApiError(f"filter {name!r} takes a plain value, not {name}[{op}]")
            if filt.kind == "boolean":
                flag = str(value).strip().lower()
                if flag not in ("true", "false", "1", "0"):
                    raise ApiError(f"filter {name!r} takes true or false, not {value!r}")
                where.append(f"{filt.column} = ?")
                params.append(1 if flag in ("true", "1") else 0)
            elif filt.kind == "member":
                where.append(
                    f"id IN (SELECT {filt.link_key} FROM {filt.link} WHERE {filt.column} = ?)"
                )
                params.append(_text(value, name))
            else:
                text = _text(value, name)
                if filt.all_value is not None and text == filt.all_value:
                    continue
                where.append(f"{filt.column} = ?")
                params.append(text)
        for name, filt in spec.filters.items():
            if filt.default_exclude is not None and name not in given:
                where.append(f"{filt.column} <> ?")
                params.append(filt.default_exclude)
        return where, params

    def list(
        self,
        resource: str,
        filters: Mapping[str, Any] | None = None,
        *,
        limit: int = 10,
        starting_after: str | None = None,
    ) -> dict[str, Any]:
        """One page of ``resource``, newest first: Stripe's list object plus ``total_count``."""
        name = str(resource).strip().lower().removeprefix("/v1/")
        spec = self.resource(name)
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        filters = dict(filters or {})
        where, params = self._conditions(name, spec, filters)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        (total,) = self._db.execute(f"SELECT count(*) FROM {spec.table}{clause}", params).fetchone()
        page_where, page_params = list(where), list(params)
        if starting_after is not None:
            anchor = self._db.execute(
                f"SELECT created_at, id FROM {spec.table} WHERE id = ?", [str(starting_after)]
            ).fetchone()
            if anchor is None:
                raise ApiError(
                    f"starting_after: no {spec.object} with id {starting_after!r}",
                    "pass the id of the last object of the previous page",
                )
            page_where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            page_params += [anchor[0], anchor[0], anchor[1]]
        page_clause = f" WHERE {' AND '.join(page_where)}" if page_where else ""
        columns = [f.column for f in spec.fields.values()]
        rows = self._db.execute(
            f"SELECT {', '.join(columns)} FROM {spec.table}{page_clause} "
            "ORDER BY created_at DESC, id DESC LIMIT ?",
            [*page_params, limit + 1],
        ).fetchall()
        query: dict[str, Any] = {}
        for key, value in filters.items():
            if isinstance(value, Mapping):
                query.update({f"{key}[{op}]": v for op, v in value.items()})
            else:
                query[key] = value
        query["limit"] = limit
        if starting_after is not None:
            query["starting_after"] = starting_after
        return {
            "object": "list",
            "url": f"/v1/{name}?{urlencode(query, safe='[]:')}",
            "has_more": len(rows) > limit,
            "total_count": int(total),
            "data": [self._item(spec, row) for row in rows[:limit]],
        }

    @staticmethod
    def _item(spec: ResourceSpec, row: tuple[Any, ...]) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for (name, field), value in zip(spec.fields.items(), row, strict=True):
            if value is not None:
                if field.kind == "boolean":
                    value = bool(value)
                elif field.kind == "json":
                    value = json.loads(value)
            target = item
            *parents, leaf = name.split(".")
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value
            if name == "id":
                item["object"] = spec.object
        return item


def render(response: Mapping[str, Any]) -> str:
    """The list object as JSON text, one object per line (what the agent reads)."""
    head = {k: v for k, v in response.items() if k != "data"}
    items = response.get("data", [])
    lines = [json.dumps(head)[:-1] + ', "data": [']
    lines += [
        f"  {json.dumps(item)}{',' if i < len(items) - 1 else ''}" for i, item in enumerate(items)
    ]
    lines.append("]}")
    return "\n".join(lines)
