"""Validation a chunk at a time gives the verdicts and reasons of validation of the whole file: every test of
`test_validation` runs again here, with the file cut into 7-byte pieces and parsed 3 rows at a time."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from shared.domain.chunked_validation import validate_chunks
from shared.domain.validation import Limits, validate
from tests.unit.domain import test_validation as whole
from tests.unit.domain.test_validation import *  # noqa: F403  (collected again, validating in chunks)


def pieces(data: bytes, size: int = 7) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def chunked(name, data, schema, limits):
    return validate_chunks(name, pieces(data), schema, limits, size=len(data), rows_per_chunk=3)


@pytest.fixture(autouse=True)
def _in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whole, "validate", chunked)


LIMITS = Limits(max_bytes=1_000_000, min_rows=2, target="target")


def test_a_file_read_in_chunks_is_hashed_whole() -> None:
    data = whole.csv(rows=50)
    result = validate_chunks("batch.csv", pieces(data, 5), None, LIMITS, rows_per_chunk=4)
    assert result.ok and result.rows == 50
    assert (
        result.sha256 == hashlib.sha256(data).hexdigest() == validate("batch.csv", data, None, LIMITS).sha256
    )


def test_a_character_cut_between_two_chunks_is_read_whole() -> None:
    data = "age,city,target\n" + "".join(f"{i},Tromsø,{i}\n" for i in range(12))
    for size in (1, 2, 3, 17):
        result = validate_chunks("nordic.csv", pieces(data.encode(), size), None, LIMITS, rows_per_chunk=5)
        assert result.ok, (size, result.reasons)
        assert result.observed.columns["city"].categories == ("Tromsø",)


def test_a_bad_byte_is_located_in_the_whole_file() -> None:
    data = whole.csv(rows=40) + "99,Tromsø,1\n".encode("latin-1")
    result = validate_chunks("latin.csv", pieces(data, 16), None, LIMITS)
    [reason] = result.reasons
    position = data.index("ø".encode("latin-1"))
    assert reason.startswith("file is not UTF-8") and reason.endswith(f"at byte {position}")


def test_a_file_growing_past_the_limit_while_read_is_stopped_at_the_limit() -> None:
    data = whole.csv(rows=200)
    taken = []

    def counted() -> Iterator[bytes]:
        for piece in pieces(data, 100):
            taken.append(piece)
            yield piece

    limits = Limits(max_bytes=1_000, min_rows=1, target="target")
    result = validate_chunks("big.csv", counted(), None, limits)
    assert [p.code for p in result.problems] == ["file_too_large"]
    assert sum(map(len, taken)) <= 1_100  # stopped within a chunk of the limit


def test_an_error_of_the_stream_itself_is_raised_not_recorded() -> None:
    def failing() -> Iterator[bytes]:
        yield b"age,city,target\n1,Oslo,1\n"
        raise ConnectionError("the blob changed")

    with pytest.raises(ConnectionError):
        validate_chunks("gone.csv", failing(), None, LIMITS)


def test_a_column_that_is_numbers_in_one_chunk_and_text_in_another_is_text() -> None:
    data = b"code,target\n" + b"".join(b"%d,1\n" % i for i in range(6)) + b"x,1\ny,1\n"
    result = validate_chunks("mixed.csv", pieces(data), None, LIMITS, rows_per_chunk=3)
    assert result.schema["code"] == "text"
    assert result.observed.columns["code"].type == "text"
    declared = {"code": "number", "target": "number"}
    assert [
        p.code for p in validate_chunks("m.csv", pieces(data), declared, LIMITS, rows_per_chunk=3).problems
    ] == ["wrong_type"]
