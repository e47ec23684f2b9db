"""Turn a model folder into a deployable function-app package.

AzureML SDK v1's `package()` (what the seed article used) lost support on
2026-06-30, so the product makes the package itself: the user's entry script,
model files and requirements, wrapped by the cache-aside function template in
`resources/function-template/`, plus a Dockerfile on the official Azure
Functions Python image. Validation runs first and names the one missing piece.

The image is then built from the package by `app.services.acr_build`.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import logging
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from app.errors import BadInput, ServiceFailure
from app.folders import SKIPPED_DIRS, folder_files
from app.paths import resources_dir

log = logging.getLogger("mlcache.package")

# `func init --docker` writes this base for Python 3.11 on Functions runtime 4.
# Python 3.11 matches the interpreter the sample model is pickled with.
SITE_PYTHON = "3.11"
BASE_IMAGE = f"mcr.microsoft.com/azure-functions/python:4-python{SITE_PYTHON}"
PACKAGE_FORMAT = 1
PACKAGE_INFO_NAME = "package-info.json"
MODEL_SUBDIR = "model"
DEFAULT_ENTRY_SCRIPT = "score.py"
SAMPLE_REQUEST_NAME = "sample-request.json"
REQUIREMENTS_NAME = "requirements.txt"
CONSTRAINTS_NAME = "constraints.txt"

# Never copied from a model folder into a package.
# Files of a model folder that are not model files.
_NOT_MODEL_FILES = frozenset({REQUIREMENTS_NAME, SAMPLE_REQUEST_NAME, "readme.md", "readme.txt"})

_REQUIREMENT_NAME = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)(.*)$")
# Options that point at other files or checkouts, which the package would not contain.
_FILE_OPTIONS = ("-r", "-c", "-e", "--requirement", "--constraint", "--editable")

DOCKERFILE = f"""\
# Built by mlcache-deploy. The official Azure Functions image runs the Python
# worker; the app (function_app.py, the cache-aside wrapper and model/) goes
# where the Functions host looks for it.
FROM {BASE_IMAGE}

ENV AzureWebJobsScriptRoot=/home/site/wwwroot \\
    AzureFunctionsJobHost__Logging__Console__IsEnabled=true

COPY requirements.txt constraints.txt /
RUN pip install --no-cache-dir -r /requirements.txt -c /constraints.txt

COPY . /home/site/wwwroot
"""

DOCKERIGNORE = """\
Dockerfile
.dockerignore
**/__pycache__
**/*.pyc
local.settings.json
"""


@dataclass(frozen=True)
class ModelFolder:
    """A model folder that passed validation."""

    root: Path
    entry_script: str
    model_files: tuple[str, ...]
    requirements: tuple[str, ...]
    has_sample_request: bool


@dataclass(frozen=True)
class PackageInfo:
    """What `build_package` made; also written as package-info.json inside the package."""

    out_dir: Path
    entry_script: str
    model_version: str
    model_files: tuple[str, ...]
    requirements: tuple[str, ...]
    has_sample_request: bool
    base_image: str = BASE_IMAGE
    # The template's pins (constraints.txt) less the packages the model names.
    constraints: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        data["model_files"] = list(self.model_files)
        data["requirements"] = list(self.requirements)
        data["constraints"] = list(self.constraints)
        return data


def template_dir() -> Path:
    return resources_dir() / "function-template"


# ---------------------------------------------------------------- validation


def _model_folder_files(root: Path) -> list[str]:
    return [relative for relative, _ in folder_files(root)]


def _top_level_functions(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def _parse_script(path: Path) -> ast.Module:
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"cannot read {path}: {exc.strerror}") from None
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise BadInput(
            f"{path.name} has a syntax error at line {exc.lineno}: {exc.msg}",
            "Fix the entry script so `python -c 'import score'` works in the model folder.",
        ) from None


def _find_entry_script(root: Path, files: list[str]) -> str:
    if (root / DEFAULT_ENTRY_SCRIPT).is_file():
        return DEFAULT_ENTRY_SCRIPT
    candidates = []
    for name in files:
        if "/" in name or not name.endswith(".py"):
            continue
        try:
            functions = _top_level_functions(ast.parse((root / name).read_text(encoding="utf-8")))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        if "init" in functions and "run" in functions:
            candidates.append(name)
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise BadInput(
            f"{root} has several entry scripts ({', '.join(candidates)})",
            f"Name the one to serve {DEFAULT_ENTRY_SCRIPT}.",
        )
    raise BadInput(
        f"{root} has no entry script",
        f"Add {DEFAULT_ENTRY_SCRIPT} defining init() (load the model) and run(raw_data) (score).",
    )


def _check_entry_functions(path: Path) -> None:
    functions = _top_level_functions(_parse_script(path))
    for name, hint in (
        ("init", "init() loads the model once when the function app starts"),
        ("run", "run(raw_data) scores one request and returns JSON-serializable data"),
    ):
        if name not in functions:
            raise BadInput(f"{path.name} defines no {name}() function", f"Add it: {hint}.")
    run_args = functions["run"].args
    positional = run_args.posonlyargs + run_args.args
    if not positional and run_args.vararg is None:
        raise BadInput(
            f"{path.name}: run() takes no argument",
            "run(raw_data) receives the request body (the raw JSON text).",
        )
    init_args = functions["init"].args
    required = len(init_args.posonlyargs + init_args.args) - len(init_args.defaults)
    if required > 0:
        raise BadInput(
            f"{path.name}: init() requires arguments",
            "init() is called without arguments; read paths from AZUREML_MODEL_DIR.",
        )


def parse_requirements(text: str, source: str = REQUIREMENTS_NAME) -> list[str]:
    """The requirement lines of a requirements file, comments dropped; BadInput on lines
    that point at files or checkouts the package would not contain."""
    lines: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        first = line.split()[0]
        if first in _FILE_OPTIONS or any(first.startswith(o + "=") for o in _FILE_OPTIONS[3:]):
            raise BadInput(
                f"{source} line {number}: {first} refers to another file or checkout",
                "List the packages directly; the package carries only this one file.",
            )
        if line.startswith("-"):
            lines.append(line)
            continue
        if not _REQUIREMENT_NAME.match(line):
            raise BadInput(f"{source} line {number} is not a requirement: {line!r}")
        lines.append(line)
    return lines


def _requirement_name(line: str) -> str | None:
    if line.startswith("-"):
        return None
    match = _REQUIREMENT_NAME.match(line)
    if match is None:
        return None
    # PEP 503 normalisation, so `Scikit_Learn` and `scikit-learn` are one package.
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def template_constraints(model: Iterable[str]) -> list[str]:
    """The template's pinned versions (its constraints.txt), less any package the
    model's requirements name: the model's own choice wins there, as in
    `merge_requirements`, rather than making pip refuse the pair."""
    lines = parse_requirements(
        (template_dir() / CONSTRAINTS_NAME).read_text(encoding="utf-8"), "template constraints")
    named = {_requirement_name(line) for line in model} - {None}
    return [line for line in lines if _requirement_name(line) not in named]


def merge_requirements(template: Iterable[str], model: Iterable[str]) -> list[str]:
    """Template requirements first, then the model's; one line per package.

    When both name a package, the model's line wins if it pins a version
    (`==`), otherwise both constraints are kept on one line so pip applies both.
    """
    merged: dict[str, str] = {}
    options: list[str] = []
    for line in [*template, *model]:
        name = _requirement_name(line)
        if name is None:
            if line not in options:
                options.append(line)
            continue
        if name not in merged:
            merged[name] = line
            continue
        merged[name] = _combine(merged[name], line)
    return options + list(merged.values())


def _combine(first: str, second: str) -> str:
    def split(line: str) -> tuple[str, str, str]:
        requirement, _, marker = line.partition(";")
        match = _REQUIREMENT_NAME.match(requirement.strip())
        assert match is not None
        head, spec = match.group(1), match.group(2).strip()
        extras = ""
        if spec.startswith("["):
            extras, _, spec = spec.partition("]")
            extras += "]"
            spec = spec.strip()
        return head + extras, spec, marker.strip()

    _, spec1, _ = split(first)
    name2, spec2, marker2 = split(second)
    if "@" in spec2 or "==" in spec2 or not spec1:
        return second
    if not spec2:
        return first
    # Bracketed extras of the model's line win; markers are the model's.
    combined = f"{name2}{spec1},{spec2}"
    return f"{combined}; {marker2}" if marker2 else combined


def validate_model_dir(model_dir: Path) -> ModelFolder:
    """Check a model folder; raise BadInput naming the first missing or broken piece."""
    root = model_dir.expanduser()
    if not root.exists():
        raise BadInput(f"model folder {root} does not exist")
    if not root.is_dir():
        raise BadInput(f"{root} is not a folder", "Pass the folder holding score.py and the model.")
    root = root.resolve()
    files = _model_folder_files(root)
    entry = _find_entry_script(root, files)
    _check_entry_functions(root / entry)

    req_path = root / REQUIREMENTS_NAME
    if not req_path.is_file():
        raise BadInput(
            f"{root} has no {REQUIREMENTS_NAME}",
            "List the packages the entry script imports (e.g. scikit-learn, joblib, numpy).",
        )
    try:
        requirements = parse_requirements(req_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BadInput(f"{req_path} is not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"cannot read {req_path}: {exc.strerror}") from None

    model_files = tuple(
        f for f in files if not f.endswith(".py") and f.lower() not in _NOT_MODEL_FILES
    )
    if not model_files:
        raise BadInput(
            f"{root} holds no model files besides {entry} and {REQUIREMENTS_NAME}",
            "Put the trained model (e.g. model.joblib, model.pkl, model.onnx) in the folder.",
        )

    has_sample = (root / SAMPLE_REQUEST_NAME).is_file()
    if has_sample:
        try:
            json.loads((root / SAMPLE_REQUEST_NAME).read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise BadInput(f"{root / SAMPLE_REQUEST_NAME} is not valid JSON: {exc}") from None
    return ModelFolder(root, entry, model_files, tuple(requirements), has_sample)


# ------------------------------------------------------------------ building


@functools.cache
def template_cache_aside() -> ModuleType:
    """The template's cache_aside module, loaded once from its file (it imports redis:
    `app.services.deploy.preload` loads it before a deploy needs it)."""
    name = "mlcache_template_cache_aside"
    path = template_dir() / "cache_aside.py"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ServiceFailure(f"the function template is incomplete: {path} cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


def model_files_version(model_dir: Path) -> str:
    """The template's own `cache_aside.model_files_version`, so build time and run
    time agree by construction (the deployed template must stay self-contained)."""
    return str(template_cache_aside().model_files_version(str(model_dir)))


def _copy_tree(source: Path, dest: Path, files: Iterable[str]) -> None:
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, target)


def _check_out_dir(out_dir: Path, model_root: Path) -> Path:
    out = out_dir.expanduser().resolve()
    if out == model_root or out.is_relative_to(model_root) or model_root.is_relative_to(out):
        raise BadInput(
            f"--out {out} overlaps the model folder {model_root}",
            "Choose an output folder outside the model folder.",
        )
    if out.exists():
        if not out.is_dir():
            raise BadInput(f"--out {out} exists and is not a folder")
        if any(out.iterdir()) and not (out / PACKAGE_INFO_NAME).is_file():
            raise BadInput(
                f"--out {out} is not empty and holds no earlier package",
                "Choose an empty or new folder; a previous package there is replaced.",
            )
    return out


def build_package(model_dir: Path, out_dir: Path) -> PackageInfo:
    """Validate `model_dir` and write the function-app package to `out_dir`.

    The package is assembled next to `out_dir` and moved into place at the end,
    so a failure never leaves half a package behind.
    """
    folder = validate_model_dir(model_dir)
    out = _check_out_dir(out_dir, folder.root)
    template = template_dir()
    template_reqs = parse_requirements(
        (template / REQUIREMENTS_NAME).read_text(encoding="utf-8"), "template requirements"
    )

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a package is ordinary content
    try:
        for item in sorted(template.iterdir()):
            if item.name in SKIPPED_DIRS or item.name in (REQUIREMENTS_NAME, CONSTRAINTS_NAME):
                continue
            if item.is_file():
                shutil.copy2(item, staging / item.name)
        model_dest = staging / MODEL_SUBDIR
        _copy_tree(folder.root, model_dest, _model_folder_files(folder.root))
        requirements = merge_requirements(template_reqs, folder.requirements)
        (staging / REQUIREMENTS_NAME).write_text(
            "# Merged by mlcache-deploy: the scoring wrapper's needs, then the model's.\n"
            + "\n".join(requirements)
            + "\n",
            encoding="utf-8",
        )
        constraints = template_constraints(folder.requirements)
        (staging / CONSTRAINTS_NAME).write_text(
            "# The scoring wrapper's packages pinned by mlcache-deploy (pip -c), so a rebuilt\n"
            "# image gets the same ones; those the model names are the model's to choose.\n"
            + "".join(line + "\n" for line in constraints),
            encoding="utf-8",
        )
        if folder.has_sample_request:
            shutil.copy2(folder.root / SAMPLE_REQUEST_NAME, staging / SAMPLE_REQUEST_NAME)
        (staging / "Dockerfile").write_text(DOCKERFILE, encoding="utf-8")
        (staging / ".dockerignore").write_text(DOCKERIGNORE, encoding="utf-8")
        info = PackageInfo(
            out_dir=out,
            entry_script=folder.entry_script,
            model_version=model_files_version(model_dest),
            model_files=folder.model_files,
            requirements=tuple(requirements),
            has_sample_request=folder.has_sample_request,
            constraints=tuple(constraints),
        )
        manifest = {"format": PACKAGE_FORMAT, **info.as_dict()}
        del manifest["out_dir"]
        (staging / PACKAGE_INFO_NAME).write_text(
            json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
        )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("built package %s from %s (model version %s)", out, folder.root, info.model_version)
    return info
