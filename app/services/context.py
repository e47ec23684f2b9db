"""What the steps of one deployment share: the spec, the target, its clients, outputs.

`DeployContext` is the one object a resource step reads from; it lives apart from
the resource modules so that every one of them can import it without importing
each other.
"""

from __future__ import annotations

from pathlib import Path

from app.errors import ServiceFailure
from app.paths import resolve_spec_path
from app.rules import tags_with_created_by
from app.services.clients import ClientFactory
from app.services.redaction import register_secret
from app.services.runner import RunContext
from app.services.target import CloudTarget
from app.spec import DeploymentSpec


class DeployContext(RunContext):
    """Spec, target and clients for one run, plus what finished steps produced."""

    def __init__(
        self,
        spec: DeploymentSpec,
        target: CloudTarget,
        clients: ClientFactory | None = None,
        spec_dir: Path | None = None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.target = target
        self.clients = clients or ClientFactory(target)
        self.spec_dir = spec_dir or Path.cwd()
        self.tags = tags_with_created_by(spec.tags)

    @property
    def group(self) -> str:
        return self.spec.resource_group.name

    def secret(self, name: str, value: str | None) -> str:
        """Remember a secret for later steps and register it for redaction."""
        if not value:
            raise ServiceFailure(f"Azure returned no {name.replace('_', ' ')}")
        register_secret(value)
        self.secrets[name] = value
        return value

    def resolve_path(self, text: str) -> Path:
        return resolve_spec_path(text, self.spec_dir)


__all__ = ["DeployContext", "resolve_spec_path"]
