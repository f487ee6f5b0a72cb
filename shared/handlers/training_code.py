"""Which code a run trains with, and so which run it is: the run's key is the dataset version, the training
code's content and its environment file's content. New code on the same data is a new run; the same code,
environment and data is the same run, whatever triggered it."""

from __future__ import annotations

import hashlib
from typing import Any

import shared.training.provenance as provenance
from shared.config import Settings


class CodeUnavailable(Exception):
    """The configured training code cannot be used now (missing folder, missing environment file, too large)."""


def code_identity(settings: Settings) -> dict[str, Any]:
    """The content hashes a run's key is made of (plain JSON): the built-in trainer's sources, or the team's
    project folder and environment file."""
    code = settings.training_code
    if code.built_in:
        return {
            "built_in": True,
            "sources_sha256": provenance.training_sources_sha256(),
            "environment_sha256": None,
        }
    folder = code.code
    assert folder is not None
    if not folder.is_dir():
        raise CodeUnavailable(f"MLOPS_TRAINING_CODE {folder} is not a folder here")
    environment = None
    if code.environment:
        file = folder / code.environment
        if not file.is_file():
            raise CodeUnavailable(f"MLOPS_TRAINING_ENVIRONMENT {code.environment} is not a file in {folder}")
        environment = provenance.file_sha256(file)
    try:
        sources = provenance.folder_sha256(folder)
    except (OSError, ValueError) as error:
        raise CodeUnavailable(f"the training code in {folder} cannot be read: {error}") from None
    return {
        "built_in": False,
        "folder": str(folder),
        "sources_sha256": sources,
        "environment": code.environment or None,
        "environment_sha256": environment,
    }


def run_id(dataset_version: str, identity: dict[str, Any], attempt: int = 1) -> str:
    """`train-<hash>`: one id per dataset version, code and environment; `-<n>` for a retry after a failure."""
    key = f"{dataset_version}|{identity['sources_sha256']}|{identity.get('environment_sha256') or ''}"
    base = f"train-{hashlib.sha256(key.encode()).hexdigest()[:20]}"
    return base if attempt == 1 else f"{base}-{attempt}"
