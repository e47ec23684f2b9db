"""Signing in at the sandbox's Entra authority from the CLI, and deploying as a guest.

The CLI makes the same azure-identity device-code credential it makes for Azure,
pointed at the sandbox's authority; the test plays the person who opens the
device-login page and types the code (`approve_device_code` fills the real form).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from app.sandbox import Sandbox
from tests.e2e.test_cli import ROOT, Cli, finished, make_spec

pytestmark = [pytest.mark.e2e, pytest.mark.sandbox]

CODE = re.compile(r"open (\S+) and enter the code (\S+)")


def run_signing_in(cli: Cli, sandbox: Sandbox, *argv: str, timeout: float = 240) -> tuple[
        int, str, str, list[str]]:
    """Run the CLI; when it prints a device code, approve it as the sandbox user would.

    Returns the exit code, stdout, stderr and the codes approved."""
    stdout: list[str] = []
    stderr: list[str] = []
    approved: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "app", *argv, "--sandbox-state", str(cli.state)],
        cwd=ROOT, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:
        out, err = proc.stdout, proc.stderr
        assert out is not None and err is not None
        reader = threading.Thread(target=lambda: stdout.append(out.read()), daemon=True)
        reader.start()
        for line in err:
            stderr.append(line)
            match = CODE.search(line)
            if match:
                assert match.group(1) == f"{sandbox.authority}/devicelogin"
                approved.append(match.group(2))
                sandbox.approve_device_code(match.group(2).rstrip("."))
        code = proc.wait(timeout)
        reader.join(timeout)
    return code, "".join(stdout), "".join(stderr), approved


def guest(sandbox: Sandbox) -> tuple[str, str]:
    tenant = sandbox.guest_tenant
    assert tenant is not None and tenant.subscriptions
    return tenant.tenant_id, tenant.subscriptions[0]


def logged_subscriptions(sandbox: Sandbox, group: str) -> set[str]:
    """Which subscriptions the product's requests on `group` went to (requests.log)."""
    seen = set()
    for line in (sandbox.state_dir / "requests.log").read_text().splitlines():
        path = json.loads(line)["path"]
        match = re.match(r"/subscriptions/([^/]+)/resourcegroups/([^/]+)", path, re.IGNORECASE)
        if match and match.group(2).lower() == group.lower():
            seen.add(match.group(1))
    return seen


def test_device_code_sign_in_to_the_guest_tenant_deploys_into_its_subscription(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    sandbox = sandbox_factory()
    tenant, subscription = guest(sandbox)
    spec, data = make_spec(tmp_path)
    group = data["resource_group"]["name"]

    code, out, err, approved = run_signing_in(
        cli, sandbox, "deploy", str(spec), "--json", "--auth", "device-code", "--tenant", tenant)
    assert code == 0, err
    assert len(approved) == 1
    assert finished(out)["succeeded"] is True
    # The identity, tenant and subscription in use are said, and it is the guest's.
    assert f"note: using the sandbox as {sandbox.username}" in err
    assert f"(tenant {tenant}), subscription {subscription}" in err
    assert logged_subscriptions(sandbox, group) == {subscription}
    assert sandbox.connection.password not in out + err

    code, out, err, approved = run_signing_in(
        cli, sandbox, "test", str(spec), "--json", "--auth", "device-code", "--tenant", tenant,
        "--subscription", subscription)
    assert code == 0, err
    # The account is remembered (token cache + authentication record): no code this time.
    assert approved == []
    assert f"note: using the sandbox as {sandbox.username}" in err
    answer = json.loads(out.splitlines()[-1])
    assert answer["status"] == 200, answer

    # The sandbox's own token acts in the home tenant: the group is not there.
    status = cli("status", str(spec), "--json")
    assert status.returncode == 0, status.stderr
    rows = [json.loads(line) for line in status.stdout.splitlines()]
    assert rows[0]["kind"] == "resource group" and rows[0]["state"] == "missing", rows[0]

    code, out, err, _ = run_signing_in(
        cli, sandbox, "cleanup", str(spec), "--confirm", group,
        "--auth", "device-code", "--tenant", tenant)
    assert code == 0, err


def test_sign_in_choices_that_cannot_work_are_explained(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    sandbox = sandbox_factory()
    spec, _data = make_spec(tmp_path)
    tenant, subscription = guest(sandbox)
    # The sandbox's own token cannot act in another tenant.
    unsigned = cli("status", str(spec), "--tenant", tenant)
    assert unsigned.returncode == 2
    assert "need a sign-in" in unsigned.stderr and "--auth device-code" in unsigned.stderr
    # A tenant the authority does not know: no code is offered, and the words say tenant.
    code, _out, err, approved = run_signing_in(
        cli, sandbox, "status", str(spec), "--auth", "device-code", "--tenant", "no-such-tenant")
    assert code == 1 and not approved
    assert "does not know the tenant" in err and "Check the tenant (--tenant)" in err
    # Choosing a subscription is a signed-in user's choice: the sandbox's token has one.
    default = cli("status", str(spec), "--auth", "default", "--subscription", subscription)
    assert default.returncode == 2
    assert "need a sign-in" in default.stderr
    for text in (unsigned.stderr, err):
        assert "Traceback" not in text


def test_a_second_run_signs_in_silently_with_the_remembered_account(
    sandbox_factory: Any, cli: Cli, tmp_path: Path
) -> None:
    from app.services import sign_in_store

    sandbox = sandbox_factory()
    spec, _data = make_spec(tmp_path)
    cli.env["HOME"] = str(tmp_path / "home")  # azure-identity's token cache lives there
    code, _out, err, approved = run_signing_in(cli, sandbox, "status", str(spec), "--auth",
                                               "device-code")
    assert code == 0, err
    assert len(approved) == 1
    record = sign_in_store.record_file(sandbox.authority)
    # The record names the account; it is stored beside the data, holding no secret.
    stored = record.with_name(record.name)
    data_home = Path(cli.env["XDG_DATA_HOME"])
    files = list(data_home.rglob("sign-in/*.json"))
    assert [f.name for f in files] == [stored.name]
    text = files[0].read_text(encoding="utf-8")
    assert sandbox.username in text and sandbox.connection.password not in text
    assert sandbox.connection.token not in text

    code, _out, err, approved = run_signing_in(cli, sandbox, "status", str(spec), "--auth",
                                               "device-code")
    assert code == 0, err
    assert approved == []
    assert f"note: using the sandbox as {sandbox.username}" in err
    # The browser sign-in shares the account: no page opens either.
    code, _out, err, _approved = run_signing_in(cli, sandbox, "status", str(spec), "--auth",
                                                "browser")
    assert code == 0, err
