"""Where the product's own files live: bundled resources and per-user data."""

from __future__ import annotations

from pathlib import Path

import platformdirs

APP_NAME = "mlcache-deploy"


def resources_dir() -> Path:
    """The repository's `resources/` folder (templates, sample model, icons)."""
    return Path(__file__).resolve().parent.parent / "resources"


def user_data_dir() -> Path:
    """Per-user data: deployment logs, the default sandbox state."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_sandbox_state_dir() -> Path:
    return user_data_dir() / "sandbox"


def deployment_logs_dir() -> Path:
    return user_data_dir() / "deployments"


def user_cache_dir() -> Path:
    """Per-user cache: wheels and built layers, safe to delete at any time."""
    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def resolve_spec_path(text: str, spec_dir: Path) -> Path:
    """A path from the spec: absolute; else from the spec's folder, the current
    folder, or (for specs kept in a subfolder of a project) a folder above the spec.

    The one reading of a spec's paths: the engine builds from it and the wizard's
    pages check with it, so a folder the engine finds is never refused on a page."""
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    for base in (spec_dir, Path.cwd(), *spec_dir.resolve().parents):
        if (base / path).exists():
            return (base / path).resolve()
    return (spec_dir / path).resolve()
