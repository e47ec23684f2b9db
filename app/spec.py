"""DeploymentSpec: what the user wants deployed, as one serialisable value.

The spec is the public file format (docs/spec.md). It holds intent only: names,
sizes and choices, never a key or a password. Loading checks the *shape* (known
keys, JSON types) and fails with BadInput, exit 2; whether the *values* are
allowed is the job of `app.rules`, which reports problems by field path.
JSON and TOML carry the same keys; TOML has no null, so a null optional field is
omitted when written and loads as null when missing.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

import tomli_w

from app.errors import BadInput

SPEC_VERSION = 1
SUFFIXES = (".json", ".toml")


@dataclass
class ResourceGroupSpec:
    name: str = ""
    create: bool = True


@dataclass
class CacheSpec:
    """The cache, in the portal's terms: type, tier, size and its options."""

    kind: str = "azure-managed-redis"
    name: str = ""
    tier: str = "Balanced"
    size: str = "B0"
    non_tls_port: bool = False
    minimum_tls_version: str = "1.2"
    redis_version: str | None = None
    public_network_access: bool = True
    auth: str = "entra"
    shards: int | None = None
    persistence: str | None = None
    # How often persistence writes, in each kind's own terms: RDB every 15, 30, 60, 360,
    # 720 or 1440 minutes on Azure Cache for Redis; "1h"/"6h"/"12h" (RDB) or "1s"/"always"
    # (AOF) on Azure Managed Redis. None: the kind's default (60 minutes, 1h, 1s).
    persistence_frequency: str | None = None
    zones: list[str] = field(default_factory=list)
    # Azure Cache for Redis only: replicas per primary (Premium, 1-3) and the channel of
    # the monthly Redis updates (Stable or Preview).
    replicas: int | None = None
    update_channel: str | None = None
    # Azure Managed Redis only: the database's clustering and eviction policies (None:
    # EnterpriseCluster and VolatileLRU) and the modules it loads at creation.
    clustering_policy: str | None = None
    eviction_policy: str | None = None
    modules: list[str] = field(default_factory=list)


@dataclass
class ImageSpec:
    """Either an existing image `reference`, or a model folder to `build_from`."""

    reference: str | None = None
    build_from: str | None = None
    registry: str | None = None
    repository: str | None = None
    tag: str | None = None
    # How build_from becomes an image: "layer" (made on this machine and pushed as one
    # layer over the imported base image) or "acr-tasks" (a cloud build). None: layer.
    builder: str | None = None


@dataclass
class FunctionAppSpec:
    name: str = ""
    plan_name: str = ""
    plan_sku: str = "B1"
    storage_account: str = ""
    # How the function reaches its registry and host storage: its managed identity
    # with role assignments, or the registry's admin password and the storage key.
    auth: str = "managed-identity"


@dataclass
class MonitoringSpec:
    """Application Insights for the function (with its Log Analytics workspace), named
    after the function app: on by default, as the portal offers it with a function app."""

    enabled: bool = True


@dataclass
class DeploymentSpec:
    version: int = SPEC_VERSION
    target: str = "sandbox"
    subscription_id: str | None = None
    location: str = "westeurope"
    resource_group: ResourceGroupSpec = field(default_factory=ResourceGroupSpec)
    cache: CacheSpec = field(default_factory=CacheSpec)
    tags: dict[str, str] = field(default_factory=dict)
    image: ImageSpec = field(default_factory=ImageSpec)
    function_app: FunctionAppSpec = field(default_factory=FunctionAppSpec)
    monitoring: MonitoringSpec = field(default_factory=MonitoringSpec)


# Sections a file must have; everything else falls back to its default.
REQUIRED_SECTIONS = ("resource_group", "cache", "image", "function_app")
# Keys a section must have, because no default makes sense for them.
REQUIRED_KEYS = {
    "resource_group": ("name",),
    "cache": ("name",),
    "function_app": ("name", "storage_account"),
}

T = TypeVar("T")


def _type_name(tp: Any) -> str:
    names = {str: "a string", bool: "true or false", int: "a whole number"}
    if tp in names:
        return names[tp]
    origin = get_origin(tp)
    if origin is list:
        return "a list of strings"
    if origin is dict:
        return "a table of strings"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return str(tp)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return json.dumps(value) if isinstance(value, str | int | float) else type(value).__name__


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check `value` against the annotation `tp`; return it in the dataclass's form."""
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, options[0], path)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise BadInput(f"{path}: expected a table, got {_describe(value)}")
        return _build(tp, value, path)  # type: ignore[arg-type]
    if origin is list:
        if not isinstance(value, list):
            raise BadInput(f"{path}: expected a list of strings, got {_describe(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise BadInput(f"{path}[{i}]: expected a string, got {_describe(item)}")
            _check_text(item, f"{path}[{i}]")
        return list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise BadInput(f"{path}: expected a table of strings, got {_describe(value)}")
        for key, item in value.items():
            _check_text(key, f"{path} (a key)")
            if not isinstance(item, str):
                raise BadInput(f"{path}.{key}: expected a string, got {_describe(item)}")
            _check_text(item, f"{path}.{key}")
        return dict(value)
    # bool is a subclass of int: a `true` where a number belongs is a shape error.
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise BadInput(f"{path}: expected a whole number, got {_describe(value)}")
    if tp is not int and not isinstance(value, tp):
        raise BadInput(f"{path}: expected {_type_name(tp)}, got {_describe(value)}")
    if isinstance(value, str):
        _check_text(value, path)
    return value


def _check_text(value: str, path: str) -> None:
    """Text Azure can store: JSON admits a lone UTF-16 surrogate ("\\ud800"), which no
    UTF-8 request body can carry."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadInput(f"{path}: contains a character that is not valid text "
                       "(a lone UTF-16 surrogate)") from None


def _build(cls: type[T], data: dict[str, Any], prefix: str) -> T:
    hints = get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise BadInput(
            f"{where}{unknown[0]}: unknown key (known keys: {', '.join(sorted(known))})"
        )
    section = prefix.split(".")[-1] if prefix else ""
    for key in REQUIRED_KEYS.get(section, ()):
        if key not in data:
            raise BadInput(f"{prefix}.{key}: missing")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        # A null optional is omitted when written (TOML has no null): missing means null.
        if f.name not in data and type(None) in get_args(hints[f.name]):
            values[f.name] = None
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        values[key] = _convert(value, hints[key], path)
    return cls(**values)


# What an omitted cache tier and size mean, per kind: a size that kind sells.
KIND_DEFAULTS: dict[str, dict[str, str]] = {
    "azure-managed-redis": {"tier": "Balanced", "size": "B0"},
    "azure-cache-for-redis": {"tier": "Standard", "size": "C1"},
}


def _cache_with_kind_defaults(data: dict[str, Any]) -> dict[str, Any]:
    cache = data.get("cache")
    if not isinstance(cache, dict):
        return data
    kind = cache.get("kind", CacheSpec.kind)
    filled = {k: v for k, v in KIND_DEFAULTS.get(kind, {}).items() if k not in cache}
    return {**data, "cache": {**cache, **filled}} if filled else data


def default_notes(data: Any) -> list[str]:
    """What a spec file leaves to a default that changed meaning, in words."""
    cache = data.get("cache") if isinstance(data, dict) else None
    notes = []
    if isinstance(cache, dict) and "kind" not in cache:
        notes.append("cache.kind is not given, so the cache is Azure Managed Redis (the "
                     "default since Azure Cache for Redis closed to new tenants); set "
                     'cache.kind = "azure-cache-for-redis" for the classic cache')
    if isinstance(cache, dict) and "auth" not in cache:
        notes.append("cache.auth is not given, so the function signs in to the cache with "
                     'its managed identity (entra); set cache.auth = "access-keys" to keep a key')
    return notes


def spec_from_dict(data: Any) -> DeploymentSpec:
    """Build a spec from parsed JSON/TOML, or raise BadInput naming the bad field.

    An omitted cache kind is Azure Managed Redis, an omitted auth is Microsoft Entra
    ID, and an omitted tier and size are a size the kind sells (`KIND_DEFAULTS`)."""
    if not isinstance(data, dict):
        raise BadInput(f"the spec must be a table of sections, got {_describe(data)}")
    if "version" not in data:
        raise BadInput("version: missing (this tool reads version 1)")
    if data["version"] != SPEC_VERSION or isinstance(data["version"], bool):
        raise BadInput(f"version: this tool reads version 1, got {_describe(data['version'])}")
    for section in REQUIRED_SECTIONS:
        if section not in data:
            raise BadInput(f"{section}: missing section")
    return _build(DeploymentSpec, _cache_with_kind_defaults(data), "")


def spec_to_dict(spec: DeploymentSpec, *, keep_null: bool = False) -> dict[str, Any]:
    """The file form of `spec`; nulls are dropped unless `keep_null` (TOML has none)."""

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if keep_null or v is not None}
        return value

    result: dict[str, Any] = strip(dataclasses.asdict(spec))
    return result


# A spec is a page of settings; anything this large is not one (and a device, a FIFO
# or a link to /dev/zero never ends).
MAX_SPEC_BYTES = 1024 * 1024


def read_small_file(path: Path, what: str, limit: int = MAX_SPEC_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or BadInput saying why not.

    Checked before reading, so a FIFO, a device or a huge file neither hangs nor fills
    memory.
    """
    import stat

    try:
        info = path.stat()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise BadInput(f"{path}: is a folder, not {what}")
    if not stat.S_ISREG(info.st_mode):
        raise BadInput(f"{path}: not a regular file (a device, pipe or socket), not {what}")
    if info.st_size > limit:
        raise BadInput(f"{path}: {info.st_size:,} bytes, more than {what} can be "
                       f"(at most {limit:,})")
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > limit:
        raise BadInput(f"{path}: more than {limit:,} bytes, more than {what} can be")
    return data


def _read_text(path: Path) -> str:
    try:
        return read_small_file(path, "a spec file").decode("utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a folder, not a spec file") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not a text file (expected UTF-8 JSON or TOML)") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from None


def parse_spec_text(text: str, fmt: str, source: str = "spec") -> DeploymentSpec:
    """Parse JSON or TOML text; syntax errors name the line and column."""
    return spec_from_dict(_parse_data(text, fmt, source))


def _parse_data(text: str, fmt: str, source: str) -> Any:
    try:
        if fmt == "json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise BadInput(
                    f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
                ) from None
        elif fmt == "toml":
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                # tomllib puts "(at line L, column C)" in the message itself.
                raise BadInput(f"{source}: invalid TOML: {exc}") from None
        else:
            raise BadInput(f"{source}: unknown format {fmt!r}; use .json or .toml")
    except RecursionError:
        raise BadInput(f"{source}: nested too deeply to be a spec") from None
    except ValueError as exc:
        # e.g. an integer of thousands of digits ("Exceeds the limit ... for integer
        # string conversion"): no setting of a spec is such a number.
        raise BadInput(f"{source}: not a spec: {exc}") from None
    return data


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise BadInput(f"{path}: spec files end in .json or .toml")
    return suffix[1:]


def load_spec(path: Path) -> DeploymentSpec:
    """Read a spec file; any problem with the file itself is BadInput (exit 2)."""
    return load_spec_with_notes(path)[0]


def load_spec_with_notes(path: Path) -> tuple[DeploymentSpec, list[str]]:
    """The spec and what it leaves to a changed default (`default_notes`)."""
    fmt = _format_of(path)
    data = _parse_data(_read_text(path), fmt, str(path))
    return spec_from_dict(data), default_notes(data)


def dump_spec(spec: DeploymentSpec, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(spec_to_dict(spec, keep_null=True), indent=2) + "\n"
    if fmt == "toml":
        return tomli_w.dumps(spec_to_dict(spec))
    raise BadInput(f"unknown format {fmt!r}; use json or toml")


def save_spec(spec: DeploymentSpec, path: Path) -> None:
    """Write atomically, so a crash mid-write never loses the previous file."""
    text = dump_spec(spec, _format_of(path))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
