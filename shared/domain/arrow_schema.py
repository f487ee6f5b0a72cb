"""The Arrow schema a Parquet writer stored beside the file's own (`ARROW:schema`), read without pyarrow.

pyarrow (and what writes through it: pandas, polars, Spark's Arrow path) stores the Arrow type of every column in
the file's key-value metadata, and pyarrow's reader restores those types: a dictionary column comes back as a
pandas categorical, a timestamp keeps its time zone and unit. The training job reads with pyarrow, so the app must
know what it will see. The value is a base64 Arrow IPC message holding a flatbuffer `Schema`
(format/Schema.fbs, format/Message.fbs in apache/arrow); only the top-level fields' name, type, time zone, unit
and dictionary flag are read here. Anything malformed raises `ValueError`.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

# Type union members of Schema.fbs, by their tag.
NULL, INT, FLOAT, BINARY, UTF8, BOOL, DECIMAL, DATE, TIME, TIMESTAMP = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10
LARGE_BINARY, LARGE_UTF8, BINARY_VIEW, UTF8_VIEW = 19, 20, 23, 24
TYPE_NAMES = {
    0: "none",
    1: "null",
    2: "int",
    3: "floating point",
    4: "binary",
    5: "string",
    6: "bool",
    7: "decimal",
    8: "date",
    9: "time",
    10: "timestamp",
    11: "interval",
    12: "list",
    13: "struct",
    14: "union",
    15: "fixed-size binary",
    16: "fixed-size list",
    17: "map",
    18: "duration",
    19: "large binary",
    20: "large string",
    21: "large list",
    22: "run-end encoded",
    23: "binary view",
    24: "string view",
    25: "list view",
    26: "large list view",
}
TIME_UNITS = ("s", "ms", "us", "ns")
_SCHEMA_HEADER = 1  # MessageHeader union: Schema


@dataclass(frozen=True)
class ArrowField:
    name: str
    type: int
    dictionary: bool = False
    unit: str | None = None  # a timestamp's
    timezone: str | None = None

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"type {self.type}")


def read_arrow_fields(encoded: str | bytes) -> list[ArrowField]:
    """The top-level fields of a stored `ARROW:schema` value."""
    message = base64.b64decode(encoded, validate=False)
    if message[:4] == b"\xff\xff\xff\xff":  # the continuation marker of IPC format 0.15 and later
        message = message[4:]
    (length,) = struct.unpack_from("<i", message, 0)
    buffer = _Buffer(message[4 : 4 + length])
    root = buffer.root()
    if buffer.scalar(root, 1, "B", 0) != _SCHEMA_HEADER:
        raise ValueError("ARROW:schema does not hold a schema")
    schema = buffer.table(root, 2)
    if schema is None:
        raise ValueError("ARROW:schema has no schema")
    return [_field(buffer, field) for field in buffer.tables(schema, 1)]


def _field(buffer: _Buffer, field: int) -> ArrowField:
    name = buffer.string(field, 0) or ""
    type_ = buffer.scalar(field, 2, "B", 0)
    dictionary = buffer.table(field, 4) is not None
    unit = timezone = None
    detail = buffer.table(field, 3)
    if type_ == TIMESTAMP and detail is not None:
        index = buffer.scalar(detail, 0, "h", 0)
        if not 0 <= index < len(TIME_UNITS):
            raise ValueError(f"ARROW:schema: unknown time unit {index}")
        unit, timezone = TIME_UNITS[index], buffer.string(detail, 1) or None
    return ArrowField(name, type_, dictionary, unit, timezone)


class _Buffer:
    """Just enough of the flatbuffer format: tables, their scalars, strings and vectors of tables, each read
    with its bounds checked (struct raises on a read past the end)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def _u32(self, at: int) -> int:
        if at < 0:
            raise ValueError("ARROW:schema: offset out of range")
        return struct.unpack_from("<I", self.data, at)[0]

    def root(self) -> int:
        return self._u32(0)

    def _slot(self, table: int, index: int) -> int | None:
        vtable = table - struct.unpack_from("<i", self.data, table)[0]
        (size,) = struct.unpack_from("<H", self.data, max(vtable, 0))
        if vtable < 0 or 4 + 2 * index >= size:
            return None
        (offset,) = struct.unpack_from("<H", self.data, vtable + 4 + 2 * index)
        return table + offset if offset else None

    def scalar(self, table: int, index: int, kind: str, default: int) -> int:
        at = self._slot(table, index)
        return default if at is None else struct.unpack_from("<" + kind, self.data, at)[0]

    def table(self, table: int, index: int) -> int | None:
        at = self._slot(table, index)
        return None if at is None else at + self._u32(at)

    def string(self, table: int, index: int) -> str | None:
        start = self.table(table, index)
        if start is None:
            return None
        length = self._u32(start)
        if start + 4 + length > len(self.data):
            raise ValueError("ARROW:schema: string out of range")
        return self.data[start + 4 : start + 4 + length].decode("utf-8")

    def tables(self, table: int, index: int) -> list[int]:
        start = self.table(table, index)
        if start is None:
            return []
        count = self._u32(start)
        if start + 4 + 4 * count > len(self.data):
            raise ValueError("ARROW:schema: vector out of range")
        return [start + 4 + 4 * i + self._u32(start + 4 + 4 * i) for i in range(count)]
