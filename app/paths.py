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
