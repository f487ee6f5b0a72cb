"""Which code produced a model: the project's git commit when there is one, else a hash of the training code.

An Azure ML job runs on a snapshot of the code without `.git`, so the hash of `shared/training` is always
recorded too; it identifies the training code exactly even where the commit does not (uncommitted changes).
Git is only asked, never changed: `GIT_OPTIONAL_LOCKS=0` keeps `git status` from refreshing the index.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRAINING_DIR = Path(__file__).resolve().parent
_SOURCE_SUFFIXES = (".py", ".txt")
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")  # SHA-1 or SHA-256 repositories


def code_provenance(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """`code_version` plus the details behind it, for `evaluation.json`."""
    sources = training_sources_sha256()
    commit = git_commit(root)
    dirty = _git_dirty(root) if commit else None
    return {
        "code_version": commit or f"sha256:{sources}",
        "code": {"git_commit": commit, "git_dirty": dirty, "training_sources_sha256": sources},
    }


def training_sources_sha256(folder: Path = TRAINING_DIR) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _SOURCE_SUFFIXES):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n")
    return digest.hexdigest()


def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    output = _git(root, "rev-parse", "HEAD")
    return output if output and _COMMIT.match(output) else None


def _git_dirty(root: Path) -> bool | None:
    relative = TRAINING_DIR.relative_to(root).as_posix() if TRAINING_DIR.is_relative_to(root) else "."
    output = _git(root, "status", "--porcelain", "--", relative)
    return None if output is None else bool(output)


def _git(root: Path, *args: str) -> str | None:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, env=env, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None  # no git on the compute, or it hung: fall back to the source hash
    return done.stdout.strip() if done.returncode == 0 else None
