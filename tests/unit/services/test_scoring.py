"""The test call's helpers: payloads, percentiles, the JSON form of a call."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import BadInput
from app.services.scoring import CallResult, default_payload, percentile, read_payload
from app.spec import DeploymentSpec

SAMPLE_MODEL = Path(__file__).resolve().parents[3] / "resources" / "sample-model"


def test_read_payload_accepts_json_and_refuses_the_rest(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"data": [[1, 2]]}')
    assert read_payload(str(good)) == b'{"data": [[1, 2]]}'
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(BadInput, match="not valid JSON"):
        read_payload(str(bad))
    with pytest.raises(BadInput, match="no such file"):
        read_payload(str(tmp_path / "missing.json"))


def test_default_payload_is_the_model_folders_sample(tmp_path: Path) -> None:
    spec = DeploymentSpec()
    spec.image.build_from = str(SAMPLE_MODEL)
    assert default_payload(spec, tmp_path) == (SAMPLE_MODEL / "sample-request.json").read_bytes()
    spec.image.build_from = None
    spec.image.reference = "myregistry.azurecr.io/package:v1"
    with pytest.raises(BadInput, match="--payload"):
        default_payload(spec, tmp_path)


def test_percentile_and_call_json() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.95) == 5.0
    assert percentile([], 0.5) == 0.0
    result = CallResult(200, 12.34567, "HIT", {"predictions": [2]})
    assert result.as_dict() == {
        "status": 200, "latency_ms": 12.346, "cache": "HIT", "body": {"predictions": [2]}
    }
    assert CallResult(0, 1.0, "", None, "ConnectionError").as_dict()["error"] == "ConnectionError"


def test_a_call_to_a_host_that_is_not_listening_says_so_in_plain_words() -> None:
    import socket

    from app.services.scoring import Endpoint, ScoringClient

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on `port` any more.
    endpoint = Endpoint(f"https://127.0.0.1:{port}/api/score",
                        f"https://127.0.0.1:{port}/api/health", "function-key-123")
    client = ScoringClient(endpoint, True, timeout=5)
    try:
        result = client.call(b"{}")
    finally:
        client.close()
    assert result.status == 0
    assert result.error.startswith("not answering yet (connection refused)")
    assert "function-key-123" not in result.error


def test_a_payload_that_is_a_fifo_is_refused_not_waited_for(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "payload.json"
    os.mkfifo(fifo)
    with pytest.raises(BadInput, match="not a regular file"):
        read_payload(str(fifo))
