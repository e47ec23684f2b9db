"""Fixtures for the function-template tests: a throwaway CA and a real TLS redis-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from app.paths import resources_dir
from app.sandbox.certs import CertificateAuthority

TEMPLATE_DIR = resources_dir() / "function-template"
# The template's modules import each other by bare name, as in a deployed package.
if str(TEMPLATE_DIR) not in sys.path:
    sys.path.append(str(TEMPLATE_DIR))

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class TlsRedis:
    """A redis-server with only a TLS port, a password, and a certificate from `ca_file`."""

    port: int
    password: str
    ca_file: Path
    process: subprocess.Popen[bytes]

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            ssl=True,
            ssl_ca_certs=str(self.ca_file),
            ssl_check_hostname=True,
            ssl_cert_reqs="required",
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_tls_redis(
    directory: Path, ca: CertificateAuthority, password: str, port: int = 0
) -> TlsRedis:
    leaf = ca.issue_leaf(directory, "redis")
    port = port or free_port()
    process = subprocess.Popen(
        [
            REDIS_SERVER,
            "--bind", "127.0.0.1",
            "--port", "0",
            "--tls-port", str(port),
            "--tls-cert-file", str(leaf.cert_file),
            "--tls-key-file", str(leaf.key_file),
            "--tls-ca-cert-file", str(ca.cert_file),
            "--tls-auth-clients", "no",
            "--requirepass", password,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = TlsRedis(port, password, ca.cert_file, process)
    deadline = time.monotonic() + 10
    while True:
        try:
            server.client().ping()
            return server
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "ca")


@pytest.fixture
def dead_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


@pytest.fixture
def tls_redis(tmp_path: Path, ca: CertificateAuthority) -> Iterator[TlsRedis]:
    server = start_tls_redis(tmp_path / "redis", ca, "s3cret-cache-key")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_redis_on(tmp_path: Path, ca: CertificateAuthority) -> Iterator[Callable[[int], TlsRedis]]:
    """Start a TLS redis-server on a given port (to bring a cache back); stopped afterwards."""
    started: list[TlsRedis] = []

    def start(port: int) -> TlsRedis:
        server = start_tls_redis(tmp_path / f"redis-{port}", ca, "s3cret-cache-key", port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
