"""Building the function-app package from a model folder: validation, merge, layout."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

from app.cli import main
from app.errors import BadInput
from app.paths import resources_dir
from app.services.acr_build import context_archive
from app.services.packaging import (
    BASE_IMAGE,
    build_package,
    merge_requirements,
    model_files_version,
    parse_requirements,
    validate_model_dir,
)

SAMPLE = resources_dir() / "sample-model"
TEMPLATE = resources_dir() / "function-template"

SCORE = """\
import os

def init():
    pass

def run(raw_data):
    return raw_data
"""


def model_folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


GOOD = {"score.py": SCORE, "requirements.txt": "numpy\n", "model.pkl": "weights"}


def test_sample_model_validates() -> None:
    folder = validate_model_dir(SAMPLE)
    assert folder.entry_script == "score.py"
    assert folder.model_files == ("model.joblib",)
    assert folder.has_sample_request
    assert any(r.startswith("scikit-learn==") for r in folder.requirements)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"requirements.txt": "", "model.pkl": "w"}, "has no entry script"),
        ({**GOOD, "score.py": "def run(x):\n    return x\n"}, r"defines no init\(\) function"),
        ({**GOOD, "score.py": "def init():\n    pass\n"}, r"defines no run\(\) function"),
        ({**GOOD, "score.py": "def init():\n  pass\ndef run(:\n"}, "syntax error at line 3"),
        (
            {**GOOD, "score.py": "def init():\n    pass\ndef run():\n    pass\n"},
            "takes no argument",
        ),
        ({**GOOD, "score.py": "def init(p):\n    pass\ndef run(d):\n    pass\n"}, "requires arg"),
        ({"score.py": SCORE, "model.pkl": "w"}, "has no requirements.txt"),
        ({**GOOD, "requirements.txt": "-r base.txt\n"}, "line 1: -r refers to another file"),
        ({**GOOD, "requirements.txt": "numpy\n-e ./src\n"}, "line 2: -e refers"),
        ({**GOOD, "requirements.txt": "numpy\n!!!\n"}, "line 2 is not a requirement"),
        ({"score.py": SCORE, "requirements.txt": "numpy"}, "holds no model files"),
        ({**GOOD, "sample-request.json": "{nope"}, "sample-request.json is not valid JSON"),
    ],
)
def test_each_missing_piece_is_one_clear_error(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    with pytest.raises(BadInput, match=message):
        validate_model_dir(model_folder(tmp_path, files))


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        validate_model_dir(tmp_path / "nope")
    (tmp_path / "f").write_text("x")
    with pytest.raises(BadInput, match="is not a folder"):
        validate_model_dir(tmp_path / "f")


def test_entry_script_other_than_score_py_is_found(tmp_path: Path) -> None:
    folder = model_folder(
        tmp_path,
        {
            "predict.py": SCORE,
            "helpers.py": "X = 1\n",
            **{k: v for k, v in GOOD.items() if k != "score.py"},
        },
    )
    assert validate_model_dir(folder).entry_script == "predict.py"


def test_two_candidate_entry_scripts_are_ambiguous(tmp_path: Path) -> None:
    files = {"a.py": SCORE, "b.py": SCORE, "requirements.txt": "", "m.onnx": "w"}
    with pytest.raises(BadInput, match="several entry scripts"):
        validate_model_dir(model_folder(tmp_path, files))


def test_requirements_are_parsed_and_merged() -> None:
    assert parse_requirements("# c\nnumpy  # why\n\n--extra-index-url https://x\n") == [
        "numpy",
        "--extra-index-url https://x",
    ]
    merged = merge_requirements(
        ["azure-functions>=1.20", "redis>=5.0"],
        ["Redis<9", "numpy==2.0", "azure_functions", "scikit-learn==1.9.1"],
    )
    assert merged == [
        "azure-functions>=1.20",
        "Redis>=5.0,<9",
        "numpy==2.0",
        "scikit-learn==1.9.1",
    ]
    # A pin from the model wins over the template's range.
    assert merge_requirements(["redis>=5.0"], ["redis==5.2.1"]) == ["redis==5.2.1"]
    # Extras and markers of the model's line are kept; a URL requirement wins.
    assert merge_requirements(["redis>=5.0"], ['redis[hiredis]<9; python_version>"3.8"']) == [
        'redis[hiredis]>=5.0,<9; python_version>"3.8"'
    ]
    assert merge_requirements(["redis>=5.0"], ["redis @ https://example.invalid/r.whl"]) == [
        "redis @ https://example.invalid/r.whl"
    ]
    # Option lines are kept once, ahead of the requirements.
    assert merge_requirements(["redis>=5.0"], ["--extra-index-url https://x", "redis"]) == [
        "--extra-index-url https://x",
        "redis>=5.0",
    ]


def test_build_lays_out_a_function_app(tmp_path: Path) -> None:
    info = build_package(SAMPLE, tmp_path / "pkg")
    out = tmp_path / "pkg"
    assert info.out_dir == out.resolve()
    for name in ("function_app.py", "cache_aside.py", "host.json", "Dockerfile", ".dockerignore"):
        assert (out / name).is_file(), name
    assert (out / "model" / "score.py").read_bytes() == (SAMPLE / "score.py").read_bytes()
    assert (out / "model" / "model.joblib").read_bytes() == (SAMPLE / "model.joblib").read_bytes()
    assert (out / "sample-request.json").is_file()
    assert json.loads((out / "host.json").read_text())["version"] == "2.0"

    requirements = (out / "requirements.txt").read_text().splitlines()
    assert "azure-functions>=1.20" in requirements
    assert any(r.startswith("scikit-learn==") for r in requirements)

    dockerfile = (out / "Dockerfile").read_text()
    assert f"FROM {BASE_IMAGE}" in dockerfile
    assert "COPY . /home/site/wwwroot" in dockerfile

    manifest = json.loads((out / "package-info.json").read_text())
    assert manifest["entry_script"] == "score.py"
    assert manifest["model_version"] == info.model_version == model_files_version(out / "model")


def test_model_version_is_stable_and_follows_the_model_files(tmp_path: Path) -> None:
    first = build_package(SAMPLE, tmp_path / "a").model_version
    assert build_package(SAMPLE, tmp_path / "b").model_version == first
    folder = model_folder(tmp_path, GOOD)
    v1 = build_package(folder, tmp_path / "c").model_version
    (folder / "model.pkl").write_text("retrained weights")
    assert build_package(folder, tmp_path / "c").model_version != v1


def test_template_and_packaging_compute_the_same_model_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location(
        "template_cache_aside", TEMPLATE / "cache_aside.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "template_cache_aside", module)
    spec.loader.exec_module(module)
    info = build_package(SAMPLE, tmp_path / "pkg")
    assert module.model_files_version(str(info.out_dir / "model")) == info.model_version


def test_rebuild_replaces_a_package_but_never_a_foreign_folder(tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    build_package(SAMPLE, out)
    (out / "stale.txt").write_text("left from before")
    build_package(SAMPLE, out)
    assert not (out / "stale.txt").exists()

    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(BadInput, match="not empty and holds no earlier package"):
        build_package(SAMPLE, foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_out_inside_the_model_folder_is_refused(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, GOOD)
    with pytest.raises(BadInput, match="overlaps the model folder"):
        build_package(folder, folder / "out")


def test_failed_validation_leaves_nothing_behind(tmp_path: Path) -> None:
    folder = model_folder(tmp_path, {"score.py": SCORE, "requirements.txt": ""})
    with pytest.raises(BadInput):
        build_package(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_context_archive_holds_the_package(tmp_path: Path) -> None:
    build_package(SAMPLE, tmp_path / "pkg")
    archive = context_archive(tmp_path / "pkg")
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        names = tar.getnames()
    assert "Dockerfile" in names and "model/model.joblib" in names
    assert context_archive(tmp_path / "pkg") == archive  # stable bytes, stable upload


def test_cli_build_and_bad_input_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["package", "build", str(SAMPLE), "--out", str(tmp_path / "pkg")]) == 0
    out = capsys.readouterr().out
    assert "Built function package" in out and "model version:" in out

    folder = model_folder(
        tmp_path, {"score.py": "def run(d):\n    return d\n", "requirements.txt": ""}
    )
    assert main(["package", "build", str(folder), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: score.py defines no init() function")
    assert "Traceback" not in err


def test_run_status_is_the_wire_value_of_the_sdks_enum() -> None:
    """The ACR Tasks SDK deserializes a run's status into `RunStatus`, whose str() is
    "RunStatus.SUCCEEDED": a comparison with "Succeeded" must read its value."""
    from azure.mgmt.containerregistrytasks.models import Run, RunProperties, RunStatus

    from app.services.acr_build import run_status

    built = Run(properties=RunProperties(status=RunStatus.SUCCEEDED))
    assert str(built.properties.status) != "Succeeded"
    assert run_status(built) == "Succeeded"
    # As the SDK deserializes ARM's JSON answer to GET .../runs/{runId}.
    answered = Run({"properties": {"runId": "ca1", "status": "Failed"}})
    assert run_status(answered) == "Failed"
    assert run_status(Run({})) == ""


def test_the_templates_requirements_and_what_they_pull_in_are_pinned(tmp_path: Path) -> None:
    """Every package pip installs for the scoring wrapper's requirements, down their own
    requirements, has one `==` pin, and nothing pinned goes unused. pip itself resolves
    (a dry run: this machine's pip configuration and index, nothing installed), so the
    packages the template needs are judged by their own metadata at the pinned
    versions, whether or not this tool's environment holds them."""
    import subprocess

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in parse_requirements((TEMPLATE / "constraints.txt").read_text()):
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "=="
        pins[canonicalize_name(requirement.name)] = specifier.version
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
         "--quiet", "--disable-pip-version-check", "--no-input", "--report", str(report),
         "-r", str(TEMPLATE / "requirements.txt"), "-c", str(TEMPLATE / "constraints.txt")],
        capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    installed = {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"]
                 for item in json.loads(report.read_text())["install"]}
    for name, version in installed.items():
        assert name in pins, f"{name} (needed by the template) has no pin"
        assert pins[name] == version, name
    assert {"azure-functions", "redis", "azure-identity", "msal",
            "azure-monitor-opentelemetry", "opentelemetry-sdk"} <= set(installed)
    assert set(installed) == set(pins), f"pins nothing needs: {sorted(set(pins) - set(installed))}"


def test_the_package_carries_the_pins_and_its_dockerfile_uses_them(tmp_path: Path) -> None:
    model = model_folder(tmp_path, {**GOOD, "requirements.txt": "numpy\nRequests==2.30.0\n"})
    info = build_package(model, tmp_path / "out")
    written = parse_requirements((info.out_dir / "constraints.txt").read_text())
    assert written == list(info.constraints)
    assert "redis==8.1.0" in written and "azure-functions==1.26.0" in written
    # The model pins requests itself: its choice, not a pin pip would refuse beside it.
    assert not any(line.split("==")[0].lower() == "requests" for line in written)
    assert "requests-oauthlib==2.0.0" in written
    assert "Requests==2.30.0" in info.requirements
    dockerfile = (info.out_dir / "Dockerfile").read_text()
    assert "COPY requirements.txt constraints.txt /" in dockerfile
    assert "pip install --no-cache-dir -r /requirements.txt -c /constraints.txt" in dockerfile
    recorded = json.loads((info.out_dir / "package-info.json").read_text())
    assert recorded["constraints"] == written
