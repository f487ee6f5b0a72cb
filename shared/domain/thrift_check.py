"""A structural check of Parquet's Thrift metadata (the footer, each page's header) before fastparquet parses it.

fastparquet's compiled Thrift reader trusts its input: on a corrupt footer it can loop and crash the process
(seen on random bytes between the `PAR1` magic numbers). This walk of the compact protocol, in Python, with every
length held to the bytes there are and a bound on nesting, refuses such input with `ValueError` first.
"""

from __future__ import annotations

_MAX_DEPTH = 32
_FIXED = {1: 0, 2: 0, 3: 1, 7: 8}  # bool true, bool false, byte, double: their sizes after the header
_VARINTS = {4, 5, 6}  # i16, i32, i64


def check_struct(data: bytes, start: int = 0) -> tuple[int, dict[int, int]]:
    """Walk one struct from `start`; returns where it ends and its top-level integer fields by id."""
    return _Walk(data).struct(start, 0)


class _Walk:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def _byte(self, at: int) -> int:
        if at >= len(self.data):
            raise ValueError("thrift: ends early")
        return self.data[at]

    def varint(self, at: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = self._byte(at)
            at += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return at, value
            shift += 7
            if shift > 63:
                raise ValueError("thrift: varint too long")

    def struct(self, at: int, depth: int) -> tuple[int, dict[int, int]]:
        if depth > _MAX_DEPTH:
            raise ValueError("thrift: nested too deep")
        integers: dict[int, int] = {}
        field = 0
        while True:
            header = self._byte(at)
            at += 1
            if header == 0:
                return at, integers
            kind, delta = header & 0x0F, header >> 4
            if delta:
                field += delta
            else:
                at, raw = self.varint(at)
                field = (raw >> 1) ^ -(raw & 1)
            if kind in _VARINTS:
                at, raw = self.varint(at)
                integers[field] = (raw >> 1) ^ -(raw & 1)
            else:
                at = self.value(at, kind, depth)

    def value(self, at: int, kind: int, depth: int) -> int:
        if kind in _FIXED:
            end = at + _FIXED[kind]
        elif kind in _VARINTS:
            end, _ = self.varint(at)
        elif kind == 8:
            at, length = self.varint(at)
            end = at + length
        elif kind in (9, 10):
            header = self._byte(at)
            at, count = (at + 1, header >> 4) if header >> 4 != 15 else self.varint(at + 1)
            if count > len(self.data) - at:  # every element takes a byte at least
                raise ValueError("thrift: list longer than the data")
            element = header & 0x0F
            for _ in range(count):
                at = at + 1 if element in (1, 2) else self.value(at, element, depth + 1)
            end = at
        elif kind == 11:
            at, count = self.varint(at)
            if count > len(self.data) - at:
                raise ValueError("thrift: map longer than the data")
            if count:
                types = self._byte(at)
                at += 1
                for _ in range(count):
                    at = self.value(at, types >> 4, depth + 1)
                    at = self.value(at, types & 0x0F, depth + 1)
            end = at
        elif kind == 12:
            end, _ = self.struct(at, depth + 1)
        else:
            raise ValueError(f"thrift: unknown type {kind}")
        if end > len(self.data):
            raise ValueError("thrift: ends early")
        return end
