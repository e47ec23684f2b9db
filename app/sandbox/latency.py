"""Simulated provisioning time: one table every part of the project reads.

`REALISTIC_SECONDS` is the `realistic-scaled` profile (Azure's real durations,
scaled down so a demo takes a minute, not half an hour). `fast` keeps every
provisioning well under a second for tests; a number N means N times the
realistic profile. Providers ask `profile.seconds("redis.create")`; the deploy
benchmark and the web provider import the same table.
"""

from __future__ import annotations

from dataclasses import dataclass

REALISTIC_SECONDS: dict[str, float] = {
    "redis.create": 20.0,
    "redis.update": 1.0,
    "redis.delete": 5.0,
    "storage.create": 4.0,
    "workspace.create": 3.0,
    "web.plan": 2.0,
    "web.site": 6.0,
    "web.config": 1.0,
    "registry.create": 2.0,
    "registry.run.queue": 2.0,
    "registry.run.build": 8.0,
    "registry.import": 3.0,
    "group.delete": 5.0,
    # A new role assignment takes effect (pulls, storage) this long after its PUT.
    "rbac.propagation": 4.0,
}

FAST_SECONDS: dict[str, float] = {
    "redis.create": 0.2,
    "redis.update": 0.05,
    "redis.delete": 0.1,
    "storage.create": 0.1,
    "workspace.create": 0.05,
    "web.plan": 0.05,
    "web.site": 0.1,
    "web.config": 0.05,
    "registry.create": 0.05,
    "registry.run.queue": 0.05,
    "registry.run.build": 0.3,
    "registry.import": 0.05,
    "group.delete": 0.1,
    "rbac.propagation": 0.0,
}

PROFILE_NAMES = ("fast", "realistic-scaled")


@dataclass(frozen=True)
class LatencyProfile:
    """Seconds per provisioning step; unknown steps take the `default`."""

    name: str
    table: dict[str, float]
    default: float = 0.0

    def seconds(self, step: str) -> float:
        return self.table.get(step, self.default)

    @property
    def is_fast(self) -> bool:
        return self.name == "fast"


def resolve_latency(spec: str | float | LatencyProfile) -> LatencyProfile:
    """`fast`, `realistic-scaled`, or a factor (number or numeric string) on realistic.

    Raises ValueError with a readable message for anything else.
    """
    if isinstance(spec, LatencyProfile):
        return spec
    if isinstance(spec, str):
        if spec == "fast":
            return LatencyProfile("fast", dict(FAST_SECONDS), 0.05)
        if spec == "realistic-scaled":
            return LatencyProfile("realistic-scaled", dict(REALISTIC_SECONDS), 1.0)
        try:
            factor = float(spec)
        except ValueError:
            raise ValueError(
                f"latency must be 'fast', 'realistic-scaled' or a number, not {spec!r}"
            ) from None
    else:
        factor = float(spec)
    if not factor >= 0 or factor == float("inf"):
        raise ValueError(f"latency factor must be a finite number >= 0, not {spec!r}")
    table = {step: seconds * factor for step, seconds in REALISTIC_SECONDS.items()}
    return LatencyProfile(f"{factor:g}x", table, 1.0 * factor)
