"""Every third-party package the code imports is declared, with a tested floor and a cap.

An undeclared import works only where something else happened to install it; an
open-ended range lets a new major (or a new pre-release) change the models the
code builds mid-deploy.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(text) for text in project["dependencies"]]
    return {canonicalize_name(r.name): r for r in requirements}


def imported_top_level() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("app", "__future__")}


def test_every_imported_distribution_is_declared() -> None:
    by_module = importlib.metadata.packages_distributions()
    wanted = declared()
    missing = []
    for module in sorted(imported_top_level()):
        distributions = {canonicalize_name(d) for d in by_module.get(module, [])}
        if module == "azure":
            continue  # a namespace: its distributions are checked one by one below
        if not distributions & set(wanted):
            missing.append(f"{module} (from {sorted(distributions) or 'nowhere'})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_azure_distributions_the_code_imports_are_declared() -> None:
    wanted = declared()
    modules = set()
    for path in (ROOT / "app").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("azure."):
                modules.add(node.module)  # type: ignore[arg-type]
    by_module = importlib.metadata.packages_distributions()
    assert by_module  # the lookup below would pass vacuously otherwise
    for module in sorted(modules):
        imported = importlib.import_module(module)
        distribution = _distribution_of(Path(imported.__file__ or ""))
        assert distribution in wanted, f"{module} comes from {distribution}, not declared"


@functools.cache
def _owners() -> dict[Path, str]:
    """Installed file → the distribution that installed it (azure-* share one namespace)."""
    owners: dict[Path, str] = {}
    for dist in importlib.metadata.distributions():
        name = canonicalize_name(str(dist.metadata["Name"]))
        for file in dist.files or []:
            if file.suffix == ".py":
                owners[Path(str(dist.locate_file(file))).resolve()] = name
    return owners


def _distribution_of(path: Path) -> str:
    return _owners().get(path.resolve(), "?")


def locked() -> dict[str, Version]:
    """constraints.txt: the exact versions `make` installs and the suite was run on."""
    versions = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            versions[canonicalize_name(requirement.name)] = Version(specifier.version)
    return versions


def test_every_dependency_has_a_floor_the_suite_runs_on_and_a_cap() -> None:
    """Judged against the lock, not against whatever is newest on the index today, so a
    release made after the last `make lock` cannot turn this red on a fresh machine."""
    lock = locked()
    problems = []
    for name, requirement in declared().items():
        specifiers = list(requirement.specifier)
        tested = lock.get(name)
        if tested is None:
            problems.append(f"{name}: declared but not in constraints.txt (run `make lock`)")
            continue
        if any(s.operator == "==" for s in specifiers):
            if tested not in requirement.specifier:
                problems.append(f"{name}: pinned to {requirement.specifier}, locked at {tested}")
            continue
        floors = [Version(s.version) for s in specifiers if s.operator == ">="]
        caps = [s for s in specifiers if s.operator == "<"]
        if not floors or not caps:
            problems.append(f"{name}: needs a floor and a cap ({requirement.specifier or 'none'})")
        elif tested not in requirement.specifier:
            problems.append(f"{name}: locked {tested} is outside {requirement.specifier}")
        elif floors[0] < Version(f"{tested.major}.{tested.minor}"):
            # The floor is a version the suite was run on, not an older guess.
            problems.append(f"{name}: floor {floors[0]} is older than the {tested} locked")
    assert not problems, "\n".join(problems)


def test_the_environment_is_the_lock() -> None:
    """What the suite runs on is what constraints.txt says: the lock is not a wish."""
    drift = []
    for name, version in sorted(locked().items()):
        try:
            installed = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            drift.append(f"{name}: locked at {version}, not installed")
            continue
        if installed != version:
            drift.append(f"{name}: locked at {version}, {installed} installed")
    assert not drift, "\n".join(drift)
