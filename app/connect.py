"""Where a face (the CLI, the wizard) gets its target: the sandbox or Azure.

The engine (`app.services`) takes a `CloudTarget` and never reaches into the
sandbox package; this module is the one place that does: it connects to a
running sandbox (its `connection.json`), or starts one in this process, and
hands the engine the same kind of target an Azure sign-in gives.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app import paths
from app.errors import BadInput
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
