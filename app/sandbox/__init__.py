"""The local sandbox cloud: a faithful subset of Azure Resource Manager with real backing.

Public API (stable; others build on it):

    Sandbox.start(state_dir, latency="fast", faults=None, offer=None) -> Sandbox   (context manager;
        offer "pay-as-you-go" | "free-trial", kept in the state directory)
    connect(state_dir) -> SandboxConnection                            (BadInput if none runs)
    SandboxProcess.start(state_dir, latency=...) -> SandboxProcess     (`sandbox serve` as a child;
        detach=True: in its own session, outliving the caller)
    stop_serving(state_dir) -> pid | None                              (what `sandbox stop` does)
    both: .endpoint .ca_cert .token .subscription_id .state_dir .credential()
          sign-in: .authority .tenant_id .tenants .username .identity_kwargs()
                   .approve_device_code(user_code) .complete_browser_sign_in(url)
    LATENCY: app.sandbox.latency.REALISTIC_SECONDS / FAST_SECONDS / resolve_latency
    CA leaf certificates for child processes: SandboxContext.ca.issue_leaf(dir, stem)

This package never imports app.services or app.wizard.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from app.errors import BadInput

# What the `sandbox` extra installs, by the module each is imported as.
EXTRA_MODULES = ("starlette", "uvicorn", "cryptography", "azure.functions", "anyio")
INSTALL_HINT = "pip install 'mlcache-deploy[sandbox]'"


def check_extra() -> None:
    """Raise the one-line BadInput naming the install when the `sandbox` extra is
    missing, before any part of the sandbox needs it (its modules import the web
    stack lazily, so a plain ImportError would surface mid-start as a traceback)."""
    for module in EXTRA_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise BadInput(f"the local sandbox needs its extra packages ({module} is not "
                           f"installed): {INSTALL_HINT}")


check_extra()

if TYPE_CHECKING:
    from app.sandbox.api import (
        Sandbox,
        SandboxConnection,
        SandboxCredential,
        SandboxProcess,
        SandboxTenant,
        connect,
        stop_serving,
    )

_API = ("Sandbox", "SandboxConnection", "SandboxCredential", "SandboxProcess", "SandboxTenant",
        "connect", "stop_serving")


def __getattr__(name: str) -> Any:
    """The public API, imported on first use: a function host process runs
    `app.sandbox.functionhost` and must not load the sandbox's servers and SDKs,
    which its app would then share instead of its own packages."""
    if name in _API:
        from app.sandbox import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "EXTRA_MODULES",
    "INSTALL_HINT",
    "Sandbox",
    "SandboxConnection",
    "SandboxCredential",
    "SandboxProcess",
    "SandboxTenant",
    "check_extra",
    "connect",
    "stop_serving",
]
