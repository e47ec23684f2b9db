"""The wizard's local sandbox: a process of its own that outlives the window.

`SandboxFactory` is the window's backend factory for the sandbox target (a
worker calls it: it reattaches to the sandbox serving the state folder, or
starts one) and knows how to stop that sandbox, for Target > Stop the local
sandbox. Closing the window leaves the sandbox running, so reopening is
instant, its caches keep their contents and whatever it is creating goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.wizard.backend import Backend


class SandboxFactory:
    """Makes the sandbox backend (in a worker) and stops the sandbox process."""

    def __init__(self, state_dir: str | Path | None, latency: str = "fast") -> None:
        """`state_dir`: the sandbox's folder (None: the user's default one);
        `latency`: the profile a newly started sandbox gets."""
        self.state_dir = state_dir
        self.latency = latency

    def __call__(self) -> Backend:
        from app.wizard.services_backend import ServicesBackend

        return ServicesBackend.for_sandbox(self.state_dir, latency=self.latency)

    def stop(self) -> bool:
        """Stop the sandbox process (blocking; call it from a worker). False when
        none was running."""
        from app.connect import stop_sandbox_process

        return stop_sandbox_process(self.state_dir)
