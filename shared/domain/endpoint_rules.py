"""The rules of an Azure ML managed online endpoint that this code enforces, written once.

The Azure adapter checks them before it sends anything (Azure would refuse, but only after accepting the
request), the local router refuses what Azure refuses, and the test fakes call them too, so every backend
says no to the same things. Nothing here imports more than `re`: `shared.config` uses the name rule.
"""

from __future__ import annotations

import re

# Endpoint and deployment names: 3-32 characters, letters, digits and '-', starting with a letter and not
# ending with '-'. An endpoint's name is also part of its public DNS name; locally, names become file names.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]")
NAME_RULE = "3-32 characters, letters, digits and '-', starting with a letter and not ending with '-'"
# Mirroring costs the endpoint bandwidth, so Azure copies at most half the traffic, to one deployment.
MAX_MIRROR_PERCENT = 50


def name_problem(kind: str, name: str) -> str | None:
    """What is wrong with `name` as an endpoint or deployment (`kind`) name, or None if Azure accepts it."""
    if isinstance(name, str) and _NAME.fullmatch(name):
        return None
    return f"invalid {kind} name {name!r}: {NAME_RULE}"


def validate_name(kind: str, name: str) -> None:
    problem = name_problem(kind, name)
    if problem is not None:
        raise ValueError(problem)


def validate_traffic(traffic: dict[str, int], deployments: set[str]) -> dict[str, int]:
    """Azure's traffic rules, checked before anything is sent: every deployment gets its share (0 if unnamed)."""
    unknown = sorted(set(traffic) - deployments)
    if unknown:
        raise ValueError(f"traffic names unknown deployments: {unknown}")
    for name, pct in traffic.items():
        if not _is_percent(pct, 100):
            raise ValueError(f"traffic for {name!r} must be an int from 0 to 100, got {pct!r}")
    total = sum(traffic.values())
    if total not in (0, 100):
        raise ValueError(f"traffic must sum to 0 or 100, got {total}: {traffic}")
    return {name: traffic.get(name, 0) for name in sorted(deployments)}


def validate_mirror(mirror: dict[str, int], traffic: dict[str, int]) -> dict[str, int]:
    """Azure's mirror rules: one deployment at most, 0-50 %, known, and not one that takes live traffic.

    `traffic` is the live traffic of every deployment of the endpoint (its keys are the known deployments).
    Returns the setting to store: zero shares dropped, so `{}` or `{name: 0}` ends mirroring.
    """
    unknown = sorted(set(mirror) - set(traffic))
    if unknown:
        raise ValueError(f"mirror traffic names unknown deployments: {unknown}")
    for name, pct in mirror.items():
        if not _is_percent(pct, MAX_MIRROR_PERCENT):
            raise ValueError(
                f"mirror traffic for {name!r} must be an int from 0 to {MAX_MIRROR_PERCENT}, got {pct!r}"
            )
    mirrored = {name: pct for name, pct in mirror.items() if pct > 0}
    if len(mirrored) > 1:
        raise ValueError(f"mirror traffic can go to one deployment only, got {mirrored}")
    for name in mirrored:
        if traffic.get(name, 0) > 0:
            raise ValueError(
                f"deployment {name!r} takes {traffic[name]} % of the live traffic; a deployment takes live "
                "or mirror traffic, not both"
            )
    return mirrored


def mirror_after_traffic(mirror: dict[str, int], traffic: dict[str, int]) -> dict[str, int]:
    """The mirror setting once `traffic` (validated, every deployment) is live: a deployment given live
    traffic stops being mirrored, so a release goes from shadow to canary in one call on every backend."""
    return {name: pct for name, pct in mirror.items() if pct > 0 and name in traffic and not traffic[name]}


def check_deletable(name: str, traffic: dict[str, int]) -> None:
    """Azure refuses to delete a deployment that takes live traffic: the shares would no longer sum to 100."""
    share = traffic.get(name, 0)
    if share > 0:
        raise ValueError(f"deployment {name!r} takes {share} % of the traffic; move it first")


def _is_percent(value: object, most: int) -> bool:
    # bool is an int in Python, and JSON's 10.0 a float: Azure takes neither as a share.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= most
