"""The deployed function's scoring route, called as a client would: endpoint, key, calls.

The function key is fetched through ARM (host keys), registered as a secret and
sent in the `x-functions-key` header, never in a URL that could be logged. TLS
is verified against the target's CA bundle (the sandbox CA, or the system store).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import BadInput, ServiceFailure
from app.services.clients import ClientFactory
from app.services.context import resolve_spec_path
from app.services.explain import as_error, plain_request_error
from app.services.logs import get_logger
from app.services.redaction import redact, register_secret
from app.services.target import CloudTarget, RetrySettings
from app.services.transport import CONNECTION_ONLY, retrying_session
from app.spec import DeploymentSpec, read_small_file

log = get_logger("test")

SAMPLE_REQUEST = "sample-request.json"


@dataclass(frozen=True)
class Endpoint:
    url: str  # https://<host>/api/score
    health_url: str
    key: str = field(repr=False)


@dataclass(frozen=True)
class CallResult:
    status: int
    latency_ms: float
    cache: str  # HIT | MISS | BYPASS | "" when the function did not say
    body: Any
    error: str = ""
    # Why the cache was not used (the function's X-Cache-Detail), when it says.
    cache_detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status,
            "latency_ms": round(self.latency_ms, 3),
            "cache": self.cache,
            "body": self.body,
        }
        if self.cache_detail:
            data["cache_detail"] = self.cache_detail
        if self.error:
            data["error"] = self.error
        return data


# Reading host keys while the Functions host starts answers 400 "Encountered an error
# (InternalServerError) from host runtime." (App Service's own error body): asked
# again this many times, a pause of the target's health interval (at least 1 s) apart.
KEY_ATTEMPTS = 10


def find_endpoint(
    spec: DeploymentSpec, target: CloudTarget, clients: ClientFactory,
    say: Callable[[str], None] | None = None,
) -> Endpoint:
    """The scoring URL from the site, then (once the host answers) a function key.

    Keys come from the Functions host through ARM, so they are read only after the
    health route answers, and read again while the host is still starting.
    """
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    web = clients.web()
    group, name = spec.resource_group.name, spec.function_app.name
    try:
        site = web.web_apps.get(group, name)
    except ResourceNotFoundError:
        raise BadInput(
            f"function app {name} does not exist in resource group {group}",
            "Deploy the spec first: mlcache-deploy deploy SPEC",
        ) from None
    except HttpResponseError as exc:
        raise as_error(exc, prefix=f"reading {name} from ARM: ") from None
    host = site.default_host_name
    if not host:
        raise ServiceFailure(f"function app {name} has no host name yet")
    health_url = f"https://{host}/api/health"
    if not wait_until_up(health_url, target, say) and say is not None:
        say(f"the function app did not answer {health_url} within "
            f"{target.health_timeout_s:.0f} s; calling it anyway")
    key = read_function_key(clients, group, name, max(1.0, target.health_poll_s))
    return Endpoint(f"https://{host}/api/score", health_url, key)


def read_function_key(clients: ClientFactory, group: str, name: str, pause: float) -> str:
    """The function key (default, else any, else the master key), registered as a secret."""
    from azure.core.exceptions import HttpResponseError

    for attempt in range(1, KEY_ATTEMPTS + 1):
        try:
            keys = clients.web().web_apps.list_host_keys(group, name)
            break
        except HttpResponseError as exc:
            if attempt == KEY_ATTEMPTS or not _host_starting(exc):
                raise as_error(exc, prefix=f"reading the function keys of {name}: ") from None
            log.info("host keys of %s not ready (attempt %d): the host is starting", name,
                     attempt)
            time.sleep(pause)
    function_keys = dict(keys.function_keys or {})
    key = function_keys.get("default") or next(iter(function_keys.values()), None)
    key = key or keys.master_key
    if not key:
        raise ServiceFailure(f"ARM returned no function key for {name}")
    register_secret(key)
    register_secret(keys.master_key)
    for value in function_keys.values():
        register_secret(value)
    return key


def _host_starting(exc: BaseException) -> bool:
    from app.services.explain import describe

    status = getattr(exc, "status_code", None)
    return status in (400, 500, 502, 503) and "host runtime" in describe(exc).message.lower()


def default_payload(spec: DeploymentSpec, spec_dir: Path) -> bytes:
    """The model folder's sample request (what `test` sends without --payload)."""
    if spec.image.build_from:
        candidate = resolve_spec_path(spec.image.build_from, spec_dir) / SAMPLE_REQUEST
        if candidate.is_file():
            return candidate.read_bytes()
    raise BadInput(
        "no sample request to send: the spec's image has no model folder with "
        f"{SAMPLE_REQUEST}",
        "Give one with --payload FILE (a JSON request body).",
    )


# Azure Functions refuses HTTP request bodies over 100 MB.
MAX_PAYLOAD_BYTES = 100 * 1024 * 1024


def read_payload(path: str) -> bytes:
    """A JSON request body from a regular file (a FIFO or a device is refused, not read)."""
    try:
        data = read_small_file(Path(path), "a request body", MAX_PAYLOAD_BYTES)
    except BadInput as exc:
        raise BadInput(f"--payload {exc.message}") from None
    try:
        json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadInput(f"--payload {path}: not valid JSON ({exc})") from None
    return data


class ScoringClient:
    """A kept-alive HTTPS session to the function; one `call()` per request.

    A call that got no answer (a dropped or reset connection) is sent again, as
    `transport.CONNECTION_ONLY` says; an HTTP answer, a 5xx from the model included,
    is reported as it came. `retry` bounds the back-off (the target's settings;
    azure-core's defaults when not given).
    """

    def __init__(self, endpoint: Endpoint, verify: str | bool, timeout: float = 60.0,
                 retry: RetrySettings | None = None) -> None:
        self.endpoint = endpoint
        self.verify = verify
        self.timeout = timeout
        self.session = retrying_session(retry or RetrySettings(), CONNECTION_ONLY)

    def call(self, payload: bytes) -> CallResult:
        import requests

        headers = {"Content-Type": "application/json", "x-functions-key": self.endpoint.key}
        started = time.perf_counter()
        try:
            response = self.session.post(
                self.endpoint.url,
                data=payload,
                headers=headers,
                timeout=self.timeout,
                verify=self.verify,
            )
        except requests.RequestException as exc:
            latency = (time.perf_counter() - started) * 1000
            # Plain words first; the exception's own text is the detail.
            error = f"{plain_request_error(exc)} — {type(exc).__name__}: {exc}"
            return CallResult(0, latency, "", None, redact(error))
        latency = (time.perf_counter() - started) * 1000
        try:
            body: Any = response.json()
        except ValueError:
            body = redact(response.text[:2000])
        cache = response.headers.get("X-Cache", "").upper()
        error = "" if response.status_code == 200 else f"HTTP {response.status_code}"
        log.info("POST %s -> %s %s in %.1f ms", self.endpoint.url, response.status_code,
                 cache or "-", latency)
        detail = redact(response.headers.get("X-Cache-Detail", ""))[:300]
        return CallResult(response.status_code, latency, cache, body, error, detail)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ScoringClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until_up(health_url: str, target: CloudTarget,
                  say: Callable[[str], None] | None = None) -> bool:
    """The deploy's own health wait, asking only that the host is up (True at once when
    it already is); `say` hears once that it is waiting."""
    from app.services.resources.endpoint import wait_for_health

    told = False

    def waiting(answer: object) -> None:
        nonlocal told
        if not told and say is not None:
            say("waiting for the function app to start ...")
            told = True

    answer = wait_for_health(health_url, target.verify, target.health_timeout_s,
                             target.health_poll_s, lambda a: a.up, waiting)
    return answer is not None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# What a copied curl line sends instead of the key unless the key is asked for: the
# shell fills it in from the environment, so the key never lands in a clipboard
# history, a chat or a ticket by accident.
KEY_PLACEHOLDER = "$FUNCTION_KEY"


def curl_command(url: str, payload: str, ca_bundle: str = "", key: str | None = None) -> str:
    """The same call as `ScoringClient.call`, as a curl line for a POSIX shell.

    `key`: None leaves the function key out (`$FUNCTION_KEY` from the environment
    stands in for it); `ca_bundle`: the CA file to trust (the sandbox's), "" for the
    system store. Never logged: with a key it is a secret.
    """
    import shlex

    header = (shlex.quote(f"x-functions-key: {key}") if key is not None
              else f'"x-functions-key: {KEY_PLACEHOLDER}"')
    parts = ["curl", "-sS", "-i", "-X", "POST", shlex.quote(url),
             "-H", shlex.quote("Content-Type: application/json"), "-H", header]
    if ca_bundle:
        parts += ["--cacert", shlex.quote(ca_bundle)]
    parts += ["--data-binary", shlex.quote(payload)]
    return " ".join(parts)
