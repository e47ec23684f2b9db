"""The function's health route: the last step of a deploy, and the wait before a test call.

One wait serves both (`wait_for_health`): GET /api/health until an answer is
good enough, at the target's interval and within the target's timeout. The
deploy step wants the new model version running with its cache reachable; a
test call only wants the host up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.errors import ServiceFailure
from app.services.context import DeployContext
from app.services.resources.base import AzCliPart, ResourceStep, Shell
from app.services.runner import StepReport, note
from app.spec import DeploymentSpec

# 401/403/404: the app answers, it just has no open health route (an image
# packaged elsewhere, e.g. by AzureML).
NO_HEALTH_ROUTE = frozenset({401, 403, 404})


@dataclass(frozen=True)
class HealthAnswer:
    """What one GET of the health route said ("" fields when the body did not say)."""

    status: int  # 0: no HTTP answer
    cache: str = ""
    model_version: str = ""
    error: str = ""  # in plain words, when there was no HTTP answer
    model_error: str = ""  # the function's own words when its init() failed

    @property
    def up(self) -> bool:
        return self.status == 200 or self.status in NO_HEALTH_ROUTE

    def describe(self) -> str:
        if not self.status:
            return self.error
        return f"HTTP {self.status}, cache {self.cache or 'unknown'}"


def ask_health(session: Any, url: str, verify: str | bool) -> HealthAnswer:
    import requests

    from app.services.explain import plain_request_error

    try:
        response = session.get(url, timeout=10, verify=verify)
    except requests.RequestException as exc:
        return HealthAnswer(0, error=plain_request_error(exc))
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    failed_model = body.get("model_loaded") is False
    return HealthAnswer(response.status_code, str(body.get("cache", "") or ""),
                        str(body.get("model_version", "") or ""),
                        model_error=str(body.get("model_error") or "init() failed")
                        if failed_model else "")


def wait_for_health(
    url: str,
    verify: str | bool,
    timeout: float,
    interval: float,
    good: Callable[[HealthAnswer], bool],
    waiting: Callable[[HealthAnswer], None] = lambda answer: None,
    sleep: Callable[[float], None] = time.sleep,
) -> HealthAnswer | None:
    """The first answer `good` accepts, or None when `timeout` passes first.

    A host that was just (re)started, by a sandbox starting or by Azure after a
    settings change, refuses connections or answers 503 for a while; `waiting`
    hears every answer that was not yet good (and may raise to stop, e.g. on cancel).
    """
    import requests

    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        while True:
            answer = ask_health(session, url, verify)
            if good(answer):
                return answer
            waiting(answer)
            if time.monotonic() > deadline:
                return None
            sleep(interval)


class EndpointCheckStep(ResourceStep):
    """GET /api/health until it answers 200: the function runs with its new settings."""

    name = "endpoint"
    arm_type = ""
    label = "health check"
    icon = "settings"
    depends_on = ("app-settings",)
    progress_text = "Waiting for the {title} route"
    success_text = "The function answers its health route with the cache reachable"
    attempts = 1

    def __init__(self, spec: DeploymentSpec, timeout_s: float | None = None) -> None:
        super().__init__(spec)
        self.title = f"health of {spec.function_app.name}"
        self.timeout_s = timeout_s

    def resource_type(self) -> str:
        return "Health check"

    def resource_name(self) -> str:
        return f"{self.spec.function_app.name} /api/health"

    def azcli(self, sh: Shell) -> AzCliPart:
        return AzCliPart(read=[
            f"echo \"https://$(az functionapp show --resource-group {sh.rg} "
            f"--name {sh.q(self.spec.function_app.name)} "
            "--query defaultHostName -o tsv)/api/score\"",
        ])

    def create(self, ctx: DeployContext, report: StepReport) -> dict[str, str]:
        host = ctx.output("function-app", "default_host_name")
        url = f"https://{host}/api/health"
        # Known when this run built the package; an image built elsewhere has its own.
        wanted_version = ctx.outputs.get("image", {}).get("model_version", "")
        timeout = self.timeout_s or ctx.target.health_timeout_s

        def current(answer: HealthAnswer) -> bool:
            # Until the host restarts with the new settings and image, the old
            # process answers too: with the cache "not configured" on a first
            # deploy, with the previous model version on a redeploy.
            return not wanted_version or answer.model_version == wanted_version

        def good(answer: HealthAnswer) -> bool:
            if answer.status in NO_HEALTH_ROUTE:
                return True
            return answer.status == 200 and answer.cache == "reachable" and current(answer)

        last = HealthAnswer(0, error="no answer yet")
        model_failures = 0

        def said(answer: HealthAnswer) -> str:
            text = answer.describe()
            if answer.status and not current(answer):
                text += f", still model version {answer.model_version or 'unknown'}"
            return text

        def waiting(answer: HealthAnswer) -> None:
            nonlocal last, model_failures
            last = answer
            # The host that runs this run's model says the model did not load: waiting
            # longer cannot help (twice, so a host caught mid-start is not blamed).
            model_failures = model_failures + 1 if answer.model_error and current(answer) else 0
            if model_failures >= 2:
                self._show_site_log(ctx, report)
                raise ServiceFailure(
                    f"the function's model did not load: {answer.model_error}",
                    "Fix the entry script's init() (the log above shows where it failed), "
                    "then deploy again.",
                )
            report.progress("Starting", f"{url}: {said(answer)}")
            report.check_cancelled()

        answer = wait_for_health(url, ctx.target.verify, timeout, ctx.target.health_poll_s,
                                 good, waiting, report.sleep)
        if answer is None:
            self._show_site_log(ctx, report)
            raise ServiceFailure(
                f"{url} did not answer within {timeout:.0f} s (last: {said(last)})",
                "Read the function app's log above (an image pull, a missing "
                "requirement or a failing init() are the usual causes).",
            )
        if answer.status in NO_HEALTH_ROUTE:
            note(f"{url} answered HTTP {answer.status}: the image has no "
                 "open health route, so the cache connection was not checked")
            return {"url": url, "cache": "unknown"}
        return {"url": url, "cache": answer.cache}

    def _show_site_log(self, ctx: DeployContext, report: StepReport, lines: int = 12) -> None:
        """The end of the site's log, where a failed pull or start explains itself."""
        from app.services.logstream import tail

        try:
            text, _ = tail(ctx.spec, ctx.target, ctx.clients)
        except Exception as exc:  # best effort: the timeout is the error that matters
            report.log(f"could not read the function app's log: {type(exc).__name__}")
            return
        # Our own health polls fill the log; what explains the failure is elsewhere.
        telling = [line for line in text if "/api/health" not in line]
        for line in telling[-lines:]:
            report.log(f"site log: {line}", level="warning")
