"""The one error the entry point turns into exit code 2: the inputs, not the code, are wrong."""

from __future__ import annotations


class TrainingInputError(ValueError):
    """Bad manifest, data or config: retrying the same job cannot succeed."""
