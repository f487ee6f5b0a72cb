"""The README's configuration tables are the user's reference: generated from the declarations, never edited."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared.config import SETTINGS, Settings
from shared.config.__main__ import readme_block, with_reference
from shared.config.declare import markdown

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def test_readme_documents_every_setting() -> None:
    text = README.read_text()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in text]
    assert missing == []


def test_readme_reference_is_the_generated_one() -> None:
    # on failure: python -m shared.config --readme README.md
    assert readme_block(README.read_text()) == markdown(Settings)


def test_the_reference_has_a_table_per_group_and_a_row_per_setting() -> None:
    reference = markdown(Settings)
    headings = [line.removeprefix("### ") for line in reference.splitlines() if line.startswith("### ")]
    assert headings == list(dict.fromkeys(s.group for s in SETTINGS))
    assert len(headings) > 10
    rows = [line for line in reference.splitlines() if line.startswith("| `MLOPS_")]
    assert [row.split("`")[1] for row in rows] == [s.name for s in SETTINGS]


def test_the_command_prints_the_reference_and_rewrites_a_stale_readme(tmp_path: Path) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "shared.config", "--markdown"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert printed == markdown(Settings)
    stale = tmp_path / "README.md"
    stale.write_text(
        README.read_text().replace("`MLOPS_CANARY_PERCENT` | `10`", "`MLOPS_CANARY_PERCENT` | `5`")
    )
    assert readme_block(stale.read_text()) != markdown(Settings)
    subprocess.run(
        [sys.executable, "-m", "shared.config", "--readme", str(stale)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert stale.read_text() == README.read_text() == with_reference(README.read_text())


def test_readme_names_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text
