"""The sandbox's resource database: one JSON file in the state directory.

Everything ARM knows (subscription, groups, resources with their ARM bodies,
provider-private data such as ports and access keys, pending operations) lives
here, so a sandbox restarted on the same directory finds what it had. The file
is only readable by its owner because the cloud's own records hold access keys,
as Azure's do; nothing else of the product writes them.

Access goes through `Store.transaction()`, which holds the lock and writes the
file atomically on exit; readers take `Store.lock` for a consistent view.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.errors import BadInput

STORE_NAME = "store.json"
_KEYS = ("subscription_id", "tenant_id", "groups", "resources", "operations")

Record = dict[str, Any]


class Store:
    """Groups, resources and operations, persisted as JSON."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STORE_NAME
        self.lock = threading.RLock()
        if self.path.exists():
            problem = ""
            try:
                self.data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                problem = str(exc)
            else:
                missing = [
                    k for k in _KEYS if not isinstance(self.data, dict) or k not in self.data
                ]
                if missing:
                    problem = f"missing {', '.join(missing)}"
            if problem:
                raise BadInput(
                    f"the sandbox state {self.path} is unreadable ({problem})",
                    "Move the state directory away to start an empty sandbox.",
                )
        else:
            self.data = {
                "subscription_id": str(uuid.uuid4()),
                "tenant_id": str(uuid.uuid4()),
                "groups": {},
                "resources": {},
                "operations": {},
            }
            self.save()

    @property
    def subscription_id(self) -> str:
        return str(self.data["subscription_id"])

    @property
    def tenant_id(self) -> str:
        return str(self.data["tenant_id"])

    def save(self) -> None:
        with self.lock:
            text = json.dumps(self.data, indent=1, sort_keys=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self.path)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        with self.lock:
            yield self
            self.save()

    # Resource groups: keyed by lower-case name, as ARM names are case-insensitive.

    def group(self, name: str) -> Record | None:
        return self.data["groups"].get(name.lower())

    def groups(self) -> list[Record]:
        with self.lock:
            return list(self.data["groups"].values())

    def put_group(self, name: str, record: Record) -> None:
        self.data["groups"][name.lower()] = record

    def remove_group(self, name: str) -> None:
        self.data["groups"].pop(name.lower(), None)

    # Resources: record = {"body": ARM JSON, "private": provider data, "group": name}.

    def resource(self, resource_id: str) -> Record | None:
        return self.data["resources"].get(resource_id.lower())

    def put_resource(self, resource_id: str, record: Record) -> None:
        self.data["resources"][resource_id.lower()] = record

    def remove_resource(self, resource_id: str) -> None:
        self.data["resources"].pop(resource_id.lower(), None)

    def resources(self, rtype: str | None = None, group: str | None = None) -> list[Record]:
        """Records filtered by `Namespace/type` and/or group, both case-insensitive."""
        with self.lock:
            found = []
            for record in self.data["resources"].values():
                body = record["body"]
                if rtype is not None and body["type"].lower() != rtype.lower():
                    continue
                if group is not None and record["group"].lower() != group.lower():
                    continue
                found.append(record)
            return found

    def find_by_name(self, rtype: str, name: str) -> Record | None:
        """The resource of this type with this name anywhere in the sandbox (global names)."""
        for record in self.resources(rtype):
            if record["body"]["name"].lower() == name.lower():
                return record
        return None

    # Long-running operations, keyed by their id.

    def operation(self, op_id: str) -> Record | None:
        return self.data["operations"].get(op_id)

    def put_operation(self, op_id: str, record: Record) -> None:
        self.data["operations"][op_id] = record

    def operations(self) -> list[Record]:
        with self.lock:
            return list(self.data["operations"].values())

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.data)
