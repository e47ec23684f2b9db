"""Every third-party package the code imports is declared, with a tested floor and a cap.

The tool's runtime dependencies are what app/ outside the sandbox imports; the
sandbox's own (its web stack, certificates, the function host) are the `sandbox`
extra, and retraining the sample model the `sample` extra, so a plain install of
the tool stays light.

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
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def _project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _by_name(lines: list[str]) -> dict[str, Requirement]:
    requirements = [Requirement(text) for text in lines]
    return {canonicalize_name(r.name): r for r in requirements}


def runtime() -> dict[str, Requirement]:
    """What `pip install mlcache-deploy` installs: no extra named."""
    return _by_name(_project()["dependencies"])


def extra(name: str) -> dict[str, Requirement]:
    return _by_name(_project()["optional-dependencies"][name])


def declared() -> dict[str, Requirement]:
    """What a user's pip may install: the runtime and the sandbox and sample extras
    (each needs a floor, a cap and a lock; the dev tools are held by the lock alone)."""
    return {**runtime(), **extra("sandbox"), **extra("sample")}


def _sources(part: str) -> list[Path]:
    """The tool's own modules ("tool": app/ outside the sandbox), the sandbox's, or
    the sample model's script."""
    if part == "sample":
        return [ROOT / "scripts" / "make_sample_model.py"]
    sandbox = ROOT / "app" / "sandbox"
    paths = sorted((ROOT / "app").rglob("*.py"))
    if part == "sandbox":
        return [p for p in paths if p.is_relative_to(sandbox)]
    return [p for p in paths if not p.is_relative_to(sandbox)]


def _imported_modules(paths: list[Path]) -> set[str]:
    """Dotted names of absolute imports (`azure.mgmt.web`, `redis`), stdlib left out."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return {n for n in names if n.split(".")[0] not in sys.stdlib_module_names
            and n.split(".")[0] not in ("app", "__future__")}


def imported_top_level(part: str = "tool") -> set[str]:
    return {name.split(".")[0] for name in _imported_modules(_sources(part))}


def _distributions_imported(part: str) -> dict[str, str]:
    """Distribution → a module of `part` that imports it (azure-* one by one, by the
    file each module is installed from: they share one namespace)."""
    by_module = importlib.metadata.packages_distributions()
    assert by_module  # the lookups below would pass vacuously otherwise
    found: dict[str, str] = {}
    for module in sorted(_imported_modules(_sources(part))):
        top = module.split(".")[0]
        if top == "azure":
            imported = importlib.import_module(module)
            found.setdefault(_distribution_of(Path(imported.__file__ or "")), module)
            continue
        distributions = {canonicalize_name(d) for d in by_module.get(top, [])}
        if not distributions:
            found.setdefault(f"? (nothing installs {top})", module)
        for name in distributions:
            found.setdefault(name, module)
    return found


def _check_part(part: str, wanted: dict[str, Requirement], own: dict[str, Requirement],
                where: str) -> None:
    """Every distribution `part` imports is in `wanted`, and each of `own` is imported."""
    imported = _distributions_imported(part)
    missing = [f"{d} (imported by {m})" for d, m in sorted(imported.items()) if d not in wanted]
    assert not missing, f"imported by {part}, not in {where}: {missing}"
    unused = sorted(set(own) - set(imported))
    assert not unused, f"{where} holds what {part} never imports: {unused}"


def test_the_tools_runtime_dependencies_are_what_it_imports() -> None:
    """app/ outside the sandbox imports exactly the runtime dependencies: nothing
    undeclared, and nothing declared that only the sandbox or the sample needs."""
    _check_part("tool", runtime(), runtime(), "the runtime dependencies")


def test_the_sandbox_extra_covers_what_the_sandbox_imports() -> None:
    _check_part("sandbox", {**runtime(), **extra("sandbox")}, extra("sandbox"),
                "the runtime or [sandbox]")


def test_the_sample_extra_covers_the_sample_model_script() -> None:
    _check_part("sample", {**runtime(), **extra("sample")}, {}, "the runtime or [sample]")


def _installed_closure(requirements: dict[str, Requirement]) -> set[str]:
    """Every distribution pip would install for `requirements` (no extras), following
    each installed distribution's own Requires-Dist with its markers."""
    seen: set[str] = set()
    pending = list(requirements.values())
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            pending.append(Requirement(text))
    return seen


def test_a_plain_install_pulls_neither_scikit_learn_nor_the_sandboxs_web_stack() -> None:
    """`pip install mlcache-deploy` (no extra): what it would install, through every
    dependency's own requirements, has no scikit-learn, joblib, azure-functions or
    uvicorn, though `make` installs them with the extras."""
    closure = _installed_closure(runtime())
    assert "azure-identity" in closure and "msal" in closure  # followed transitively
    for name in ("scikit-learn", "joblib", "azure-functions", "uvicorn", "starlette"):
        assert name not in closure, f"{name} would be installed without an extra"
    assert "scikit-learn" in extra("sample") and "uvicorn" in extra("sandbox")
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "-c constraints.txt -e '.[dev,sandbox,sample]'" in makefile


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
