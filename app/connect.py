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
    for_tenant,
    make_credential,
    sandbox_target_from_connection,
    sign_in_target,
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
        return sandbox_target_from_connection(running.as_json(), folder)
    log.info("starting a sandbox in this process (state %s)", folder)
    sandbox = Sandbox.start(folder, latency=latency)
    target = sandbox_target_from_connection(sandbox.connection.as_json(), folder)
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

    `auth` and `tenant_id` choose the sign-in (see make_credential). The sandbox
    acts with its own token unless a sign-in method is named: then the user signs
    in at the sandbox's authority as on Azure, and may pick another tenant and its
    subscription.
    """
    if target == "sandbox":
        cloud = sandbox_target(sandbox_state)
        if auth == "default" and not tenant_id and not subscription_id:
            return cloud
        if auth == "default":
            cloud.close()
            raise BadInput(
                "on the sandbox, --tenant and --subscription need a sign-in: its own token "
                "acts in its home tenant",
                "Add --auth device-code (or --auth browser).",
            )
        try:
            credential = make_credential(auth, tenant_id, prompt=prompt, cloud=cloud)
            tenant = tenant_id or cloud.tenant_id
            chosen = subscription_id or only_subscription(credential, cloud, tenant)
            return sign_in_target(cloud, credential, chosen, tenant)
        except BaseException:
            cloud.close()
            raise
    if target == "azure":
        if not subscription_id:
            raise BadInput("an Azure target needs a subscription id (subscription_id in the spec)")
        credential = make_credential(auth, tenant_id, prompt=prompt)
        return azure_target(subscription_id, credential, tenant_id)
    raise BadInput(f"target must be sandbox or azure (got {target!r})")


def only_subscription(credential: object, cloud: CloudTarget, tenant_id: str | None) -> str:
    """The one enabled subscription `credential` sees in `tenant_id`, or a BadInput
    naming those it sees (ARM lists only the token's tenant's subscriptions)."""
    from app.services.accounts import list_subscriptions

    subs = [s for s in list_subscriptions(for_tenant(credential, tenant_id), cloud)
            if s.state == "Enabled"]
    if len(subs) == 1:
        return subs[0].subscription_id
    where = f"tenant {tenant_id}" if tenant_id else "this tenant"
    if not subs:
        raise BadInput(f"you have no enabled subscription in {where}",
                       "Choose another tenant with --tenant.")
    names = ", ".join(f"{s.name} ({s.subscription_id})" for s in subs)
    raise BadInput(f"{where} has several subscriptions: {names}",
                   "Choose one with --subscription ID.")
