"""The one-line summary under the Test page's chart: calls, and the median latency
of the HITs and of the MISSes (kept apart: a MISS runs the model, a HIT does not)."""

from __future__ import annotations

from collections.abc import Sequence

from app.wizard.backend import CallResult


def median_ms(values: Sequence[float]) -> float:
    """The median: for an even count, the mean of the two middle values
    (150.9 and 47.1 give 99.0, not the upper one)."""
    # Not `statistics.median`: that module's imports would cost the window's first
    # paint a few milliseconds, for four lines.
    ordered = sorted(values)
    if not ordered:
        raise ValueError("the median of no values")
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def summary(results: Sequence[CallResult]) -> str:
    n = len(results)
    hits = [r.latency_ms for r in results if r.cache == "HIT"]
    misses = [r.latency_ms for r in results if r.cache != "HIT"]
    parts = [f"{n} call{'s' if n != 1 else ''}"]
    if hits:
        parts.append(f"HIT {len(hits)} \u00d7, median {median_ms(hits):.1f} ms")
    if misses:
        parts.append(f"MISS {len(misses)} \u00d7, median {median_ms(misses):.1f} ms")
    return " \u2022 ".join(parts)
