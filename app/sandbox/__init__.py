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

from app.sandbox.api import (
    Sandbox,
    SandboxConnection,
    SandboxCredential,
    SandboxProcess,
    SandboxTenant,
    connect,
    stop_serving,
)

__all__ = [
    "Sandbox",
    "SandboxConnection",
    "SandboxCredential",
    "SandboxProcess",
    "SandboxTenant",
    "connect",
    "stop_serving",
]
