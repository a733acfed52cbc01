"""The dataset's table schemas, loaded from ``tables.yaml`` and validated.

Sandboxes build their databases (SQLite DDL, Drizzle schema, dbt sources) from
this one description, so no table layout is written down twice.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal

import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, RootModel

ColumnType = Literal["string", "integer", "boolean", "timestamp"]

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "timestamp": pa.timestamp("us"),
}


class TableSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: Literal["app", "stripe"]
    rows: int
    columns: dict[str, ColumnType]

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(name, ARROW_TYPES[kind]) for name, kind in self.columns.items()])

    def rows_at(self, scale: float) -> int:
        """Row count at ``scale`` (at least one row)."""
        return max(1, round(self.rows * scale))


class _Tables(RootModel[dict[str, TableSchema]]):
    pass


@cache
def table_schemas() -> dict[str, TableSchema]:
    """Every table, in the order the dataset writes them."""
    text = resources.files("stackgym.data").joinpath("tables.yaml").read_text()
    return _Tables.model_validate(yaml.safe_load(text)).root


TABLE_NAMES: tuple[str, ...] = tuple(table_schemas())
