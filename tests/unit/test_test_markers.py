"""`pytest -m "not integration"` starts no Azurite: tests/conftest.py refuses it to any unmarked test.

Each case runs a small pytest session (in process) over tests/conftest.py's own hook and fixtures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

CASES = """
import pytest


def test_asks_for_the_fixture(azurite):
    pass


def test_starts_one_by_hand(tmp_path):
    from shared.host.azurite import Azurite, free_port

    server = Azurite(tmp_path, free_port(), in_memory=True)
    try:
        server.start()
    finally:
        server.stop()  # should the guard ever let it start


@pytest.mark.integration
def test_marked_and_asking_for_nothing():
    pass
"""


@pytest.fixture()
def outcome(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(test_cases=CASES)
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")


def test_an_unmarked_test_asking_for_azurite_errors_before_it_starts(outcome: pytest.RunResult) -> None:
    outcome.assert_outcomes(passed=1, failed=1, errors=1)
    outcome.stdout.fnmatch_lines(["*test_asks_for_the_fixture uses the azurite fixture but is not marked*"])


def test_an_unmarked_test_starting_azurite_otherwise_fails(outcome: pytest.RunResult) -> None:
    outcome.stdout.fnmatch_lines(["*test_starts_one_by_hand starts Azurite but is not marked integration*"])


def test_every_module_of_the_integration_and_e2e_folders_is_marked() -> None:
    """Statically too: with `-m "not integration"` an unmarked module would run, and nothing else would say so."""
    for folder, marks in (("integration", ["integration"]), ("e2e", ["integration", "e2e"])):
        modules = sorted((CONFTEST.parent / folder).glob("test_*.py"))
        assert modules
        for module in modules:
            declared = [
                line
                for line in module.read_text(encoding="utf-8").splitlines()
                if line.startswith("pytestmark")
            ]
            assert declared and all(f"pytest.mark.{m}" in declared[0] for m in marks), (
                f"{module.name}: {marks}"
            )
