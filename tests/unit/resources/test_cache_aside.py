"""The cache-aside scoring wrapper against a real TLS redis-server."""

from __future__ import annotations

import json
import time
from typing import Any

import cache_aside
import pytest
from azure.core.credentials import AccessToken
from cache_aside import (
    BadRequest,
    CacheAsideScorer,
    ModelError,
    RedisCache,
    RedisSettings,
    cache_key,
    canonical_json,
)


class CountingModel:
    """A stand-in entry script `run(raw_data)`: doubles the numbers, counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, raw: str) -> Any:
        self.calls += 1
        data = json.loads(raw)["data"]
        if data == "boom":
            raise ValueError("cannot score 'boom'")
        return {"predictions": [2 * x for x in data]}


class Clock:
    """The template's `time` module with a hand that the test moves: pauses and token
    lifetimes pass when the test says so, not when a loaded machine gets round to it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def time(self) -> float:
        return time.time() + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def settings_for(server: Any, **overrides: Any) -> RedisSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": server.port,
        "key": server.password,
        "ca_bundle": str(server.ca_file),
    }
    values.update(overrides)
    return RedisSettings(**values)


def test_miss_then_hit_returns_the_stored_result_without_running_the_model(
    tls_redis: Any,
) -> None:
    model = CountingModel()
    scorer = CacheAsideScorer(model, "v1", RedisCache(settings_for(tls_redis)))

    first = scorer.score(b'{"data": [1, 2, 3], "id": "a"}')
    # Same document, other key order and spacing: the canonical form makes it one entry.
    second = scorer.score(b'{ "id":"a",  "data":[1,2,3] }')

    assert (first.cache, second.cache) == ("MISS", "HIT")
    assert model.calls == 1
    assert json.loads(first.body) == json.loads(second.body) == {"predictions": [2, 4, 6]}
    key = cache_key("v1", canonical_json({"data": [1, 2, 3], "id": "a"}))
    assert tls_redis.client().get(key) == first.body


def test_entry_is_stored_with_the_configured_ttl(tls_redis: Any) -> None:
    scorer = CacheAsideScorer(
        CountingModel(), "v1", RedisCache(settings_for(tls_redis, ttl_seconds=120))
    )
    scorer.score(b'{"data": [5]}')
    ttl = tls_redis.client().ttl(cache_key("v1", canonical_json({"data": [5]})))
    assert 0 < ttl <= 120


def test_expired_entry_is_scored_again(tls_redis: Any) -> None:
    model = CountingModel()
    scorer = CacheAsideScorer(model, "v1", RedisCache(settings_for(tls_redis, ttl_seconds=1)))
    key = cache_key("v1", canonical_json({"data": [7]}))

    assert scorer.score(b'{"data": [7]}').cache == "MISS"
    deadline = time.monotonic() + 5
    while tls_redis.client().exists(key) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not tls_redis.client().exists(key), "redis never expired the entry"

    again = scorer.score(b'{"data": [7]}')
    assert again.cache == "MISS"
    assert model.calls == 2


def test_model_version_is_part_of_the_key(tls_redis: Any) -> None:
    model = CountingModel()
    cache = RedisCache(settings_for(tls_redis))
    CacheAsideScorer(model, "v1", cache).score(b'{"data": [1]}')
    result = CacheAsideScorer(model, "v2", cache).score(b'{"data": [1]}')
    assert result.cache == "MISS"
    assert model.calls == 2


def test_redis_down_still_answers_from_the_model_and_backs_off(dead_port: int) -> None:
    model = CountingModel()
    dead = RedisSettings(host="127.0.0.1", port=dead_port, key="k")
    scorer = CacheAsideScorer(model, "v1", RedisCache(dead))

    first = scorer.score(b'{"data": [4]}')
    second = scorer.score(b'{"data": [4]}')

    assert first.cache == second.cache == "BYPASS"
    assert json.loads(first.body) == {"predictions": [8]}
    assert first.cache_detail.startswith("cache unavailable: connection failed")
    # The breaker skips the cache instead of trying the dead server again.
    assert "skipped after a recent failure" in second.cache_detail
    assert model.calls == 2


def test_redis_stopping_mid_way_bypasses(tls_redis: Any) -> None:
    scorer = CacheAsideScorer(CountingModel(), "v1", RedisCache(settings_for(tls_redis)))
    assert scorer.score(b'{"data": [1]}').cache == "MISS"

    tls_redis.stop()
    down = scorer.score(b'{"data": [1]}')
    assert down.cache == "BYPASS"
    assert json.loads(down.body) == {"predictions": [2]}


def test_cache_coming_back_is_used_again_after_the_pause(
    dead_port: int, ca: Any, start_redis_on: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(cache_aside, "time", clock)
    settings = RedisSettings(
        host="127.0.0.1", port=dead_port, key="s3cret-cache-key", ca_bundle=str(ca.cert_file)
    )
    cache = RedisCache(settings)
    scorer = CacheAsideScorer(CountingModel(), "v1", cache)
    try:
        assert scorer.score(b'{"data": [1]}').cache == "BYPASS"
        start_redis_on(dead_port)
        # Still inside the pause (the template's clock has not moved): not tried.
        assert "skipped" in scorer.score(b'{"data": [1]}').cache_detail
        clock.advance(cache_aside.BREAKER_FIRST_PAUSE_SECONDS + 0.01)
        assert scorer.score(b'{"data": [1]}').cache == "MISS"
        assert scorer.score(b'{"data": [1]}').cache == "HIT"
    finally:
        cache.close()


def test_wrong_key_bypasses_and_never_reveals_the_key(tls_redis: Any) -> None:
    scorer = CacheAsideScorer(
        CountingModel(), "v1", RedisCache(settings_for(tls_redis, key="not-the-key"))
    )
    result = scorer.score(b'{"data": [1]}')
    assert result.cache == "BYPASS"
    assert result.cache_detail == "cache unavailable: authentication failed"
    assert "not-the-key" not in result.cache_detail


def test_certificate_is_verified(tls_redis: Any) -> None:
    # Without the private CA the server's certificate cannot be trusted: no cache.
    scorer = CacheAsideScorer(
        CountingModel(), "v1", RedisCache(settings_for(tls_redis, ca_bundle=""))
    )
    result = scorer.score(b'{"data": [1]}')
    assert result.cache == "BYPASS"
    assert tls_redis.client().dbsize() == 0


def test_no_cache_configured_scores_and_says_so() -> None:
    result = CacheAsideScorer(CountingModel(), "v1", None).score(b'{"data": [3]}')
    assert result.cache == "BYPASS"
    assert result.cache_detail == "no cache configured"
    assert json.loads(result.body) == {"predictions": [6]}
    reason = "cache settings invalid: REDIS_PORT and REDIS_TTL_SECONDS must be integers"
    other = CacheAsideScorer(CountingModel(), "v1", None, no_cache_reason=reason)
    assert other.score(b'{"data": [3]}').cache_detail == reason


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "request body is empty"),
        (b"   ", "request body is empty"),
        (b'{"data": [1,', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_bad_request_bodies_are_refused_before_the_cache(
    tls_redis: Any, body: bytes, message: str
) -> None:
    model = CountingModel()
    scorer = CacheAsideScorer(model, "v1", RedisCache(settings_for(tls_redis)))
    with pytest.raises(BadRequest, match=message):
        scorer.score(body)
    assert model.calls == 0
    assert tls_redis.client().dbsize() == 0


def test_exception_in_run_is_a_model_error_and_nothing_is_cached(tls_redis: Any) -> None:
    scorer = CacheAsideScorer(CountingModel(), "v1", RedisCache(settings_for(tls_redis)))
    with pytest.raises(ModelError) as info:
        scorer.score(b'{"data": "boom"}')
    assert str(info.value) == "the model's run() failed: ValueError: cannot score 'boom'"
    assert "Traceback" not in str(info.value)
    assert tls_redis.client().dbsize() == 0


def test_non_json_result_is_a_model_error(tls_redis: Any) -> None:
    scorer = CacheAsideScorer(lambda raw: {1, 2}, "v1", RedisCache(settings_for(tls_redis)))
    with pytest.raises(ModelError, match="not JSON serializable"):
        scorer.score(b'{"data": 1}')


def test_parsed_input_mode_passes_the_value() -> None:
    seen: list[Any] = []
    scorer = CacheAsideScorer(lambda value: seen.append(value) or 1, "v", None, pass_raw_text=False)
    scorer.score(b'{"data": [1]}')
    assert seen == [{"data": [1]}]


def test_health_ping_touches_no_key(tls_redis: Any) -> None:
    cache = RedisCache(settings_for(tls_redis))
    cache.ping()
    assert tls_redis.client().dbsize() == 0


def test_settings_from_environment_contract() -> None:
    assert RedisSettings.from_environment({}) is None
    settings = RedisSettings.from_environment(
        {
            "REDIS_HOST": "c.redis.cache.windows.net",
            "REDIS_PORT": "6380",
            "REDIS_KEY": "k",
            "REDIS_TTL_SECONDS": "60",
        }
    )
    assert settings == RedisSettings("c.redis.cache.windows.net", 6380, "k", ttl_seconds=60)
    with pytest.raises(ValueError, match="REDIS_AUTH"):
        RedisSettings.from_environment({"REDIS_HOST": "h", "REDIS_AUTH": "password"})
    entra = RedisSettings.from_environment(
        {"REDIS_HOST": "h", "REDIS_AUTH": "entra", "REDIS_USERNAME": "0000-oid"}
    )
    assert entra is not None and (entra.auth, entra.username, entra.key) == (
        "entra",
        "0000-oid",
        "",
    )
    # Without REDIS_USERNAME the token's object id names the user (see the test below).
    bare = RedisSettings.from_environment({"REDIS_HOST": "h", "REDIS_AUTH": "entra"})
    assert bare is not None and bare.username == ""
    with pytest.raises(ValueError, match="integers"):
        RedisSettings.from_environment({"REDIS_HOST": "h", "REDIS_PORT": "tls"})


class IssuedTokens:
    """A TokenCredential issuing tokens that the test's redis ACL accepts, with a set lifetime."""

    def __init__(self, tokens: list[str], lifetime: float) -> None:
        self.tokens = tokens
        self.lifetime = lifetime
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.tokens[len(self.scopes) - 1], int(time.time() + self.lifetime))


def test_entra_authenticates_as_the_identity_with_its_token(tls_redis: Any) -> None:
    # Azure Redis with Entra: user name = the identity's object id, password = the token.
    admin = tls_redis.client()
    admin.acl_setuser(
        "oid-1234", enabled=True, passwords=["+token-one"], keys=["*"], commands=["+@all"]
    )
    credential = IssuedTokens(["token-one"], lifetime=3600)
    cache = RedisCache(
        settings_for(tls_redis, key="", auth="entra", username="oid-1234"), credential=credential
    )
    scorer = CacheAsideScorer(CountingModel(), "v1", cache)
    assert scorer.score(b'{"data": [1]}').cache == "MISS"
    assert scorer.score(b'{"data": [1]}').cache == "HIT"
    assert credential.scopes == [("https://redis.azure.com/.default",)]
    assert cache._get_client().acl_whoami() == "oid-1234"


def test_entra_token_close_to_expiry_is_renewed_with_a_new_connection(
    tls_redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = tls_redis.client()
    admin.acl_setuser(
        "oid-5678", enabled=True, passwords=["+first", "+renewed"], keys=["*"], commands=["+@all"]
    )
    clock = Clock()
    monkeypatch.setattr(cache_aside, "time", clock)
    # Renewal happens five minutes before expiry.
    credential = IssuedTokens(["first", "renewed"], lifetime=3600)
    cache = RedisCache(
        settings_for(tls_redis, key="", auth="entra", username="oid-5678"), credential=credential
    )
    cache.ping()
    assert len(credential.scopes) == 1
    admin.acl_setuser(  # revoke the first token
        "oid-5678", enabled=True, passwords=["-first"], keys=["*"], commands=["+@all"]
    )
    clock.advance(3600 - 299)
    cache.ping()  # a new connection, authenticated with the renewed token
    assert len(credential.scopes) == 2


def test_identical_concurrent_misses_run_the_model_once(tls_redis: Any) -> None:
    import threading

    release = threading.Event()
    calls: list[int] = []

    def slow_model(raw: str) -> Any:
        calls.append(1)
        release.wait(10)  # hold the first run until every request has arrived
        return {"predictions": json.loads(raw)["data"]}

    scorer = CacheAsideScorer(slow_model, "v-flight", RedisCache(settings_for(tls_redis)))
    body = b'{"data": [7, 8], "id": "burst"}'
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(scorer.score(body)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    # Wait until the leader runs and the others queue behind it, then let it finish.
    deadline = time.monotonic() + 10
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8
    assert {json.loads(r.body)["predictions"][0] for r in results} == {7}
    # Requests that came after the entry was stored read it from Redis; none ran it again.
    assert len(calls) == 1


def test_failures_in_flight_when_the_breaker_opens_do_not_lengthen_its_pause() -> None:
    breaker = cache_aside._Breaker()
    began = time.monotonic()
    for _ in range(8):  # eight requests that were all waiting on the stalled cache
        breaker.failed("TimeoutError", began)
    assert breaker.pause == cache_aside.BREAKER_FIRST_PAUSE_SECONDS
    # A call made after the pause ended that fails again doubles it, once.
    breaker.open_until = time.monotonic() - 0.001
    breaker.failed("TimeoutError", time.monotonic())
    assert breaker.pause == 2 * cache_aside.BREAKER_FIRST_PAUSE_SECONDS


@pytest.mark.parametrize(("body", "words"), [
    (b"[" * 1000 + b"]" * 1000, "nested too deeply"),
    (b'{"data": ' + b"9" * 5000 + b"}", "cannot be read"),
    (b'{"data": "\\ud800"}', "surrogate"),
])
def test_hostile_client_input_is_a_bad_request_not_a_server_error(body: bytes,
                                                                   words: str) -> None:
    scorer = CacheAsideScorer(CountingModel(), "v1", None)
    with pytest.raises(BadRequest, match=words):
        scorer.score(body)


def _jwt(claims: dict[str, Any]) -> str:
    import base64
    import json

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2ln"


def test_entra_without_a_user_name_signs_in_as_the_tokens_object_id(tls_redis: Any) -> None:
    token = _jwt({"oid": "5d0c7a7e-0000-4000-8000-000000000001", "aud": "https://redis.azure.com"})
    tls_redis.client().acl_setuser("5d0c7a7e-0000-4000-8000-000000000001", enabled=True,
                                   passwords=[f"+{token}"], keys=["*"], commands=["+@all"])
    cache = RedisCache(settings_for(tls_redis, key="", auth="entra", username=""),
                       credential=IssuedTokens([token], lifetime=3600))
    scorer = CacheAsideScorer(CountingModel(), "v1", cache)
    assert scorer.score(b'{"data": [1]}').cache == "MISS"
    assert cache._get_client().acl_whoami() == "5d0c7a7e-0000-4000-8000-000000000001"
    unnamed = RedisCache(settings_for(tls_redis, key="", auth="entra", username=""),
                         credential=IssuedTokens([_jwt({"aud": "x"})], lifetime=3600))
    outcome = CacheAsideScorer(CountingModel(), "v1", unnamed).score(b'{"data": [1]}')
    assert outcome.cache == "BYPASS"
