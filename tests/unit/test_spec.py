"""The spec file format: shape errors, JSON/TOML parity and round trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import BadInput
from app.rules import CLASSIC_SIZES, validate_spec
from app.spec import (
    CacheSpec,
    DeploymentSpec,
    FunctionAppSpec,
    ImageSpec,
    ResourceGroupSpec,
    default_notes,
    dump_spec,
    load_spec,
    parse_spec_text,
    save_spec,
    spec_from_dict,
    spec_to_dict,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

alnum = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)


@st.composite
def valid_specs(draw: st.DrawFn) -> DeploymentSpec:
    tier = draw(st.sampled_from(sorted(CLASSIC_SIZES)))
    premium = tier == "Premium"
    if draw(st.booleans()):
        image = ImageSpec(reference=f"{draw(alnum)}acr00.azurecr.io/{draw(alnum)}:{draw(alnum)}")
    else:
        image = ImageSpec(build_from=draw(alnum), registry=f"reg{draw(alnum)}00",
                          repository=draw(alnum), tag=draw(alnum))
    azure = draw(st.booleans())
    persistence = draw(st.sampled_from(["rdb", "aof", None])) if premium else None
    frequency = draw(st.sampled_from([None, "15", "360", "1440"])) if persistence == "rdb" \
        else None
    replicas = draw(st.sampled_from([None, 1] if persistence == "aof" else [None, 1, 2, 3])) \
        if premium else None
    return DeploymentSpec(
        target="azure" if azure else "sandbox",
        subscription_id="12345678-1234-1234-1234-123456789abc" if azure else None,
        location=draw(st.sampled_from(["westeurope", "eastus2", "japaneast"])),
        resource_group=ResourceGroupSpec(name=f"rg-{draw(alnum)}", create=draw(st.booleans())),
        cache=CacheSpec(
            kind="azure-cache-for-redis",
            name=f"c{draw(alnum)}",
            tier=tier,
            size=draw(st.sampled_from(CLASSIC_SIZES[tier])),
            non_tls_port=draw(st.booleans()),
            redis_version=draw(st.sampled_from(["6", None])),
            public_network_access=draw(st.booleans()),
            auth=draw(st.sampled_from(["access-keys", "entra"])),
            shards=draw(st.integers(1, 10)) if premium and draw(st.booleans()) else None,
            persistence=persistence,
            persistence_frequency=frequency,
            replicas=replicas,
            update_channel=draw(st.sampled_from([None, "Stable", "Preview"])),
            zones=draw(st.lists(st.sampled_from(["1", "2", "3"]), unique=True, max_size=3))
            if tier != "Basic" else [],
        ),
        tags=draw(st.dictionaries(alnum.map(lambda s: "t" + s),
                                  st.text(max_size=20).filter(lambda s: "\x00" not in s),
                                  max_size=5)),
        image=image,
        function_app=FunctionAppSpec(name=f"f{draw(alnum)}", plan_name=f"p{draw(alnum)}",
                                     plan_sku=draw(st.sampled_from(["B1", "P1v3"])),
                                     storage_account=f"st{draw(alnum)}"),
    )


@given(spec=valid_specs())
def test_generated_specs_are_valid(spec: DeploymentSpec) -> None:
    assert validate_spec(spec) == []


@given(spec=valid_specs())
def test_round_trip_json_toml_json(spec: DeploymentSpec) -> None:
    from_json = parse_spec_text(dump_spec(spec, "json"), "json")
    from_toml = parse_spec_text(dump_spec(from_json, "toml"), "toml")
    again = parse_spec_text(dump_spec(from_toml, "json"), "json")
    assert from_json == spec
    assert from_toml == spec
    assert again == spec


def test_managed_redis_options_round_trip() -> None:
    spec = DeploymentSpec(
        resource_group=ResourceGroupSpec(name="rg"),
        cache=CacheSpec(name="c", persistence="aof", persistence_frequency="always",
                        clustering_policy="EnterpriseCluster", eviction_policy="NoEviction",
                        modules=["RediSearch", "RedisJSON"]),
        image=ImageSpec(reference="demoacr.azurecr.io/scoring:v1"),
        function_app=FunctionAppSpec(name="f1", plan_name="p1", storage_account="st1"),
    )
    assert validate_spec(spec) == []
    for fmt in ("json", "toml"):
        assert parse_spec_text(dump_spec(spec, fmt), fmt) == spec
    text = dump_spec(spec, "toml")
    assert 'modules = [\n    "RediSearch",' in text or 'modules = ["RediSearch"' in text
    # A file written before these options existed loads with their defaults.
    older = spec_to_dict(spec)
    older["cache"] = {k: v for k, v in older["cache"].items()
                      if k not in ("persistence_frequency", "clustering_policy",
                                   "eviction_policy", "modules")}
    loaded = spec_from_dict(older)
    assert loaded.cache.modules == [] and loaded.cache.clustering_policy is None


def test_toml_omits_nulls_and_missing_optionals_load_as_null() -> None:
    spec = DeploymentSpec(
        resource_group=ResourceGroupSpec(name="rg"),
        cache=CacheSpec(name="c", redis_version=None),
        image=ImageSpec(reference="acr00001.azurecr.io/x:1"),
        function_app=FunctionAppSpec(name="fa", plan_name="p", storage_account="sa1"),
    )
    text = dump_spec(spec, "toml")
    assert "redis_version" not in text
    assert "shards" not in text
    assert "subscription_id" not in text
    assert parse_spec_text(text, "toml").cache.redis_version is None
    assert json.loads(dump_spec(spec, "json"))["cache"]["shards"] is None


@pytest.mark.parametrize("name", ["digits-sandbox.json", "digits-azure.toml"])
def test_examples_load_and_pass(name: str) -> None:
    spec = load_spec(EXAMPLES / name)
    assert validate_spec(spec) == []


def test_save_and_load_each_format(tmp_path: Path) -> None:
    spec = load_spec(EXAMPLES / "digits-azure.toml")
    for suffix in (".json", ".toml"):
        path = tmp_path / f"spec{suffix}"
        save_spec(spec, path)
        assert load_spec(path) == spec
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.json", "spec.toml"]


BASE = {
    "version": 1,
    "resource_group": {"name": "rg"},
    "cache": {"name": "c"},
    "image": {"reference": "acr00001.azurecr.io/x:1"},
    "function_app": {"name": "fa", "storage_account": "sa1"},
}


def with_change(path: str, value: object) -> dict:
    data = json.loads(json.dumps(BASE))
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("cache.non_tls_port", "yes", 'cache.non_tls_port: expected true or false, got "yes"'),
        ("cache.shards", "2", 'cache.shards: expected a whole number, got "2"'),
        ("cache.shards", True, "cache.shards: expected a whole number, got true"),
        ("cache.zones", "1", 'cache.zones: expected a list of strings, got "1"'),
        ("cache.zones", [1], "cache.zones[0]: expected a string, got 1"),
        ("tags", {"a": 1}, "tags.a: expected a string, got 1"),
        ("cache", [], "cache: expected a table, got a list"),
        ("cache.colour", "red", "cache.colour: unknown key"),
        ("cache.name", KeyError, "cache.name: missing"),
        ("image", KeyError, "image: missing section"),
        ("version", 2, "version: this tool reads version 1, got 2"),
        ("version", KeyError, "version: missing"),
    ],
)
def test_shape_errors_name_the_field(path: str, value: object, message: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_spec_text(json.dumps(with_change(path, value)), "json")
    assert str(caught.value).startswith(message)


def test_syntax_errors_give_line_and_column() -> None:
    with pytest.raises(BadInput, match="line 2, column 11"):
        parse_spec_text('{"version": 1,\n"cache": [}', "json")
    with pytest.raises(BadInput, match=r"line 2, column \d+"):
        parse_spec_text("version = 1\n[cache\n", "toml")


def test_file_problems_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        load_spec(tmp_path / "missing.json")
    with pytest.raises(BadInput, match=r"\.json or \.toml"):
        load_spec(tmp_path / "spec.yaml")
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(BadInput, match="is a folder"):
        load_spec(tmp_path / "dir.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(BadInput, match="not a text file"):
        load_spec(tmp_path / "bin.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(BadInput, match="must be a table of sections"):
        load_spec(tmp_path / "list.json")


# --- hostile files: a clear BadInput (exit 2), never a traceback, a hang or a stall ---


def _example_text() -> str:
    return (EXAMPLES / "digits-sandbox.json").read_text(encoding="utf-8")


@pytest.mark.parametrize(("name", "text", "words"), [
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("deep.toml", "a = " + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("bigint.json", '{"version": ' + "9" * 5000 + "}", "not a spec"),
])
def test_hostile_syntax_is_bad_input(tmp_path: Path, name: str, text: str, words: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadInput, match=words):
        load_spec(path)


def test_a_link_to_an_endless_device_or_a_fifo_is_refused_before_reading(tmp_path: Path) -> None:
    import os

    link = tmp_path / "zero.json"
    link.symlink_to("/dev/zero")
    with pytest.raises(BadInput, match="not a regular file"):
        load_spec(link)
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)  # opening it to read would block until a writer comes
    with pytest.raises(BadInput, match="not a regular file"):
        load_spec(fifo)


def test_a_huge_file_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.json"
    data = json.loads(_example_text())
    data["cache"]["name"] = "a" * (10 * 1024 * 1024)
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(BadInput, match="at most"):
        load_spec(path)


@pytest.mark.parametrize("where", ["tag value", "tag key", "name"])
def test_a_lone_surrogate_is_refused_where_json_admits_it(tmp_path: Path, where: str) -> None:
    """JSON's "\\ud800" loads as a lone surrogate; no UTF-8 request to Azure can carry it
    (it broke the resource group it was sent to, in the sandbox, for good)."""
    text = _example_text()
    if where == "tag value":
        text = text.replace('"data-science"', '"data\\ud800science"')
    elif where == "tag key":
        text = text.replace('"owner"', '"own\\ud800er"')
    else:
        text = text.replace('"digits-cache-demo"', '"digits\\ud800cache"')
    path = tmp_path / "surrogate.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadInput, match="not valid text"):
        load_spec(path)


def test_a_cache_given_only_its_name_is_keyless_managed_redis() -> None:
    spec = spec_from_dict(BASE)
    cache = spec.cache
    assert (cache.kind, cache.tier, cache.size, cache.redis_version, cache.auth) == (
        "azure-managed-redis", "Balanced", "B0", None, "entra")
    assert spec.function_app.auth == "managed-identity"
    classic = spec_from_dict(with_change("cache.kind", "azure-cache-for-redis"))
    assert (classic.cache.tier, classic.cache.size) == ("Standard", "C1")
    for each in (spec, classic):
        assert [p for p in validate_spec(each) if p.field.startswith("cache")] == []


def test_validate_notes_what_an_omitted_kind_and_auth_now_mean() -> None:
    notes = default_notes(BASE)
    assert len(notes) == 2
    assert "Azure Managed Redis" in notes[0] and "managed identity" in notes[1]
    given = with_change("cache.kind", "azure-cache-for-redis")
    given["cache"]["auth"] = "access-keys"
    assert default_notes(given) == []
