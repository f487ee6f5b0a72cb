"""The traffic rules of a managed online endpoint, shared by every adapter so all backends refuse alike."""

from __future__ import annotations


def validate_traffic(traffic: dict[str, int], deployments: set[str]) -> dict[str, int]:
    """Azure's traffic rules, checked before anything is sent: every deployment gets its share (0 if unnamed)."""
    unknown = sorted(set(traffic) - deployments)
    if unknown:
        raise ValueError(f"traffic names unknown deployments: {unknown}")
    for name, pct in traffic.items():
        if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
            raise ValueError(f"traffic for {name!r} must be an int from 0 to 100, got {pct!r}")
    total = sum(traffic.values())
    if total not in (0, 100):
        raise ValueError(f"traffic must sum to 0 or 100, got {total}: {traffic}")
    return {name: traffic.get(name, 0) for name in sorted(deployments)}
