"""Scoring latency through the cache: hit vs miss, as a client sees it.

Builds the sample package, runs it in a function host with a real TLS
redis-server in front of the model, and times round trips on one kept-alive
HTTPS connection (certificate verified against the local CA). Each iteration
sends a new body (a miss: model runs, result stored) and then the same body
again (a hit: answered from Redis), then GETs the health route on the same
connection (the floor: the host and one Redis PING, no model, no key lookup), so
`hit_over_floor` says what a hit costs beyond the least any call can cost. Prints
one `name=value` line per figure.

    .venv/bin/python benchmarks/scoring.py [--calls 200] [--target sandbox|local]

`--target sandbox` (default) deploys through the sandbox cloud with the real
Azure SDK clients: resource group, cache, registry push, plan, function app,
then calls the site the sandbox runs. `--target local` skips ARM and wires a
redis-server and a FunctionHost directly (same host code, same package), and
afterwards stops the redis-server to report what scoring costs with the cache
down (`bypass_*`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.paths import resources_dir  # noqa: E402
from app.services.packaging import build_package  # noqa: E402

SAMPLE = resources_dir() / "sample-model"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    path: str  # /api/score?code=...
    ca_file: Path


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


@contextmanager
def local_target(work: Path, bypass: dict[str, float]) -> Iterator[Endpoint]:
    """redis-server (TLS) + FunctionHost on the built sample package, no ARM.

    After the caller's measurement the redis-server is stopped and `bypass` is
    filled with the latency of scoring while the cache is down.
    """
    from app.sandbox.certs import CertificateAuthority
    from app.sandbox.functionhost import FunctionHost
    from app.sandbox.processes import ProcessSupervisor
    from app.sandbox.redishost import start_keyed_redis

    ca = CertificateAuthority(work / "ca")
    host_leaf = ca.issue_leaf(work / "host", "host")
    password, function_key = "bench-redis-key", "bench-function-key"
    supervisor = ProcessSupervisor()
    host = None
    try:
        server = start_keyed_redis(work / "redis", ca, password, supervisor)
        port = server.spec.tls_port
        package = build_package(SAMPLE, work / "package").out_dir
        host = FunctionHost(
            package_dir=package,
            app_settings={
                "REDIS_HOST": "127.0.0.1",
                "REDIS_PORT": str(port),
                "REDIS_KEY": password,
                "REDIS_CA_BUNDLE": str(ca.cert_file),
            },
            function_keys={"default": function_key},
            master_key="bench-master-key",
            cert_file=host_leaf.cert_file,
            key_file=host_leaf.key_file,
            log_file=work / "host.log",
        )
        host.start()
        endpoint = Endpoint("127.0.0.1", host.port, f"/api/score?code={function_key}", ca.cert_file)
        yield endpoint
        # Then the cache dies: what does scoring cost without it?
        server.stop()
        bypass.update(measure_bypass(endpoint, 100))
    finally:
        if host is not None:
            host.stop()
        supervisor.close()


@contextmanager
def sandbox_target(work: Path) -> Iterator[Endpoint]:
    """Deploy the sample through the sandbox cloud with the real Azure SDK clients."""
    from app.sandbox import Sandbox
    from app.sandbox.registry import push_package
    from app.sandbox.sample_site import deploy_sample_site

    package = build_package(SAMPLE, work / "package").out_dir
    with Sandbox.start(work / "sandbox", latency="fast") as sb:

        def push(image: str, username: str, password: str) -> None:
            push_package(
                package, image, endpoint=sb.endpoint, ca_cert=sb.ca_cert,
                username=username, password=password,
            )  # fmt: skip

        site = deploy_sample_site(sb, "bench-scoring", push, tag="bench")
        host, _, port = site.host.partition(":")
        endpoint = Endpoint(
            host, int(port or 443), f"/api/score?code={site.function_key}", sb.ca_cert
        )
        wait_until_serving(endpoint)
        yield endpoint


def wait_until_serving(endpoint: Endpoint, timeout: float = 60.0) -> None:
    """A new site starts its host after the create returns, as on Azure: poll health."""
    context = ssl.create_default_context(cafile=str(endpoint.ca_file))
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPSConnection(
                endpoint.host, endpoint.port, context=context, timeout=5
            )
            conn.request("GET", "/api/health")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the function app did not come up (last health status {status})")


def measure(endpoint: Endpoint, calls: int) -> dict[str, float]:
    context = ssl.create_default_context(cafile=str(endpoint.ca_file))
    conn = http.client.HTTPSConnection(endpoint.host, endpoint.port, context=context, timeout=30)
    sample = json.loads((SAMPLE / "sample-request.json").read_text())
    run_id = time.time_ns()

    def floor() -> float:
        """The kept-alive GET of the health route: the host plus one Redis PING."""
        started = time.perf_counter()
        conn.request("GET", "/api/health")
        response = conn.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200 or json.loads(payload).get("cache") != "reachable":
            raise SystemExit(f"the health route answered HTTP {response.status}: "
                             f"{payload[:200]!r}")
        return elapsed

    def post(body: bytes) -> tuple[float, str, bytes]:
        started = time.perf_counter()
        conn.request("POST", endpoint.path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        elapsed = (time.perf_counter() - started) * 1000
        if response.status != 200:
            raise SystemExit(f"scoring answered HTTP {response.status}: {payload[:200]!r}")
        return elapsed, response.getheader("X-Cache", ""), payload

    # Warm up: TLS handshake, model and connection pools.
    for i in range(10):
        post(json.dumps({**sample, "warmup": [run_id, i]}).encode())

    hits: list[float] = []
    misses: list[float] = []
    floors: list[float] = []
    unexpected = 0
    for i in range(calls):
        body = json.dumps({**sample, "request": [run_id, i]}).encode()
        miss_ms, miss_state, miss_body = post(body)
        hit_ms, hit_state, hit_body = post(body)
        # Interleaved, so the floor sees the same load as the hit beside it.
        floors.append(floor())
        if miss_state != "MISS" or hit_state != "HIT" or miss_body != hit_body:
            unexpected += 1
        misses.append(miss_ms)
        hits.append(hit_ms)
    conn.close()
    return {
        "calls": float(2 * calls),
        "hit_p50_ms": statistics.median(hits),
        "hit_p95_ms": percentile(hits, 95),
        "miss_p50_ms": statistics.median(misses),
        "miss_p95_ms": percentile(misses, 95),
        "floor_p50_ms": statistics.median(floors),
        "hit_over_floor": statistics.median(hits) / statistics.median(floors),
        "unexpected_cache_states": float(unexpected),
    }


def measure_bypass(endpoint: Endpoint, calls: int) -> dict[str, float]:
    """Round trips while redis-server is down: each must answer BYPASS from the model."""
    context = ssl.create_default_context(cafile=str(endpoint.ca_file))
    conn = http.client.HTTPSConnection(endpoint.host, endpoint.port, context=context, timeout=30)
    sample = json.loads((SAMPLE / "sample-request.json").read_text())
    timings: list[float] = []
    for i in range(calls):
        body = json.dumps({**sample, "bypass": [time.time_ns(), i]}).encode()
        started = time.perf_counter()
        conn.request("POST", endpoint.path, body=body)
        response = conn.getresponse()
        response.read()
        timings.append((time.perf_counter() - started) * 1000)
        if response.status != 200 or response.getheader("X-Cache") != "BYPASS":
            raise SystemExit(
                f"with the cache down: HTTP {response.status}, "
                f"X-Cache {response.getheader('X-Cache')}"
            )
    conn.close()
    return {
        "bypass_p50_ms": statistics.median(timings),
        "bypass_p95_ms": percentile(timings, 95),
        "bypass_max_ms": max(timings),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="miss/hit pairs to time")
    parser.add_argument("--target", choices=["sandbox", "local"], default="sandbox")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlcache-bench-") as tmp:
        work = Path(tmp)
        if args.target == "local":
            bypass: dict[str, float] = {}
            with local_target(work, bypass) as endpoint:
                figures = measure(endpoint, args.calls)
            figures.update(bypass)
        else:
            with sandbox_target(work) as endpoint:
                figures = measure(endpoint, args.calls)
    print(f"target={args.target}")
    for name, value in figures.items():
        print(
            f"{name}={value:.0f}"
            if name in ("calls", "unexpected_cache_states")
            else f"{name}={value:.2f}"
        )
    return 1 if figures["unexpected_cache_states"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
