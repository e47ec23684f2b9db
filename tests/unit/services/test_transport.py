"""The data planes' retry policy against a real socket that accepts and never answers.

A GET whose answer times out is asked again, as often as the settings allow, and then
still reads as a timeout (not as "could not connect"); a scoring POST that timed out
is not sent again, since the model may still be working on it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from app.services.target import RetrySettings
from app.services.transport import CONNECTION_ONLY, IDEMPOTENT, retry_policy, retrying_session


class SilentServer:
    """Accepts connections, reads nothing back, answers nothing; counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.open: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.open.append(connection)

    def close(self) -> None:
        self.sock.close()
        for connection in self.open:
            connection.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_a_timed_out_get_is_retried_then_reported_as_a_timeout(silent: SilentServer) -> None:
    settings = RetrySettings(total=2, backoff_factor=0.0, backoff_max=0.0)
    with retrying_session(settings) as session, pytest.raises(requests.Timeout):
        session.get(f"http://127.0.0.1:{silent.port}/", timeout=0.3)
    assert silent.accepted == 3


def test_a_timed_out_scoring_post_is_not_sent_again(silent: SilentServer) -> None:
    settings = RetrySettings(total=5, backoff_factor=0.0, backoff_max=0.0)
    with retrying_session(settings, CONNECTION_ONLY) as session, pytest.raises(
            requests.Timeout):
        session.post(f"http://127.0.0.1:{silent.port}/api/score", data=b"{}", timeout=0.3)
    assert silent.accepted == 1


def test_the_policy_follows_the_settings_and_the_rule() -> None:
    settings = RetrySettings(total=7, backoff_factor=0.5, backoff_max=9.0)
    policy = retry_policy(settings, IDEMPOTENT)
    assert (policy.total, policy.backoff_factor, policy.backoff_max) == (7, 0.5, 9.0)
    assert "POST" not in (policy.allowed_methods or ())
    assert set(policy.status_forcelist or ()) == {429, 500, 502, 503, 504}
    scoring = retry_policy(settings, CONNECTION_ONLY)
    assert scoring.total == 3 and not scoring.status_forcelist
    assert not scoring.respect_retry_after_header
    # Fractional Retry-After (azure-core takes it) is honoured, not refused.
    assert policy.parse_retry_after("0.5") == 0.5
    assert policy.parse_retry_after("2") == 2
