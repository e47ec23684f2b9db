"""Cache-aside scoring: look the request up in Redis, score on a miss, store with a TTL.

Plain Python with no Azure Functions import, so the whole behaviour (hit, miss,
expiry, a dead cache, bad JSON, a failing model) is testable against a real
redis-server. `function_app.py` only adapts HTTP to `CacheAsideScorer.score`.

The seed article's entry script called the model twice and never stored a
result; here the key is sha256(model version + canonical JSON of the body), so
two requests with the same meaning share one entry and a new model version never
answers from an older model's results.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("mlcache.scoring")

KEY_PREFIX = "mlcache:score:"
DEFAULT_TTL_SECONDS = 3600
ENTRA_SCOPE = "https://redis.azure.com/.default"

# A dead or unreachable cache must cost milliseconds: a short connect timeout,
# no client-side retries, and a breaker that skips the cache for a while after
# a failure instead of paying the timeout on every request.
CONNECT_TIMEOUT_SECONDS = 0.25
SOCKET_TIMEOUT_SECONDS = 0.5
BREAKER_FIRST_PAUSE_SECONDS = 1.0
BREAKER_MAX_PAUSE_SECONDS = 30.0


class BadRequest(Exception):
    """The request body cannot be scored (not JSON, empty)."""


class ModelError(Exception):
    """The entry script's `run` raised; the message is safe to show the caller."""


class CacheUnavailable(Exception):
    """Redis could not be used for this request."""


def canonical_json(value: Any) -> str:
    """The one spelling of a JSON value: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(model_version: str, canonical_body: str) -> str:
    digest = hashlib.sha256()
    digest.update(model_version.encode("utf-8"))
    digest.update(b"\x00")
    digest.update(canonical_body.encode("utf-8"))
    return KEY_PREFIX + digest.hexdigest()


def parse_body(body: bytes) -> tuple[Any, str]:
    """Decode and parse the request body; return (value, raw text). Raises BadRequest."""
    if not body.strip():
        raise BadRequest('request body is empty; send a JSON document, e.g. {"data": [[...]]}')
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"request body is not UTF-8 text (byte {exc.start})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise BadRequest(f"request body cannot be read: {exc}") from None
    try:
        # The canonical form is the cache key's input: it must be UTF-8 text, which
        # a lone surrogate ("\\ud800", valid JSON escape) is not.
        canonical_json(value).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("request body holds a lone UTF-16 surrogate, which is not text") \
            from None
    except RecursionError:
        raise BadRequest("request body is nested too deeply") from None
    return value, text


@dataclass(frozen=True)
class RedisSettings:
    """How to reach the cache, read from the function app's application settings."""

    host: str
    port: int
    key: str = ""
    auth: str = "access-keys"
    username: str = ""
    ca_bundle: str = ""
    ttl_seconds: int = DEFAULT_TTL_SECONDS

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> RedisSettings | None:
        """None when no cache is configured (REDIS_HOST unset): scoring still works."""
        env = os.environ if env is None else env
        host = env.get("REDIS_HOST", "").strip()
        if not host:
            return None
        auth = env.get("REDIS_AUTH", "access-keys").strip().lower() or "access-keys"
        if auth not in ("access-keys", "entra"):
            raise ValueError(f"REDIS_AUTH must be 'access-keys' or 'entra', not {auth!r}")
        try:
            port = int(env.get("REDIS_PORT", "6380"))
            ttl = int(env.get("REDIS_TTL_SECONDS", str(DEFAULT_TTL_SECONDS)))
        except ValueError as exc:
            raise ValueError(f"REDIS_PORT and REDIS_TTL_SECONDS must be integers: {exc}") from None
        if ttl <= 0:
            raise ValueError("REDIS_TTL_SECONDS must be a positive number of seconds")
        # Entra without REDIS_USERNAME: the token's own object id (`oid`) is the user.
        username = env.get("REDIS_USERNAME", "").strip()
        return cls(
            host=host,
            port=port,
            key=env.get("REDIS_KEY", ""),
            auth=auth,
            username=username,
            ca_bundle=env.get("REDIS_CA_BUNDLE", ""),
            ttl_seconds=ttl,
        )


class _EntraPassword:
    """A Microsoft Entra access token for Redis, renewed before it expires."""

    def __init__(self, credential: Any = None) -> None:
        if credential is None:
            from azure.identity import ManagedIdentityCredential

            credential = ManagedIdentityCredential()
        self._credential = credential
        self._token = ""
        self._expires_on = 0.0

    def current(self) -> tuple[str, float]:
        # Renew five minutes early: Azure closes connections whose token expired.
        if time.time() > self._expires_on - 300:
            token = self._credential.get_token(ENTRA_SCOPE)
            self._token, self._expires_on = token.token, float(token.expires_on)
        return self._token, self._expires_on

    def object_id(self) -> str:
        """The identity's object id, read from the token (`oid`), as Microsoft's
        redis-entraid credential provider names the Redis user when none is given."""
        token, _expires = self.current()
        try:
            payload = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError) as exc:
            raise ValueError("the Microsoft Entra token is not a JWT") from exc
        oid = str(claims.get("oid") or "") if isinstance(claims, dict) else ""
        if not oid:
            raise ValueError("the Microsoft Entra token names no object id (oid)")
        return oid


@dataclass
class _Breaker:
    """After a failure, skip the cache for a pause that doubles up to a ceiling.

    Only a failure of a call made while the cache was allowed counts: the requests
    that were already in flight when it opened fail too, and must not double the
    pause each (eight concurrent requests once kept a recovered cache skipped for
    half a minute).
    """

    pause: float = 0.0
    open_until: float = 0.0
    opened_at: float = 0.0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def allows(self) -> bool:
        return time.monotonic() >= self.open_until

    def failed(self, error: str, started: float | None = None) -> None:
        """Open (or reopen) the breaker; `started` is when the failed call began."""
        with self.lock:
            now = time.monotonic()
            began = now if started is None else started
            self.last_error = error
            if now < self.open_until or began < self.opened_at:
                return  # the breaker was opened after this call began: already counted
            self.pause = min(
                BREAKER_MAX_PAUSE_SECONDS,
                self.pause * 2 if self.pause else BREAKER_FIRST_PAUSE_SECONDS,
            )
            self.opened_at = now
            self.open_until = now + self.pause

    def succeeded(self) -> None:
        if self.pause:
            with self.lock:
                self.pause = 0.0
                self.open_until = 0.0
                self.last_error = ""


class RedisCache:
    """A TLS Redis client with short timeouts and a breaker; every failure is CacheUnavailable."""

    def __init__(self, settings: RedisSettings, credential: Any = None) -> None:
        """`credential`: a TokenCredential for `entra` (default: the managed identity)."""
        self.settings = settings
        self._breaker = _Breaker()
        self._entra = _EntraPassword(credential) if settings.auth == "entra" else None
        self._client: redis.Redis | None = None
        self._client_expires = float("inf")
        self._lock = threading.Lock()

    def _connect(self) -> redis.Redis:
        s = self.settings
        password, username, expires = s.key or None, None, float("inf")
        if self._entra is not None:
            password, expires = self._entra.current()
            username = s.username or self._entra.object_id()
        client = redis.Redis(
            host=s.host,
            port=s.port,
            username=username,
            password=password,
            ssl=True,
            ssl_cert_reqs="required",
            ssl_check_hostname=True,
            ssl_ca_certs=s.ca_bundle or None,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._client_expires = expires - 300
        return client

    def _get_client(self) -> redis.Redis:
        with self._lock:
            if self._client is None or time.time() > self._client_expires:
                old, self._client = self._client, self._connect()
                if old is not None:
                    old.close()
            return self._client

    def _call(self, operation: Callable[[redis.Redis], Any]) -> Any:
        if not self._breaker.allows():
            raise CacheUnavailable(
                f"cache skipped after a recent failure ({self._breaker.last_error})"
            )
        started = time.monotonic()
        try:
            result = operation(self._get_client())
        except (redis.RedisError, OSError) as exc:
            # Never echo the exception text of an auth failure verbatim: it is
            # harmless today, but the class name is enough to diagnose.
            reason = _describe(exc)
            self._breaker.failed(reason, started)
            log.warning("cache unavailable: %s", reason)
            raise CacheUnavailable(reason) from None
        except Exception as exc:  # token acquisition (Entra) failures land here
            reason = f"{type(exc).__name__}"
            self._breaker.failed(reason, started)
            log.warning("cache unavailable: %s", reason)
            raise CacheUnavailable(reason) from None
        self._breaker.succeeded()
        return result

    def get(self, key: str) -> bytes | None:
        value: bytes | None = self._call(lambda c: c.get(key))
        return value

    def set(self, key: str, value: bytes) -> None:
        self._call(lambda c: c.set(key, value, ex=self.settings.ttl_seconds))

    def ping(self) -> None:
        """Reach the server without touching any key; bypasses the breaker pause."""
        try:
            self._get_client().ping()
        except (redis.RedisError, OSError) as exc:
            raise CacheUnavailable(_describe(exc)) from None
        except Exception as exc:
            raise CacheUnavailable(type(exc).__name__) from None
        self._breaker.succeeded()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, redis.AuthenticationError):
        return "authentication failed"
    if isinstance(exc, redis.TimeoutError):
        return "timed out"
    if isinstance(exc, redis.ConnectionError):
        text = str(exc).strip().rstrip(".")
        return f"connection failed ({text})" if text else "connection failed"
    return type(exc).__name__


@dataclass(frozen=True)
class ScoreResult:
    """What the HTTP layer needs: the JSON body and how it was produced."""

    body: bytes
    cache: str  # HIT | MISS | BYPASS
    elapsed_ms: float
    cache_detail: str = ""


class _Flights:
    """One model run per key at a time: identical concurrent misses wait for the first.

    Without it a burst of the same request each ran the model (and each wrote the
    same entry). The leader runs; followers take its payload, or its error.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, tuple[threading.Event, list[Any]]] = {}

    def run(self, key: str, work: Callable[[], Any]) -> tuple[Any, bool]:
        """`work()`'s payload, and whether this caller ran it (the leader)."""
        with self._lock:
            flight = self._running.get(key)
            leader = flight is None
            if flight is None:
                flight = (threading.Event(), [])
                self._running[key] = flight
        done, box = flight
        if not leader:
            done.wait()
            outcome = box[0]
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome, False
        try:
            payload = work()
            box.append(payload)
            return payload, True
        except BaseException as exc:
            box.append(exc)
            raise
        finally:
            with self._lock:
                self._running.pop(key, None)
            done.set()


class CacheAsideScorer:
    """Score requests through the cache. `run` takes the raw JSON text or the parsed value."""

    def __init__(
        self,
        run: Callable[[Any], Any],
        model_version: str,
        cache: RedisCache | None,
        *,
        pass_raw_text: bool = True,
        no_cache_reason: str = "no cache configured",
    ) -> None:
        self._run = run
        self.model_version = model_version
        self.cache = cache
        self.no_cache_reason = no_cache_reason
        self._pass_raw_text = pass_raw_text
        self._flights = _Flights()

    def _predict(self, text: str, value: Any) -> bytes:
        return _predict_payload(self._run, text if self._pass_raw_text else value)

    def score(self, body: bytes) -> ScoreResult:
        """Raises BadRequest (caller's fault) or ModelError (the model's); never Redis errors."""
        started = time.perf_counter()
        value, text = parse_body(body)
        key = cache_key(self.model_version, canonical_json(value))
        if self.cache is None:
            payload = self._predict(text, value)
            return ScoreResult(payload, "BYPASS", _ms_since(started), self.no_cache_reason)
        try:
            cached = self.cache.get(key)
        except CacheUnavailable as exc:
            cached, detail = None, f"cache unavailable: {exc}"
        else:
            detail = ""
            if cached is not None:
                return ScoreResult(cached, "HIT", _ms_since(started))
        # One run per key: a request that arrives while another computes it waits.
        (payload, cache, detail), _ = self._flights.run(
            key, lambda: self._fill(key, text, value, detail))
        return ScoreResult(payload, cache, _ms_since(started), detail)

    def _fill(self, key: str, text: str, value: Any, detail: str) -> tuple[bytes, str, str]:
        """Run the model for `key` and store the result: (payload, X-Cache, detail)."""
        assert self.cache is not None
        if not detail:
            # The request before this one may have stored it while we waited to run.
            try:
                stored = self.cache.get(key)
            except CacheUnavailable as exc:
                stored, detail = None, f"cache unavailable: {exc}"
            if stored is not None:
                return stored, "HIT", ""
        payload = self._predict(text, value)
        if detail:
            return payload, "BYPASS", detail
        try:
            self.cache.set(key, payload)
        except CacheUnavailable as exc:
            return payload, "BYPASS", f"cache unavailable: {exc}"
        return payload, "MISS", ""


def _predict_payload(run: Callable[[Any], Any], argument: Any) -> bytes:
    try:
        result = run(argument)
    except Exception as exc:
        log.exception("run() raised")
        raise ModelError(f"the model's run() failed: {type(exc).__name__}: {exc}") from None
    try:
        return canonical_json(result).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ModelError(f"run() returned a value that is not JSON serializable: {exc}") from None


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def model_files_version(model_dir: str) -> str:
    """sha256 over every file's relative path and bytes: the default MODEL_VERSION."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(model_dir):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, model_dir).replace(os.sep, "/").encode("utf-8"))
            digest.update(b"\x00")
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            digest.update(b"\x00")
    return digest.hexdigest()[:16]
