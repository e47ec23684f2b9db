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


def resolve_spec_path(text: str, spec_dir: Path, *, from_cwd: bool = True) -> Path:
    """A path from the spec: absolute; else from the spec's folder, the current
    folder (unless `from_cwd` is False), or (for specs kept in a subfolder of a
    project) a folder above the spec.

    The one reading of a spec's paths: the engine builds from it and the wizard's
    pages check with it, so a folder the engine finds is never refused on a page."""
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    here = [Path.cwd()] if from_cwd else []
    for base in (spec_dir, *here, *spec_dir.resolve().parents):
        if (base / path).exists():
            return (base / path).resolve()
    return (spec_dir / path).resolve()


def rebase_spec_path(text: str, old_dir: Path, new_dir: Path) -> str:
    """`text`, a path from a spec read from `old_dir`, as a spec kept in `new_dir` must
    say it to mean the same folder wherever the CLI is run: unchanged when it already
    does, else relative to `new_dir` when inside it, else absolute."""
    meant = resolve_spec_path(text, old_dir)
    if (Path(text).expanduser().is_absolute()
            or resolve_spec_path(text, new_dir, from_cwd=False) == meant):
        return text
    new_dir = new_dir.resolve()
    if meant.is_relative_to(new_dir):
        return meant.relative_to(new_dir).as_posix()
    return str(meant)
