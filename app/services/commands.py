"""The headless commands: deploy, test, cleanup, status, export (wired in app/cli.py).

Each takes the parsed arguments and returns an exit code: 0 success, 1 a
deployment or test failure, 2 bad input. Errors are `app.errors` classes whose
text has passed the redaction registry; progress goes to stdout (events as JSON
lines with --json), logs to stderr.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.errors import BadInput, MlcacheError, ServiceFailure
from app.services.logs import get_logger
from app.services.redaction import redact
from app.spec import DeploymentSpec, load_spec

log = get_logger("cli")

Command = Callable[[argparse.Namespace], int]

# How long `test` lets a (re)starting function app take before calling it anyway.
HEALTH_WAIT_SANDBOX_S = 60.0
HEALTH_WAIT_AZURE_S = 300.0


def _clean_errors(command: Command) -> Command:
    """Every error leaves as an `app.errors` class with redacted text, never a traceback."""

    @functools.wraps(command)
    def wrapper(args: argparse.Namespace) -> int:
        from app.services.logs import configure_cli_logging

        configure_cli_logging()
        try:
            return command(args)
        except MlcacheError as exc:
            exc.message = redact(exc.message)
            exc.recommendation = redact(exc.recommendation)
            exc.args = (exc.message,)
            raise
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            from app.services.hints import as_error

            log.debug("%s failed", command.__name__, exc_info=True)
            raise as_error(exc) from None

    return wrapper


def _load(args: argparse.Namespace) -> tuple[DeploymentSpec, Path]:
    path = Path(args.spec)
    return load_spec(path), path.resolve().parent


def _target(spec: DeploymentSpec, args: argparse.Namespace) -> Any:
    from app.services.target import target_for_spec

    state = getattr(args, "sandbox_state", None)
    if state and spec.target == "azure":
        print("note: --sandbox-state is ignored: the spec's target is azure",
              file=sys.stderr, flush=True)
    auth = getattr(args, "auth", None) or "default"
    tenant = getattr(args, "tenant", None)
    if spec.target != "azure" and (auth != "default" or tenant):
        print("note: --auth and --tenant are ignored: the spec's target is the sandbox",
              file=sys.stderr, flush=True)
    # Device code: the URL and code go to stderr, so stdout stays clean for --json.
    target = target_for_spec(spec.target, spec.subscription_id, state, auth, tenant,
                             prompt=lambda text: print(text, file=sys.stderr, flush=True))
    if target.started_here:
        print(
            f"note: no sandbox was running on {target.state_dir}; started one for this command "
            "(it stops when the command ends; `mlcache-deploy sandbox serve` keeps one running)",
            file=sys.stderr,
            flush=True,
        )
    return target


def _say(args: argparse.Namespace) -> Callable[[str], None]:
    """Human lines: stdout normally, stderr when stdout carries JSON."""
    stream = sys.stderr if getattr(args, "json", False) else sys.stdout

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    return say


# --- deploy -----------------------------------------------------------------------


@_clean_errors
def deploy(args: argparse.Namespace) -> int:
    from app.services.clients import ClientFactory
    from app.services.console import JsonLines, LiveLines, PlainLines
    from app.services.events import Listener
    from app.services.logs import DeploymentLog
    from app.services.plan import build_plan, preflight
    from app.services.runner import Runner
    from app.services.steps import DeployContext

    spec, spec_dir = _load(args)
    preflight(spec, spec_dir)
    steps = build_plan(spec)
    live: LiveLines | None = None
    with _target(spec, args) as target, DeploymentLog(spec.resource_group.name) as deployment_log:
        clients = ClientFactory(target)
        _check_access(clients, spec)
        ctx = DeployContext(spec, target, clients, spec_dir=spec_dir)
        listeners: list[Listener] = [deployment_log]
        if args.json:
            listeners.append(JsonLines(sys.stdout))
        elif sys.stdout.isatty():
            live = LiveLines(steps, sys.stdout)
            listeners.append(live)
        else:
            listeners.append(PlainLines(sys.stdout))
        runner = Runner(steps, ctx, listeners)
        runner.log_path = str(deployment_log.path)
        result = _run_interruptibly(runner)
        if live is not None:
            live.close()
        clients.close()
    if result is None:
        raise ServiceFailure("the deployment ended without a result")
    if result.succeeded and not args.json:
        host = result.outcomes["function-app"].outputs.get("default_host_name", "")
        group = spec.resource_group.name
        print(f"Scoring endpoint: https://{host}/api/score\n"
              f"Try it:           mlcache-deploy test {args.spec}\n"
              f"Tear down:        mlcache-deploy cleanup {args.spec} --confirm {group}")
    return 0 if result.succeeded else 1


def _check_access(clients: Any, spec: DeploymentSpec) -> None:
    """One cheap read before creating anything: signed in, subscription visible, ARM reachable."""
    from app.services.hints import as_error

    try:
        clients.resources().resource_groups.check_existence(spec.resource_group.name)
    except Exception as exc:
        raise as_error(exc, prefix="before creating anything, ARM could not be used: ") from None


def _run_interruptibly(runner: Any) -> Any:
    """Run in a worker thread so Ctrl-C in the main thread can cancel cleanly."""
    box: dict[str, Any] = {}
    # An Event, not Thread.join: a join interrupted by Ctrl-C can report a live
    # thread as finished on CPython 3.11.
    done = threading.Event()

    def work() -> None:
        try:
            box["result"] = runner.run()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name="mlcache-runner", daemon=True).start()
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        print("cancelling: no new resources are started; waiting for the runner to stop",
              file=sys.stderr, flush=True)
        runner.cancel()
        done.wait(30)
    if "error" in box:
        raise box["error"]
    return box.get("result")


# --- test -------------------------------------------------------------------------


@_clean_errors
def test(args: argparse.Namespace) -> int:
    from app.services.clients import ClientFactory
    from app.services.endpoint_test import (
        ScoringClient,
        default_payload,
        find_endpoint,
        percentile,
        read_payload,
        wait_until_healthy,
    )

    spec, spec_dir = _load(args)
    if args.repeat < 1:
        raise BadInput(f"--repeat must be at least 1 (got {args.repeat})")
    payload = read_payload(args.payload) if args.payload else default_payload(spec, spec_dir)
    say = _say(args)
    failures = 0
    latencies: list[float] = []
    with _target(spec, args) as target:
        clients = ClientFactory(target)
        endpoint = find_endpoint(spec, target, clients)
        startup = HEALTH_WAIT_SANDBOX_S if target.is_sandbox else HEALTH_WAIT_AZURE_S
        if not wait_until_healthy(endpoint, target.verify, startup, say):
            say(f"the function app did not answer {endpoint.health_url} within {startup:.0f} s; "
                "calling it anyway")
        if not args.json:
            say(f"POST {endpoint.url} ({len(payload)} bytes), {args.repeat} call(s)")
        with ScoringClient(endpoint, target.verify) as client:
            for number in range(1, args.repeat + 1):
                result = client.call(payload)
                latencies.append(result.latency_ms)
                if result.status != 200:
                    failures += 1
                if args.json:
                    print(json.dumps(result.as_dict()), flush=True)
                else:
                    body = result.body if isinstance(result.body, str) else json.dumps(result.body)
                    say(
                        f"#{number:<3} {result.status or 'ERR':<4} {result.cache or '-':<6} "
                        f"{result.latency_ms:8.1f} ms  {redact(body)[:200]}"
                        + (f"  ({result.error})" if result.error else "")
                    )
        clients.close()
    if not args.json and len(latencies) > 1:
        say(
            f"latency p50 {percentile(latencies, 0.5):.1f} ms, "
            f"p95 {percentile(latencies, 0.95):.1f} ms, {failures} failed"
        )
    return 1 if failures else 0


# --- cleanup ----------------------------------------------------------------------


@_clean_errors
def cleanup(args: argparse.Namespace) -> int:
    from app.services.cleanup import delete_group
    from app.services.clients import ClientFactory

    spec, _ = _load(args)
    say = _say(args)
    with _target(spec, args) as target:
        clients = ClientFactory(target)
        result = delete_group(
            clients, spec.resource_group.name, args.confirm, force=args.force, say=say
        )
        clients.close()
    if args.json:
        print(
            json.dumps(
                {
                    "resource_group": result.group,
                    "deleted": [str(item) for item in result.deleted],
                    "already_gone": result.already_gone,
                    "elapsed": round(result.elapsed, 3),
                }
            )
        )
    return 0


# --- status -----------------------------------------------------------------------


@_clean_errors
def status(args: argparse.Namespace) -> int:
    from app.services.clients import ClientFactory
    from app.services.status import deployment_status

    spec, _ = _load(args)
    with _target(spec, args) as target:
        clients = ClientFactory(target)
        rows = deployment_status(spec, clients)
        clients.close()
    if args.json:
        for row in rows:
            print(json.dumps(row.as_dict()))
    else:
        for row in rows:
            mark = "✓" if row.exists else "✗"
            print(f" {mark} {row.kind:<22} {row.name:<28} {row.state:<10} {row.detail}")
    return 0


# --- export -----------------------------------------------------------------------


@_clean_errors
def export(args: argparse.Namespace) -> int:
    from app.services.export import export_text
    from app.services.plan import preflight

    spec, _ = _load(args)
    preflight(spec)
    text = export_text(spec, args.format)
    if args.out:
        out = Path(args.out)
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise BadInput(f"--out {out}: cannot write ({exc.strerror or exc})") from None
        if args.format == "azcli":
            out.chmod(0o755)
        print(f"wrote {args.format} export to {out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
