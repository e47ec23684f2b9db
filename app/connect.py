"""Where a face (the CLI, the wizard) gets its target: the sandbox or Azure.

The engine (`app.services`) takes a `CloudTarget` and never reaches into the
sandbox package; this module is the one place that does: it connects to a
running sandbox (its `connection.json`), or starts one (in this process for a
command, as a process of its own for the wizard), and hands the engine the
same kind of target an Azure sign-in gives.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app import paths
from app.errors import BadInput, ServiceFailure
from app.services.logs import get_logger
from app.services.target import (
    CloudTarget,
    azure_target,
    make_credential,
    sandbox_target_from_connection,
)

log = get_logger("arm")


def sandbox_target(
    state_dir: Path | str | None = None, *, start: bool = True, latency: str = "fast"
) -> CloudTarget:
    """Connect to the sandbox running on `state_dir`, or start one in this process.

    A started sandbox lives until `target.close()`; its state persists in the
    state dir, so a later command reattaches to the same resources.
    """
    from app.sandbox import Sandbox, connect

    folder = (Path(state_dir) if state_dir else paths.default_sandbox_state_dir()).expanduser()
    try:
        running = connect(folder)
    except BadInput:
        if not start:
            raise
    else:
        log.info("using the sandbox at %s (state %s)", running.endpoint, folder)
        return sandbox_target_from_connection(
            {
                "endpoint": running.endpoint,
                "ca_cert": str(running.ca_cert),
                "subscription_id": running.subscription_id,
                "token": running.token,
            },
            folder,
        )
    log.info("starting a sandbox in this process (state %s)", folder)
    sandbox = Sandbox.start(folder, latency=latency)
    target = sandbox_target_from_connection(
        {
            "endpoint": sandbox.endpoint,
            "ca_cert": str(sandbox.ca_cert),
            "subscription_id": sandbox.subscription_id,
            "token": sandbox.token,
        },
        folder,
    )
    target._closer = sandbox.stop
    return target


# `sandbox serve` processes this program started; they outlive it on purpose, and
# are kept here so that stopping one also reaps it (no zombie while we run).
_STARTED: dict[Path, Any] = {}


def sandbox_process_target(state_dir: Path | str | None = None, *,
                           latency: str = "fast") -> CloudTarget:
    """Connect to the sandbox running on `state_dir`, or start one as a process of its own.

    The wizard's sandbox: a separate `mlcache-deploy sandbox serve` in its own
    session, so it neither shares the window's interpreter (its threads would
    compete with the UI thread) nor dies with the window, a Ctrl-C in its terminal
    or its process group. `target.close()` leaves it running: reopening the
    wizard reattaches to it, its caches keep their data, and whatever it was
    creating goes on. A `connection.json` left by a process that is gone does not
    count (`connect` checks the pid and the lock): a new process is started.
    """
    from app.sandbox import SandboxProcess

    folder = (Path(state_dir) if state_dir else paths.default_sandbox_state_dir()).expanduser()
    folder = folder.resolve()
    with contextlib.suppress(BadInput):
        return sandbox_target(folder, start=False)
    log.info("starting a sandbox process (state %s)", folder)
    try:
        process = SandboxProcess.start(folder, latency=latency, detach=True)
    except ServiceFailure:
        # Another window started one on this folder a moment earlier: use that one.
        with contextlib.suppress(BadInput):
            return sandbox_target(folder, start=False)
        raise
    _STARTED[folder] = process
    log.info("sandbox process %d serves %s", process.pid, folder)
    return sandbox_target(folder, start=False)


def stop_sandbox_process(state_dir: Path | str | None = None) -> bool:
    """Stop the `sandbox serve` process on `state_dir` (what `sandbox stop` does).

    Its caches save their contents and everything it holds starts again with the
    next sandbox on the same folder. False when none was running.
    """
    from app.sandbox import stop_serving

    folder = (Path(state_dir) if state_dir else paths.default_sandbox_state_dir()).expanduser()
    folder = folder.resolve()
    pid = stop_serving(folder)
    process = _STARTED.pop(folder, None)
    if process is not None:
        process.stop()  # already gone: this only collects its exit status
        if process.popen.stdout is not None:
            process.popen.stdout.close()
    return pid is not None


def target_for_spec(
    target: str,
    subscription_id: str | None,
    sandbox_state: str | Path | None,
    auth: str = "default",
    tenant_id: str | None = None,
    prompt: Callable[[str], None] | None = None,
) -> CloudTarget:
    """The target a spec's `target` field asks for (the CLI's entry point).

    `auth` and `tenant_id` choose the Azure sign-in (see make_credential); the
    sandbox needs neither.
    """
    if target == "sandbox":
        return sandbox_target(sandbox_state)
    if target == "azure":
        if not subscription_id:
            raise BadInput("an Azure target needs a subscription id (subscription_id in the spec)")
        credential = make_credential(auth, tenant_id, prompt=prompt)
        return azure_target(subscription_id, credential, tenant_id)
    raise BadInput(f"target must be sandbox or azure (got {target!r})")
