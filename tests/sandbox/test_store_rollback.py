"""A store transaction that fails leaves the store as it was, in memory and on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.sandbox.store import Store


def _stored(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "store.json").read_text(encoding="utf-8"))


def test_a_transaction_that_raises_changes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.transaction() as s:
        s.put_resource("/a", {"name": "a"})
    with pytest.raises(RuntimeError), store.transaction() as s:
        s.put_resource("/b", {"name": "b"})
        s.remove_resource("/a")
        raise RuntimeError("provider bug")
    assert store.resource("/a") == {"name": "a"}
    assert store.resource("/b") is None
    assert set(_stored(tmp_path)["resources"]) == {"/a"}


def test_a_value_json_cannot_write_is_rolled_back_and_later_requests_still_save(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path)
    with pytest.raises(TypeError), store.transaction() as s:
        s.put_resource("/bad", {"when": object()})  # a provider's bug: not JSON
    assert store.resource("/bad") is None
    with store.transaction() as s:
        s.put_resource("/good", {"name": "good"})
    assert set(_stored(tmp_path)["resources"]) == {"/good"}


def test_a_nested_failure_rolls_back_the_whole_outer_transaction(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(KeyError), store.transaction() as outer:
        outer.put_resource("/outer", {"name": "outer"})
        with outer.transaction() as inner:
            inner.put_resource("/inner", {"name": "inner"})
        raise KeyError("late")
    assert store.resource("/outer") is None and store.resource("/inner") is None
