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
from collections.abc import Iterable
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
        "code": {
            "built_in": True,
            "git_commit": commit,
            "git_dirty": dirty,
            "training_sources_sha256": sources,
        },
    }


def project_provenance(folder: Path, environment: str | None = None) -> dict[str, Any]:
    """`code_version` of a team's training project: the commit of the work tree holding it when there is one
    and the folder has no uncommitted change, else its content hash; plus the content hash itself (what a
    run's key is made of: an edit makes a new run, a commit elsewhere in the repository does not) and the
    environment file's hash."""
    folder = Path(folder)
    content = folder_sha256(folder)
    commit = git_commit(folder)
    dirty = _git_dirty(folder, ".") if commit else None
    env_file = folder / environment if environment else None
    return {
        "code_version": commit if commit and not dirty else f"sha256:{content}",
        "code": {
            "built_in": False,
            "git_commit": commit,
            "git_dirty": dirty,
            "sources_sha256": content,
            "environment": environment,
            "environment_sha256": file_sha256(env_file) if env_file is not None else None,
        },
    }


def from_identity(identity: Any) -> dict[str, Any] | None:
    """The provenance of a team's code as the run's key recorded it (its hashes), for an evaluation that runs
    apart from the code (an Azure ML step of its own); None for the built-in trainer or no identity."""
    if not isinstance(identity, dict) or identity.get("built_in") is not False:
        return None
    sources = str(identity.get("sources_sha256") or "")
    return {
        "code_version": f"sha256:{sources}",
        "code": {
            "built_in": False,
            "git_commit": None,
            "git_dirty": None,
            "sources_sha256": sources,
            "environment": identity.get("environment"),
            "environment_sha256": identity.get("environment_sha256"),
        },
    }


SKIPPED_PARTS = frozenset({".git", "__pycache__", ".venv", "venv", "node_modules", "mlruns", ".mypy_cache"})
MAX_PROJECT_FILES = 20_000
MAX_PROJECT_BYTES = 500 * 1024 * 1024


def folder_sha256(folder: Path) -> str:
    """One hash of a folder's files, their relative paths and contents (not times or permissions), leaving out
    version-control, cache and environment folders; raises ValueError past MAX_PROJECT_FILES or _BYTES."""
    folder = Path(folder)
    kept = []
    files = total = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if skipped(relative):
            continue
        files += 1
        total += path.stat().st_size
        if files > MAX_PROJECT_FILES or total > MAX_PROJECT_BYTES:
            raise ValueError(
                f"{folder} holds more than {MAX_PROJECT_FILES} files or {MAX_PROJECT_BYTES >> 20} MB: "
                "keep data out of the training project"
            )
        kept.append((relative, path))
    return files_sha256((relative, file_sha256(path)) for relative, path in kept)


def skipped(relative: str) -> bool:
    """Whether a file (its path relative to the folder, `/`-separated) is left out of a folder's hash."""
    return bool(SKIPPED_PARTS.intersection(relative.split("/"))) or relative.endswith(".pyc")


def files_sha256(files: Iterable[tuple[str, str]]) -> str:
    """One hash of files given as (relative `/`-separated path, sha256 of the content), in path order: the same
    for a local folder and for the same files in blob storage."""
    digest = hashlib.sha256()
    for relative, content in sorted(files):
        digest.update(relative.encode() + b"\0")
        digest.update(content.encode() + b"\n")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def _git_dirty(root: Path, relative: str | None = None) -> bool | None:
    if relative is None:
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
