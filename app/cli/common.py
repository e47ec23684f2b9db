"""What every subcommand shares: clean errors, loading the spec, the target, human lines.

Exit codes: 0 success, 1 a deployment or test failure, 2 bad input. Errors are
`app.errors` classes whose text has passed the redaction registry; progress
goes to stdout (events as JSON lines with --json), logs to stderr.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from app.errors import MlcacheError
from app.services.logs import get_logger
from app.services.redaction import redact
from app.spec import DeploymentSpec, load_spec

if TYPE_CHECKING:
    from app.services.target import CloudTarget

log = get_logger("cli")

Command = Callable[[argparse.Namespace], int]

def clean_errors(command: Command) -> Command:
    """Every error leaves as an `app.errors` class with redacted text, never a traceback."""

    @functools.wraps(command)
    def wrapper(args: argparse.Namespace) -> int:
        from app.services.logs import configure_cli_logging

        configure_cli_logging(sys.stderr)
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
            from app.services.explain import as_error

            log.debug("%s failed", command.__name__, exc_info=True)
            raise as_error(exc) from None

    return wrapper


def load(args: argparse.Namespace) -> tuple[DeploymentSpec, Path]:
    path = Path(args.spec)
    return with_overrides(load_spec(path), args), path.resolve().parent


def with_overrides(spec: DeploymentSpec, args: argparse.Namespace) -> DeploymentSpec:
    """The spec as the command line changes it: `--no-monitoring` leaves Application
    Insights out, as `monitoring.enabled = false` in the file does."""
    if getattr(args, "no_monitoring", False):
        spec.monitoring.enabled = False
    return spec


def target_for(spec: DeploymentSpec, args: argparse.Namespace) -> CloudTarget:
    from app.connect import target_for_spec

    state = getattr(args, "sandbox_state", None)
    if state and spec.target == "azure":
        print("note: --sandbox-state is ignored: the spec's target is azure",
              file=sys.stderr, flush=True)
    auth = getattr(args, "auth", None) or "default"
    tenant = getattr(args, "tenant", None)
    subscription = getattr(args, "subscription", None)
    if not subscription and (spec.target == "azure" or auth != "default"):
        # On the sandbox the spec's subscription counts only for a signed-in user: the
        # sandbox's own token has one subscription.
        subscription = spec.subscription_id
    # Device code: the URL and code go to stderr, so stdout stays clean for --json.
    target = target_for_spec(spec.target, subscription, state, auth, tenant,
                             prompt=lambda text: print(text, file=sys.stderr, flush=True))
    if target.started_here:
        print(
            f"note: no sandbox was running on {target.state_dir}; started one for this command "
            "(it stops when the command ends; `mlcache-deploy sandbox serve` keeps one running)",
            file=sys.stderr,
            flush=True,
        )
    if target.signed_in:
        from app.services.accounts import signed_in_as
        from app.services.explain import as_error

        where = "Azure" if spec.target == "azure" else "the sandbox"
        from azure.core.exceptions import ClientAuthenticationError

        from app.services.accounts import sign_in_refused

        try:
            who = signed_in_as(target)
        except ClientAuthenticationError as exc:
            target.close()
            raise sign_in_refused(exc) from None
        except Exception as exc:
            target.close()
            raise as_error(exc, prefix=f"signing in to {where} failed: ") from None
        print(f"note: using {where} as {who}", file=sys.stderr, flush=True)
    return target


def say_for(args: argparse.Namespace) -> Callable[[str], None]:
    """Human lines: stdout normally, stderr when stdout carries JSON."""
    stream = sys.stderr if getattr(args, "json", False) else sys.stdout

    def say(text: str) -> None:
        print(text, file=stream, flush=True)

    return say


