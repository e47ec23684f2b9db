"""`mlcache-deploy sandbox serve|status|stop|push`: the sandbox from the command line.

`serve` runs in the foreground: one JSON line on stdout once requests are
accepted (nothing else goes to stdout), logs on stderr, and SIGTERM or Ctrl-C
stops it together with every process it started. `stop` signals the serving
process named in the state directory's pid file and waits until it is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from app.errors import BadInput, ServiceFailure
from app.paths import default_sandbox_state_dir

log = logging.getLogger("mlcache.sandbox")


def _state_dir(args: argparse.Namespace) -> Path:
    raw = getattr(args, "state_dir", None)
    path = Path(raw).expanduser() if raw else default_sandbox_state_dir()
    return path.resolve()


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("mlcache")
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("mlcache.sandbox.http").setLevel(logging.DEBUG)
    uv = logging.getLogger("uvicorn")
    uv.addHandler(handler)
    uv.setLevel(logging.WARNING)


def serve(args: argparse.Namespace) -> int:
    from app.sandbox.api import Sandbox

    _configure_logging()
    state = _state_dir(args)
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop_requested.set()

    previous = {
        sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    try:
        sandbox = Sandbox.start(
            state,
            latency=args.latency,
            faults=args.faults,
            host=args.host,
            port=args.port,
            owner="serve",
            offer=args.offer,
        )
        try:
            print(json.dumps(sandbox.connection.as_json()), flush=True)
            while not stop_requested.wait(0.5):
                pass
            log.info("stopping")
        finally:
            sandbox.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def status(args: argparse.Namespace) -> int:
    from app.sandbox.api import CONNECTION_FILE, running_pid
    from app.sandbox.store import STORE_NAME

    state = _state_dir(args)
    pid = running_pid(state)
    if pid is None:
        print(f"no sandbox is running in {state}")
    else:
        endpoint = "?"
        with contextlib.suppress(OSError, ValueError, KeyError):
            endpoint = json.loads((state / CONNECTION_FILE).read_text())["endpoint"]
        print(f"sandbox running in {state} (pid {pid}) at {endpoint}")
    store_path = state / STORE_NAME
    if store_path.exists():
        try:
            data = json.loads(store_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ServiceFailure(f"the sandbox store {store_path} is unreadable: {exc}") from None
        groups = data.get("groups", {})
        resources = data.get("resources", {})
        print(f"{len(groups)} resource group(s), {len(resources)} resource(s)")
        for record in sorted(resources.values(), key=lambda r: r["body"]["id"].lower()):
            body = record["body"]
            state_text = (body.get("properties") or {}).get("provisioningState", "")
            print(f"  {record['group']}/{body['type']}/{body['name']} {state_text}".rstrip())
    return 0 if pid is not None else 1


def stop(args: argparse.Namespace) -> int:
    from app.sandbox.api import stop_serving

    state = _state_dir(args)
    if stop_serving(state) is None:
        print(f"no sandbox is running in {state}")
    else:
        print(f"sandbox in {state} stopped")
    return 0


def push(args: argparse.Namespace) -> int:
    """Store a function package in a sandbox registry (the registry provider's client)."""
    from app.sandbox.api import connect
    from app.sandbox.registry import parse_push_reference, push_package

    # Bad input first, so a typo is reported even when no sandbox runs.
    image = parse_push_reference(args.image)
    package_dir = Path(args.package_dir)
    if not package_dir.is_dir():
        raise BadInput(f"{package_dir} is not a folder", "Give the package folder to push.")
    conn = connect(_state_dir(args))
    result = push_package(
        package_dir, image, endpoint=conn.endpoint, ca_cert=conn.ca_cert, token=conn.token
    )
    print(result)
    return 0
