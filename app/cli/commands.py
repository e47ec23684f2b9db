"""One function per subcommand: deploy, test, cleanup, status, export, estimate, package build.

Each takes the parsed arguments, calls the engine with typed values, prints what
a person (or, with --json, a program) reads, and returns the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from app.cli.common import clean_errors, load, say_for, target_for, with_overrides
from app.errors import BadInput, RuleProblems, ServiceFailure
from app.services.redaction import redact

if TYPE_CHECKING:
    from app.services.pricing import CostEstimate
    from app.services.target import CloudTarget
    from app.spec import DeploymentSpec

T = TypeVar("T")
# Calls `test --repeat` makes at most: a measurement, not a load test.
MAX_REPEAT = 10_000

# --- deploy -----------------------------------------------------------------------


@clean_errors
def deploy(args: argparse.Namespace) -> int:
    from app.cli.live import JsonLines, LiveTable, PlainLines
    from app.services.clients import ClientFactory
    from app.services.deploy import plan_deployment, run_deployment
    from app.services.events import Listener

    spec, spec_dir = load(args)
    steps = plan_deployment(spec, spec_dir)
    live: LiveTable | None = None
    listeners: list[Listener] = []
    with target_for(spec, args) as target:
        if args.json:
            listeners.append(JsonLines(sys.stdout))
        elif sys.stdout.isatty():
            live = LiveTable(list(steps), sys.stdout, portal=_portal_links(target))
            listeners.append(live)
        else:
            listeners.append(PlainLines(sys.stdout))
        clients = ClientFactory(target)
        cancel = threading.Event()
        try:
            result = _interruptibly(
                lambda: run_deployment(spec, target, clients, steps, spec_dir, listeners, cancel),
                cancel,
            )
        finally:
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


def _portal_links(target: CloudTarget) -> Callable[[str], str] | None:
    """Portal links on Azure; on the sandbox the table shows the resource id itself."""
    if target.is_sandbox:
        return None
    from app.services.portal import portal_url

    tenant = target.tenant_id
    return lambda resource_id: portal_url(tenant, resource_id)


def _interruptibly(work: Callable[[], T], cancel: threading.Event) -> T | None:
    """Run `work` in a thread so Ctrl-C in the main thread can cancel it cleanly."""
    box: dict[str, Any] = {}
    # An Event, not Thread.join: a join interrupted by Ctrl-C can report a live
    # thread as finished on CPython 3.11.
    done = threading.Event()

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="mlcache-runner", daemon=True).start()
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        print("cancelling: no new resources are started; waiting for the runner to stop",
              file=sys.stderr, flush=True)
        cancel.set()
        done.wait(30)
    if "error" in box:
        raise box["error"]
    return box.get("result")


# --- test -------------------------------------------------------------------------


@clean_errors
def test(args: argparse.Namespace) -> int:
    from app.services.clients import ClientFactory
    from app.services.resources.monitoring import insights_view
    from app.services.scoring import (
        ScoringClient,
        default_payload,
        find_endpoint,
        percentile,
        read_payload,
    )

    spec, spec_dir = load(args)
    if not 1 <= args.repeat <= MAX_REPEAT:
        raise BadInput(f"--repeat must be from 1 to {MAX_REPEAT:,} (got {args.repeat})",
                       "For a longer load, run a load tool against the endpoint instead.")
    payload = read_payload(args.payload) if args.payload else default_payload(spec, spec_dir)
    say = say_for(args)
    failures = 0
    latencies: list[float] = []
    with target_for(spec, args) as target:
        clients = ClientFactory(target)
        endpoint = find_endpoint(spec, target, clients, say)
        insights = insights_view(spec, clients)
        if not args.json:
            say(f"POST {endpoint.url} ({len(payload)} bytes), {args.repeat} call(s)")
        with ScoringClient(endpoint, target.verify, retry=target.retry) as client:
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
                        + (f"  [cache: {result.cache_detail}]" if result.cache_detail else "")
                    )
        clients.close()
    if not args.json and len(latencies) > 1:
        say(
            f"latency p50 {percentile(latencies, 0.5):.1f} ms, "
            f"p95 {percentile(latencies, 0.95):.1f} ms, {failures} failed"
        )
    for line in insights.lines(portal=not target.is_sandbox) if insights is not None else []:
        say(line)  # with --json on stderr, as every human line
    return 1 if failures else 0


# --- cleanup ----------------------------------------------------------------------


@clean_errors
def cleanup(args: argparse.Namespace) -> int:
    from app.services.cleanup import delete_group
    from app.services.clients import ClientFactory

    spec, _ = load(args)
    say = say_for(args)
    with target_for(spec, args) as target:
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


@clean_errors
def status(args: argparse.Namespace) -> int:
    from app.services.clients import ClientFactory
    from app.services.status import deployment_status

    spec, _ = load(args)
    with target_for(spec, args) as target:
        clients = ClientFactory(target)
        rows = deployment_status(spec, clients, live=True)
        clients.close()
    if args.json:
        for row in rows:
            print(json.dumps(row.as_dict()))
    else:
        for row in rows:
            mark = "✓" if row.healthy else "✗"
            # Say which rows were seen working and which are only ARM's record.
            seen = f"live: {row.live.text}" if row.live is not None else "stored state"
            print(f" {mark} {row.kind:<22} {row.name:<28} {row.state:<10} {row.detail}"
                  f" [{seen}]")
    return 0 if all(row.healthy for row in rows if row.exists) else 1


# --- export -----------------------------------------------------------------------


@clean_errors
def export(args: argparse.Namespace) -> int:
    from app.services.export import FOLDER_FORMATS, export_text
    from app.services.plan import preflight

    spec, spec_dir = load(args)
    preflight(spec)
    if args.format in FOLDER_FORMATS:
        return _export_folder(args, spec, spec_dir)
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


def _export_folder(args: argparse.Namespace, spec: DeploymentSpec, spec_dir: Path) -> int:
    """`--format azd --out DIR`: the project's files under DIR (made when missing)."""
    from app.services.export import write_export_folder

    if not args.out:
        raise BadInput(f"--format {args.format} writes a folder: give it with --out DIR")
    out = Path(args.out)
    try:
        files = write_export_folder(spec, args.format, out, spec_dir)
    except OSError as exc:
        raise BadInput(f"--out {out}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {args.format} export to {out}: {', '.join(files)}", file=sys.stderr)
    return 0


# --- estimate ---------------------------------------------------------------------


def _amount(units: float, unit: str) -> str:
    plural = units != 1 and not unit.endswith("GB")
    return f"{units:g} {unit}{'s' if plural else ''}"


def format_table(result: CostEstimate) -> str:
    """The CLI's table: one line per meter, then the total and what it rests on."""
    header = ("Resource", "SKU", "Unit price", "Units / month", "Monthly")
    rows = []
    for item in result.items:
        if item.found:
            price = f"{item.unit_price:.4f}".rstrip("0").rstrip(".")
            rows.append((item.resource, item.sku, f"{price} {item.currency}/{item.unit}",
                         _amount(item.units, item.unit), f"{item.monthly:,.2f}"))
        else:
            rows.append((item.resource, item.sku, "-", _amount(item.units, item.unit),
                         "price not found"))
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [str(cell).ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        return "  ".join([*cells, str(row[-1]).rjust(widths[-1])]).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths))]
    for item, row in zip(result.items, rows, strict=True):
        out.append(line(row))
        if item.note and item.found:
            out.append(" " * 2 + f"({item.note})")
    total = f"Estimated monthly total: {result.currency} {result.total:,.2f}"
    out += ["", total, f"Basis: {result.basis}.", f"Source: {result.source}"]
    if result.missing:
        out.append(f"{result.missing} item(s) had no list price and are not in the total.")
    out += [f"Note: {note}" for note in result.notes]
    return "\n".join(out) + "\n"


@clean_errors
def estimate(args: argparse.Namespace) -> int:
    """`mlcache-deploy estimate SPEC [--json] [--sandbox-state DIR]`.

    A sandbox spec, or any spec with --sandbox-state, is priced by the sandbox's
    Retail Prices API (a sandbox is started for the command when none runs);
    an Azure spec otherwise by Azure's. Exit 0 with prices, 1 when no meter
    has a price or the API cannot be used, 2 for a bad spec.
    """
    from app.rules import validate_spec
    from app.services.pricing import RETAIL_PRICES_URL, estimate_for_target
    from app.services.pricing import estimate as price_estimate
    from app.spec import load_spec

    spec = with_overrides(load_spec(Path(args.spec)), args)
    problems = validate_spec(spec)
    if problems:
        listing = "\n  ".join(str(p) for p in problems)
        raise RuleProblems(f"the spec has {len(problems)} problem(s):\n  {listing}",
                           "Fix them (`mlcache-deploy validate SPEC` lists them) and try again.")
    state = getattr(args, "sandbox_state", None)
    if spec.target == "sandbox" or state:
        from app.connect import sandbox_target

        with sandbox_target(state) as target:
            if target.started_here:
                print(f"note: no sandbox was running on {target.state_dir}; started one for "
                      "this command", file=sys.stderr, flush=True)
            result = estimate_for_target(spec, target)
    else:
        result = price_estimate(spec, RETAIL_PRICES_URL, True)
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        sys.stdout.write(format_table(result))
    if result.priced == 0:
        print(f"error: no list price was found for any of this deployment's meters in "
              f"{result.region}", file=sys.stderr)
        return 1
    return 0


# --- package build ----------------------------------------------------------------


@clean_errors
def package_build(args: argparse.Namespace) -> int:
    """`mlcache-deploy package build MODEL_DIR --out DIR`."""
    from app.services.packaging import build_package

    info = build_package(Path(args.model_dir), Path(args.out))
    print(f"Built function package in {info.out_dir}")
    print(f"  entry script:  {info.entry_script}")
    print(f"  model files:   {', '.join(info.model_files)}")
    print(f"  model version: {info.model_version}")
    print(f"  base image:    {info.base_image}")
    if not info.has_sample_request:
        print("  (no sample-request.json: `mlcache-deploy test` will need --payload)")
    print(
        f"Next: mlcache-deploy package push {info.out_dir} "
        "--image <registry>.azurecr.io/<repository>:<tag>"
    )
    return 0
