"""The sandbox's resource database: one JSON file in the state directory.

Everything ARM knows (tenants and their subscriptions, groups per subscription,
resources with their ARM bodies, provider-private data such as ports and access
keys, pending operations) lives here, so a sandbox restarted on the same
directory finds what it had. The file is only readable by its owner because the
cloud's own records hold access keys, as Azure's do; nothing else of the product
writes them.

Access goes through `Store.transaction()`, which holds the lock and writes the
file atomically on exit; readers take `Store.lock` for a consistent view. A
transaction that raises (a provider's bug, a value JSON cannot hold) leaves the
store as it was before it began, in memory and on disk, so one bad request cannot
break every later one.
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
from app.sandbox.directory import default_tenants

STORE_NAME = "store.json"
_KEYS = ("subscription_id", "tenant_id", "groups", "resources", "operations")

Record = dict[str, Any]


class Store:
    """Groups, resources and operations, persisted as JSON."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / STORE_NAME
        self.lock = threading.RLock()
        self._depth = 0
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
            self._upgrade()
        else:
            self.data = {
                "subscription_id": str(uuid.uuid4()),
                "tenant_id": str(uuid.uuid4()),
                "groups": {},
                "resources": {},
                "operations": {},
            }
            self.data["tenants"] = default_tenants(self.tenant_id, self.subscription_id)
            self.save()

    def _upgrade(self) -> None:
        """Bring a store written by an older sandbox (one tenant, one subscription, groups
        keyed by name alone) to today's shape; its resources stay where they were."""
        changed = False
        if "tenants" not in self.data:
            self.data["tenants"] = default_tenants(self.tenant_id, self.subscription_id)
            changed = True
        groups = self.data["groups"]
        if any("/" not in key for key in groups):
            home = self.subscription_id.lower()
            self.data["groups"] = {
                (key if "/" in key else f"{home}/{key}"): value for key, value in groups.items()
            }
            changed = True
        if changed:
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
            if self._depth:  # nested: the outermost transaction saves or rolls back
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            before = copy.deepcopy(self.data)
            self._depth = 1
            try:
                yield self
                self.save()
            except BaseException:
                self.data = before
                raise
            finally:
                self._depth = 0

    @property
    def tenants(self) -> list[dict[str, Any]]:
        return list(self.data["tenants"])

    # Resource groups: keyed by "<subscription>/<name>" in lower case, as ARM names are
    # case-insensitive and the same group name may exist in every subscription.

    @staticmethod
    def _group_key(subscription_id: str, name: str) -> str:
        return f"{subscription_id.lower()}/{name.lower()}"

    def group(self, subscription_id: str, name: str) -> Record | None:
        return self.data["groups"].get(self._group_key(subscription_id, name))

    def groups(self, subscription_id: str) -> list[Record]:
        prefix = subscription_id.lower() + "/"
        with self.lock:
            return [g for key, g in self.data["groups"].items() if key.startswith(prefix)]

    def put_group(self, subscription_id: str, name: str, record: Record) -> None:
        self.data["groups"][self._group_key(subscription_id, name)] = record

    def remove_group(self, subscription_id: str, name: str) -> None:
        record = self.data["groups"].pop(self._group_key(subscription_id, name), None)
        if record is not None:
            self._remove_assignments_under(record["body"]["id"])

    # Resources: record = {"body": ARM JSON, "private": provider data, "group": name}.

    def resource(self, resource_id: str) -> Record | None:
        return self.data["resources"].get(resource_id.lower())

    def put_resource(self, resource_id: str, record: Record) -> None:
        self.data["resources"][resource_id.lower()] = record

    def remove_resource(self, resource_id: str) -> None:
        if self.data["resources"].pop(resource_id.lower(), None) is not None:
            self._remove_assignments_under(resource_id)

    def resources(
        self,
        rtype: str | None = None,
        group: str | None = None,
        *,
        subscription: str | None = None,
    ) -> list[Record]:
        """Records filtered by `Namespace/type`, subscription and group, case-insensitively.

        A group name means nothing without its subscription, so `group` needs one."""
        if group is not None and subscription is None:
            raise ValueError("a group filter needs its subscription")
        prefix = f"/subscriptions/{subscription.lower()}/" if subscription else ""
        with self.lock:
            found = []
            for key, record in self.data["resources"].items():
                body = record["body"]
                if rtype is not None and body["type"].lower() != rtype.lower():
                    continue
                if prefix and not key.startswith(prefix):
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

    # Service principals (the managed identities of sites), keyed by object id. A
    # store written before they existed has none; the key is added on first write.

    def service_principal(self, object_id: str) -> Record | None:
        return self.data.get("servicePrincipals", {}).get(object_id.lower())

    def put_service_principal(self, object_id: str, record: Record) -> None:
        self.data.setdefault("servicePrincipals", {})[object_id.lower()] = record

    def remove_service_principal(self, object_id: str) -> None:
        self.data.get("servicePrincipals", {}).pop(object_id.lower(), None)

    # Role assignments (Microsoft.Authorization), keyed by their id in lower case. They
    # are extension resources, not tracked ones: never in a group's resource list, and
    # removed with the scope they sit on (`remove_resource`, `remove_group`).

    def role_assignments(self) -> list[Record]:
        with self.lock:
            return list(self.data.get("roleAssignments", {}).values())

    def role_assignment(self, assignment_id: str) -> Record | None:
        return self.data.get("roleAssignments", {}).get(assignment_id.lower())

    def put_role_assignment(self, assignment_id: str, record: Record) -> None:
        self.data.setdefault("roleAssignments", {})[assignment_id.lower()] = record

    def remove_role_assignment(self, assignment_id: str) -> None:
        self.data.get("roleAssignments", {}).pop(assignment_id.lower(), None)

    def _remove_assignments_under(self, scope: str) -> None:
        """Drop the role assignments at `scope` and below it (ARM deletes a scope's
        extension resources with it)."""
        prefix = scope.lower().rstrip("/")
        assignments = self.data.get("roleAssignments", {})
        for key in [
            k for k, r in assignments.items()
            if (r["body"]["properties"]["scope"].lower() + "/").startswith(prefix + "/")
        ]:
            del assignments[key]

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(self.data)
