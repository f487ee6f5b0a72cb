"""The data schema: the columns a landed file must have (type, nullability, ranges, categories), its formats and
encoding. Declared (`MLOPS_SCHEMA`) or learned from the first accepted file (`shared.domain.validation`)."""

from __future__ import annotations

import codecs
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SUPPORTED_FORMATS = (".csv", ".parquet")
# Read for label files only (a schema built in code allows it): the training job reads the formats above.
JSON_LINES = ".jsonl"
TYPES = ("number", "integer", "text", "category")
NUMERIC_TYPES = ("number", "integer")
MAX_LEARNED_CATEGORIES = 20
MIN_ROWS_PER_LEARNED_CATEGORY = 5
_COLUMN_KEYS = frozenset({"type", "nullable", "min", "max", "categories", "observed_min", "observed_max"})
_SCHEMA_KEYS = frozenset({"columns", "source", "formats", "encoding", "allow_extra_columns"})


class SchemaError(ValueError):
    """A declared or stored schema is malformed."""


@dataclass(frozen=True)
class ColumnSpec:
    """`min`, `max` and `categories` are enforced; `observed_*` only record what the learning file held."""

    type: str
    nullable: bool = True
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    observed_min: float | None = None
    observed_max: float | None = None

    @property
    def kind(self) -> str:
        """The coarse kind the first schemas used: "number" or "text"."""
        return "number" if self.type in NUMERIC_TYPES else "text"

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"type": self.type, "nullable": self.nullable}
        for key in ("min", "max", "observed_min", "observed_max"):
            if getattr(self, key) is not None:
                result[key] = getattr(self, key)
        if self.categories is not None:
            result["categories"] = list(self.categories)
        return result

    @classmethod
    def from_dict(cls, column: str, raw: Any) -> ColumnSpec:
        """A type name alone (`"number"`), or an object with `type` and optional constraints."""
        if isinstance(raw, str):
            raw = {"type": raw}
        if not isinstance(raw, Mapping):
            raise SchemaError(f"column {column}: expected a type name or an object, not {raw!r}")
        unknown = sorted(set(raw) - _COLUMN_KEYS)
        if unknown:
            raise SchemaError(f"column {column}: unknown keys {unknown}; allowed: {sorted(_COLUMN_KEYS)}")
        kind = raw.get("type")
        if kind not in TYPES:
            raise SchemaError(f"column {column}: type must be one of {', '.join(TYPES)}, not {kind!r}")
        nullable = raw.get("nullable", True)
        if not isinstance(nullable, bool):
            raise SchemaError(f"column {column}: nullable must be true or false, not {nullable!r}")
        bounds = {key: _optional_number(column, key, raw.get(key)) for key in ("min", "max")}
        observed = {
            key: _optional_number(column, key, raw.get(key)) for key in ("observed_min", "observed_max")
        }
        if kind not in NUMERIC_TYPES and any(v is not None for v in bounds.values()):
            raise SchemaError(f"column {column}: min/max apply to number and integer columns only")
        if bounds["min"] is not None and bounds["max"] is not None and bounds["min"] > bounds["max"]:
            raise SchemaError(f"column {column}: min {bounds['min']} is greater than max {bounds['max']}")
        categories = raw.get("categories")
        if kind == "category":
            if not isinstance(categories, list | tuple) or not categories:
                raise SchemaError(f"column {column}: a category column needs a non-empty list of categories")
            categories = tuple(sorted({category_text(value) for value in categories}))
        elif categories is not None:
            raise SchemaError(f"column {column}: categories apply to category columns only")
        return cls(kind, nullable, bounds["min"], bounds["max"], categories, **observed)


@dataclass(frozen=True)
class Schema:
    columns: dict[str, ColumnSpec]
    source: str = "declared"
    formats: tuple[str, ...] = SUPPORTED_FORMATS
    encoding: str = "utf-8"
    allow_extra_columns: bool = False

    def kinds(self) -> dict[str, str]:
        return {name: spec.kind for name, spec in self.columns.items()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "formats": [f.lstrip(".") for f in self.formats],
            "encoding": self.encoding,
            "allow_extra_columns": self.allow_extra_columns,
            "columns": {name: spec.as_dict() for name, spec in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Schema:
        """The full form (`{"columns": {...}, "formats": [...], ...}`), or the first schemas' plain
        `{column: "number" | "text"}` mapping, which constrains types only."""
        if not isinstance(raw, Mapping):
            raise SchemaError("a schema must be a JSON object")
        if not isinstance(raw.get("columns"), Mapping):
            legacy = {str(name): ColumnSpec.from_dict(str(name), kind) for name, kind in raw.items()}
            return cls(legacy, source="learned")
        unknown = sorted(set(raw) - _SCHEMA_KEYS)
        if unknown:
            raise SchemaError(f"unknown keys {unknown}; allowed: {sorted(_SCHEMA_KEYS)}")
        columns = {str(name): ColumnSpec.from_dict(str(name), spec) for name, spec in raw["columns"].items()}
        if not columns:
            raise SchemaError("a schema needs at least one column")
        formats = tuple(f".{str(f).lower().lstrip('.')}" for f in raw.get("formats") or SUPPORTED_FORMATS)
        wrong = [f for f in formats if f not in SUPPORTED_FORMATS]
        if wrong:
            raise SchemaError(f"formats {wrong} are not among {', '.join(SUPPORTED_FORMATS)}")
        encoding = str(raw.get("encoding") or "utf-8")
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise SchemaError(f"encoding {encoding!r} is not known") from None
        extra = raw.get("allow_extra_columns", False)
        if not isinstance(extra, bool):
            raise SchemaError(f"allow_extra_columns must be true or false, not {extra!r}")
        return cls(columns, str(raw.get("source") or "declared"), formats, encoding, extra)


def as_schema(schema: Schema | Mapping[str, Any]) -> Schema:
    return schema if isinstance(schema, Schema) else Schema.from_dict(schema)


def category_text(value: Any) -> str:
    """Categories compare as text, with numbers written one way (1, 1.0 and "1" are all "1")."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float) or hasattr(value, "item"):
        number = value.item() if hasattr(value, "item") else value
        if isinstance(number, float) and math.isfinite(number) and number == int(number):
            return str(int(number))
        return str(number)
    return str(value)


def _optional_number(column: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SchemaError(f"column {column}: {key} must be a finite number, not {value!r}")
    return float(value)
