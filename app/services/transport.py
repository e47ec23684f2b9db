"""The one retry policy for every HTTP call that does not go through an Azure SDK client.

ARM calls get azure-core's RetryPolicy from `clients.ClientFactory`, built from the
target's `RetrySettings`. Every other call (a registry's data plane, the build
context upload and log blob of an ACR Tasks run, Kudu, the function's scoring
route) goes through a `requests.Session` made here, whose adapters carry a
`urllib3.Retry` built from the same `RetrySettings`: one bound on attempts and
back-off for the whole product, and a 429 or 503 waits as long as its Retry-After
asks.

What may be sent again is decided per call, by the `RetryRule` the caller names:

- `IDEMPOTENT`: GET, HEAD, PUT, DELETE, OPTIONS. A dropped connection, a reset, a
  429 or a 500/502/503/504 is retried. A PUT of a blob or a file replaces it, so
  sending it twice leaves the same result.
- `TOKEN_POSTS`: the same, plus POST, for calls whose POST changes nothing on the
  server but hands out a token (ACR's `/oauth2/exchange` and `/oauth2/token`):
  asking twice only mints a second token.
- `CONNECTION_ONLY`: the scoring route (POST). Scoring is a pure function of the
  body (the cache stores what the model answered for it), so a request that never
  got an answer is sent again; but any HTTP answer, a 5xx included, is the model's
  own and is reported as it came, never retried into hiding. Nor is a call whose
  answer timed out (the model may still be working on it). At most three more
  tries: someone is waiting for the answer.

Connection failures before a request was sent are retried for every method (nothing
reached the server). After the last attempt a status answer is returned as it came
(`raise_on_status=False`) so callers report it, and a connection failure raises
`requests.ConnectionError` as it always did.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.services.target import CloudTarget, RetrySettings

if TYPE_CHECKING:
    import requests
    from urllib3.util.retry import Retry

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# What Azure answers when trying again later can help: throttling and the gateway's
# and the service's temporary failures (a 501 or 505 never gets better).
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryRule:
    """Which methods may be sent again, on which HTTP answers, and at most how often
    (None: as often as the target's `RetrySettings.total` allows)."""

    methods: frozenset[str]
    statuses: frozenset[int]
    most: int | None = None
    # False: a request whose answer timed out may still be running; not sent again.
    read_timeouts: bool = True


IDEMPOTENT = RetryRule(IDEMPOTENT_METHODS, TRANSIENT_STATUSES)
TOKEN_POSTS = RetryRule(IDEMPOTENT_METHODS | {"POST"}, TRANSIENT_STATUSES)
# A test call has a person waiting for it: three more tries at most, not minutes.
CONNECTION_ONLY = RetryRule(IDEMPOTENT_METHODS | {"POST"}, frozenset(), most=3,
                            read_timeouts=False)


def retry_policy(settings: RetrySettings, rule: RetryRule = IDEMPOTENT) -> Retry:
    """A `urllib3.Retry` with the bound and back-off of `settings` (as azure-core's)."""
    total = settings.total if rule.most is None else min(settings.total, rule.most)
    policy: Retry = _policy_class()(
        total=total,
        backoff_factor=settings.backoff_factor,
        backoff_max=settings.backoff_max,
        allowed_methods=rule.methods,
        status_forcelist=rule.statuses,
        # Without statuses to retry, a 503's Retry-After must not make urllib3 retry it.
        respect_retry_after_header=bool(rule.statuses),
        raise_on_status=False,
        raise_on_redirect=False,
    )
    policy.read_timeouts = rule.read_timeouts  # type: ignore[attr-defined]
    return policy


@functools.cache
def _policy_class() -> type[Retry]:
    """urllib3's Retry, made where first needed (urllib3 loads with requests, lazily)."""
    from urllib3.exceptions import InvalidHeader, MaxRetryError, ProtocolError, ReadTimeoutError
    from urllib3.util.retry import Retry

    class Policy(Retry):
        """Retry, with the two answers a person should see unchanged.

        A read that timed out, or a connection dropped mid-answer, raises its own
        error once the attempts are spent (not MaxRetryError), so requests still
        reports a timeout as `Timeout`. Retry-After in fractional seconds (which
        azure-core accepts) is honoured rather than refused as a bad header.
        """

        read_timeouts = True

        def new(self, **kw: Any) -> Policy:
            retry = super().new(**kw)
            retry.read_timeouts = self.read_timeouts
            return retry

        def increment(self, method: str | None = None, url: str | None = None,
                      response: Any = None, error: Exception | None = None,
                      _pool: Any = None, _stacktrace: Any = None) -> Policy:
            if isinstance(error, ReadTimeoutError) and not self.read_timeouts:
                raise error
            try:
                return super().increment(method, url, response, error, _pool, _stacktrace)
            except MaxRetryError as exc:
                if isinstance(exc.reason, ReadTimeoutError | ProtocolError):
                    raise exc.reason from None
                raise

        def parse_retry_after(self, retry_after: str) -> float:
            try:
                return super().parse_retry_after(retry_after)
            except InvalidHeader:
                try:
                    seconds = float(retry_after)
                except ValueError:
                    return 0.0  # unreadable: the back-off decides
                return min(max(seconds, 0.0), float(self.retry_after_max))

    return Policy


def retrying_session(
    retry: CloudTarget | RetrySettings, rule: RetryRule = IDEMPOTENT
) -> requests.Session:
    """A `requests.Session` whose every call follows `retry_policy` (close it after use)."""
    import requests
    from requests.adapters import HTTPAdapter

    settings = retry.retry if isinstance(retry, CloudTarget) else retry
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry_policy(settings, rule))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


__all__ = [
    "CONNECTION_ONLY",
    "IDEMPOTENT",
    "TOKEN_POSTS",
    "TRANSIENT_STATUSES",
    "RetryRule",
    "retry_policy",
    "retrying_session",
]
