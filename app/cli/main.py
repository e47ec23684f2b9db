"""Headless commands: the argument table and one function per subcommand.

Each subcommand function imports what it needs when it runs, so `--version`
and `validate` stay fast and the GUI path never loads an Azure SDK up front.
Exit codes: 0 success, 1 a deployment/test/validation failure, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from app import __version__
from app.errors import MlcacheError

Command = Callable[[argparse.Namespace], int]


def cmd_gui(args: argparse.Namespace) -> int:
    """No subcommand: open the wizard."""
    from app.wizard.launch import run_gui

    return run_gui(sandbox_state=args.sandbox_state)


def cmd_validate(args: argparse.Namespace) -> int:
    """Check a spec file as `deploy` checks it before creating anything (every rule,
    what this version cannot create yet, the model folder); print problems or
    `Validation passed`. The wizard's Review runs the same checks."""
    from app.cli.common import with_overrides
    from app.services.plan import preflight_problems
    from app.spec import load_spec_with_notes

    path = Path(args.spec)
    spec, notes = load_spec_with_notes(path)
    with_overrides(spec, args)
    problems = preflight_problems(spec, path.resolve().parent)
    for line in notes:  # stderr, so --json output stays one document
        print(f"note: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps([p.as_dict() for p in problems], indent=2))
    elif problems:
        for problem in problems:
            print(problem)
    else:
        print("Validation passed")
    return 1 if problems else 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from app.cli.commands import deploy

    return deploy(args)


def cmd_test(args: argparse.Namespace) -> int:
    from app.cli.commands import test

    return test(args)


def cmd_cleanup(args: argparse.Namespace) -> int:
    from app.cli.commands import cleanup

    return cleanup(args)


def cmd_status(args: argparse.Namespace) -> int:
    from app.cli.commands import status

    return status(args)


def cmd_export(args: argparse.Namespace) -> int:
    from app.cli.commands import export

    return export(args)


def cmd_estimate(args: argparse.Namespace) -> int:
    from app.cli.commands import estimate

    return estimate(args)


def cmd_sandbox_serve(args: argparse.Namespace) -> int:
    from app.cli.sandbox import serve

    return serve(args)


def cmd_sandbox_status(args: argparse.Namespace) -> int:
    from app.cli.sandbox import status

    return status(args)


def cmd_sandbox_stop(args: argparse.Namespace) -> int:
    from app.cli.sandbox import stop

    return stop(args)


def cmd_sandbox_push(args: argparse.Namespace) -> int:
    from app.cli.sandbox import push

    return push(args)


def cmd_package_build(args: argparse.Namespace) -> int:
    from app.cli.commands import package_build

    return package_build(args)


def cmd_package_push(args: argparse.Namespace) -> int:
    from app.cli.sandbox import push

    return push(args)


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sandbox-state",
        metavar="DIR",
        help="state directory of the sandbox to use (default: the user's data dir)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print events or results as JSON lines"
    )


def _add_sign_in_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--auth",
        choices=["default", "browser", "device-code", "cli", "azd"],
        default="default",
        help="how to sign in: on Azure DefaultAzureCredential (default), an interactive "
        "browser or a device code (remembered: later runs sign in silently), or the token "
        "of the Azure CLI (cli) or Azure Developer CLI (azd); on the sandbox its own token "
        "(default), or a browser or device-code sign-in at its authority",
    )
    parser.add_argument("--tenant", metavar="ID", help="Microsoft Entra tenant to sign in to")
    parser.add_argument(
        "--subscription", metavar="ID",
        help="subscription to use instead of the spec's subscription_id (on the sandbox, "
        "default: the signed-in tenant's only subscription)",
    )


def _add_monitoring_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-monitoring", action="store_true",
        help="leave Application Insights and its Log Analytics workspace out (as "
        "monitoring.enabled = false in the spec)")


def _add_sandbox_state(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir", metavar="DIR", help="sandbox state directory (default: user data dir)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlcache-deploy",
        description="Serve a trained model on Azure Functions with Azure Cache for Redis "
        "in front of it. Without a subcommand the wizard opens.",
    )
    parser.add_argument("--version", action="version", version=f"mlcache-deploy {__version__}")
    parser.add_argument("--sandbox-state", metavar="DIR", help=argparse.SUPPRESS)
    parser.set_defaults(func=cmd_gui)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    p = sub.add_parser("validate", help="check a spec file against every rule")
    p.add_argument("spec", metavar="SPEC", help="deployment spec (.json or .toml)")
    p.add_argument("--json", action="store_true", help="print problems as a JSON array")
    _add_monitoring_option(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("deploy", help="create or resume everything the spec describes")
    p.add_argument("spec", metavar="SPEC")
    _add_target_options(p)
    _add_sign_in_options(p)
    _add_monitoring_option(p)
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("test", help="call the deployed function's scoring endpoint")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--payload", metavar="FILE", help="JSON request body (default: sample)")
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="calls to make")
    _add_target_options(p)
    _add_sign_in_options(p)
    _add_monitoring_option(p)
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("cleanup", help="delete the spec's resource group and all it holds")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--confirm", metavar="NAME", help="the resource group's name, typed out")
    p.add_argument("--force", action="store_true", help="delete a group this tool did not create")
    _add_target_options(p)
    _add_sign_in_options(p)
    p.set_defaults(func=cmd_cleanup)

    p = sub.add_parser("status", help="show what of the spec exists now")
    p.add_argument("spec", metavar="SPEC")
    _add_target_options(p)
    _add_sign_in_options(p)
    # A deployment made with --no-monitoring is complete without Application Insights.
    _add_monitoring_option(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("export", help="write an ARM template, Bicep, an azd project or an az "
                       "CLI script for the spec")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--format", choices=["arm", "bicep", "azd", "azcli"], default="arm")
    p.add_argument("--out", metavar="FILE",
                   help="write here instead of stdout (azd: the project folder, required)")
    _add_monitoring_option(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("estimate", help="show what the spec's resources cost per month")
    p.add_argument("spec", metavar="SPEC")
    _add_target_options(p)
    _add_monitoring_option(p)
    p.set_defaults(func=cmd_estimate)

    sandbox = sub.add_parser("sandbox", help="the local sandbox cloud")
    sandbox_sub = sandbox.add_subparsers(title="sandbox commands", metavar="COMMAND", required=True)
    p = sandbox_sub.add_parser("serve", help="run the sandbox in the foreground")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    _add_sandbox_state(p)
    p.add_argument("--latency", default="fast", help="fast | realistic-scaled | FACTOR")
    p.add_argument("--faults", metavar="FILE", help="fault-injection rules (.json or .toml)")
    p.add_argument("--offer", choices=["pay-as-you-go", "free-trial"],
                   help="the subscription's offer, as Azure reports it (kept in the state dir)")
    p.set_defaults(func=cmd_sandbox_serve)
    p = sandbox_sub.add_parser("status", help="is a sandbox running, and what it holds")
    _add_sandbox_state(p)
    p.set_defaults(func=cmd_sandbox_status)
    p = sandbox_sub.add_parser("stop", help="stop a running sandbox and its processes")
    _add_sandbox_state(p)
    p.set_defaults(func=cmd_sandbox_stop)
    p = sandbox_sub.add_parser("push", help="store a function package in a sandbox registry")
    p.add_argument("package_dir", metavar="DIR")
    p.add_argument("--image", required=True, help="<registry>.azurecr.io/<repository>:<tag>")
    _add_sandbox_state(p)
    p.set_defaults(func=cmd_sandbox_push)

    package = sub.add_parser("package", help="build the deployable function package")
    package_sub = package.add_subparsers(title="package commands", metavar="COMMAND", required=True)
    p = package_sub.add_parser("build", help="combine a model folder with the function template")
    p.add_argument("model_dir", metavar="MODEL_DIR")
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(func=cmd_package_build)
    p = package_sub.add_parser("push", help="store a built package in a sandbox registry")
    p.add_argument("package_dir", metavar="DIR")
    p.add_argument("--image", required=True, help="<registry>.azurecr.io/<repository>:<tag>")
    _add_sandbox_state(p)
    p.set_defaults(func=cmd_package_push)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except MlcacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
