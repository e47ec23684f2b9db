"""The local function host: a real HTTPS process running a built package, with a real redis."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import platformdirs
import pytest

from app.paths import resources_dir
from app.sandbox.certs import CertificateAuthority
from app.sandbox.functionhost import FunctionHost, starlette_path
from app.sandbox.ports import free_port
from app.sandbox.processes import ProcessSupervisor
from app.sandbox.providers.package_env import package_environment
from app.sandbox.redishost import start_keyed_redis
from app.services.packaging import build_package

pytestmark = pytest.mark.sandbox

FUNCTION_KEY = "fk-test-0123456789"
MASTER_KEY = "mk-test-9876543210"
REDIS_PASSWORD = "redis-key-abcdef"
SAMPLE = resources_dir() / "sample-model"
# Where the sandbox keeps the packages of packages that carry none (shared with it).
ENV_CACHE = Path(platformdirs.user_cache_dir("mlcache-deploy")) / "sandbox-envs"


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0); it is gone once reaped or marked Z.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


@dataclass
class Env:
    tmp: Path
    ca: CertificateAuthority
    cert_file: Path
    key_file: Path

    def host(self, package_dir: Path, settings: dict[str, str], name: str) -> FunctionHost:
        """A host on the package's own packages, as the runtime starts a pushed one."""
        return FunctionHost(
            python_path=(package_environment(package_dir, ENV_CACHE, lambda _line: None),),
            package_dir=package_dir,
            app_settings=settings,
            function_keys={"default": FUNCTION_KEY},
            master_key=MASTER_KEY,
            cert_file=self.cert_file,
            key_file=self.key_file,
            log_file=self.tmp / f"{name}.log",
        )

    def connection(self, host: FunctionHost) -> http.client.HTTPSConnection:
        context = ssl.create_default_context(cafile=str(self.ca.cert_file))
        return http.client.HTTPSConnection("127.0.0.1", host.port, context=context, timeout=30)


def call(
    conn: http.client.HTTPSConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    tmp = tmp_path_factory.mktemp("functionhost")
    ca = CertificateAuthority(tmp / "ca")
    leaf = ca.issue_leaf(tmp / "tls", "host")
    return Env(tmp, ca, leaf.cert_file, leaf.key_file)


@pytest.fixture(scope="module")
def redis_port(env: Env) -> Iterator[int]:
    supervisor = ProcessSupervisor()
    try:
        server = start_keyed_redis(env.tmp / "redis", env.ca, REDIS_PASSWORD, supervisor)
        yield server.spec.tls_port
    finally:
        supervisor.close()


@pytest.fixture(scope="module")
def sample_host(env: Env, redis_port: int) -> Iterator[FunctionHost]:
    package = build_package(SAMPLE, env.tmp / "sample-package").out_dir
    host = env.host(
        package,
        {
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(redis_port),
            "REDIS_KEY": REDIS_PASSWORD,
            "REDIS_CA_BUNDLE": str(env.ca.cert_file),
            "REDIS_TTL_SECONDS": "600",
        },
        "sample",
    )
    host.start()
    yield host
    host.stop()


def test_score_needs_a_key(env: Env, sample_host: FunctionHost) -> None:
    conn = env.connection(sample_host)
    body = (SAMPLE / "sample-request.json").read_bytes()
    assert call(conn, "POST", "/api/score", body)[0] == 401
    assert call(conn, "POST", "/api/score?code=wrong", body)[0] == 401
    assert call(conn, "POST", "/api/score", body, {"x-functions-key": "wrong"})[0] == 401
    assert call(conn, "POST", f"/api/score?code={FUNCTION_KEY}", body)[0] == 200
    assert call(conn, "POST", "/api/score", body, {"x-functions-key": MASTER_KEY})[0] == 200


def test_miss_then_hit_with_the_same_prediction(env: Env, sample_host: FunctionHost) -> None:
    conn = env.connection(sample_host)
    payload = json.loads((SAMPLE / "sample-request.json").read_text())
    payload["request_id"] = "miss-then-hit"  # a body no other test sent
    body = json.dumps(payload).encode()

    status1, headers1, body1 = call(conn, "POST", f"/api/score?code={FUNCTION_KEY}", body)
    status2, headers2, body2 = call(conn, "POST", f"/api/score?code={FUNCTION_KEY}", body)

    assert (status1, status2) == (200, 200)
    assert (headers1["x-cache"], headers2["x-cache"]) == ("MISS", "HIT")
    assert json.loads(body1) == json.loads(body2) == {"predictions": [2]}
    assert float(headers2["x-scoring-time-ms"]) >= 0


def test_health_reports_model_and_cache_without_a_key(env: Env, sample_host: FunctionHost) -> None:
    status, _, body = call(env.connection(sample_host), "GET", "/api/health")
    assert status == 200
    health = json.loads(body)
    assert health["model_loaded"] is True
    assert health["cache"] == "reachable"
    # The v2 programming model's decorators were indexed as Azure indexes them.
    log_text = sample_host.log_file.read_text()
    assert "Found function score: POST /api/score (auth level function)" in log_text
    assert "Found function health: GET /api/health (auth level anonymous)" in log_text


def test_bad_json_is_a_400_with_a_message(env: Env, sample_host: FunctionHost) -> None:
    status, _, body = call(
        env.connection(sample_host), "POST", f"/api/score?code={FUNCTION_KEY}", b"{not json"
    )
    assert status == 400
    assert "not valid JSON" in json.loads(body)["error"]


def test_admin_status_needs_the_master_key(env: Env, sample_host: FunctionHost) -> None:
    conn = env.connection(sample_host)
    assert call(conn, "GET", f"/admin/host/status?code={FUNCTION_KEY}")[0] == 401
    status, _, body = call(conn, "GET", f"/admin/host/status?code={MASTER_KEY}")
    assert status == 200
    assert json.loads(body)["state"] == "Running"


def test_secrets_stay_out_of_argv_and_the_log(env: Env, sample_host: FunctionHost) -> None:
    assert sample_host.pid is not None
    cmdline = Path(f"/proc/{sample_host.pid}/cmdline").read_bytes().decode()
    environ = Path(f"/proc/{sample_host.pid}/environ").read_bytes().decode()
    for secret in (FUNCTION_KEY, MASTER_KEY, REDIS_PASSWORD):
        assert secret not in cmdline
    # App settings are the child's environment, as on Azure; host keys are not.
    assert f"REDIS_KEY={REDIS_PASSWORD}" in environ
    assert FUNCTION_KEY not in environ and MASTER_KEY not in environ

    call(env.connection(sample_host), "GET", f"/api/health?code={FUNCTION_KEY}")
    log_text = sample_host.log_file.read_text()
    assert "GET /api/health 200" in log_text
    assert "POST /api/score 401" in log_text
    for secret in (FUNCTION_KEY, MASTER_KEY, REDIS_PASSWORD):
        assert secret not in log_text


def test_restart_keeps_the_port_and_stop_leaves_no_process(env: Env, redis_port: int) -> None:
    package = build_package(SAMPLE, env.tmp / "restart-package").out_dir
    host = env.host(package, {}, "restart")
    port = host.port
    host.start()
    first_pid = host.pid
    assert first_pid is not None and host.running
    host.stop()
    assert not host.running and host.pid is None
    assert _pid_gone(first_pid)
    host.stop()  # idempotent

    # New settings take effect on restart; broken cache settings do not stop scoring.
    host.app_settings = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "tls"}
    host.start()
    try:
        assert host.port == port and host.pid != first_pid
        status, headers, _ = call(
            env.connection(host),
            "POST",
            f"/api/score?code={FUNCTION_KEY}",
            (SAMPLE / "sample-request.json").read_bytes(),
        )
        assert status == 200
        assert headers["x-cache"] == "BYPASS"
        assert headers["x-cache-detail"].startswith("cache settings invalid: REDIS_PORT")
    finally:
        second_pid = host.pid
        host.stop()
    assert second_pid is not None and _pid_gone(second_pid)


def _write_model(folder: Path, run_body: str, extra_imports: str = "") -> Path:
    folder.mkdir(parents=True)
    (folder / "weights.txt").write_text("3\n")
    (folder / "requirements.txt").write_text("")
    script = (
        f"import json\nimport os\n{extra_imports}\n\nfactor = None\n\n\n"
        "def init():\n"
        "    global factor\n"
        '    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.txt")) as fh:\n'
        "        factor = int(fh.read())\n\n\n"
        "def run(raw_data):\n" + textwrap.indent(run_body, "    ") + "\n"
    )
    (folder / "score.py").write_text(script)
    return folder


def test_exception_in_run_is_a_500_without_traceback_and_dead_cache_bypasses(
    env: Env,
) -> None:
    model = _write_model(
        env.tmp / "failing-model",
        textwrap.dedent(
            """\
            data = json.loads(raw_data)["data"]
            if data == "boom":
                raise RuntimeError("the model cannot score boom")
            return [factor * x for x in data]"""
        ),
    )
    package = build_package(model, env.tmp / "failing-package").out_dir
    dead = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(free_port()), "REDIS_KEY": "x"}
    host = env.host(package, dead, "failing")
    host.start()
    try:
        conn = env.connection(host)
        status, _, body = call(conn, "POST", f"/api/score?code={FUNCTION_KEY}", b'{"data":"boom"}')
        assert status == 500
        error = json.loads(body)["error"]
        assert error == "the model's run() failed: RuntimeError: the model cannot score boom"
        assert "Traceback" not in body.decode()
        assert "Traceback" in host.log_file.read_text()

        status, headers, body = call(
            conn, "POST", f"/api/score?code={FUNCTION_KEY}", b'{"data":[1,2]}'
        )
        assert status == 200
        assert json.loads(body) == [3, 6]
        assert headers["x-cache"] == "BYPASS"
        assert headers["x-cache-detail"].startswith("cache unavailable")

        status, _, body = call(conn, "GET", "/api/health")
        assert status == 200 and json.loads(body)["cache"] == "unreachable"
    finally:
        host.stop()


def test_package_that_fails_to_import_keeps_the_host_up_with_503(env: Env) -> None:
    model = _write_model(
        env.tmp / "broken-model", "return 1", extra_imports="import package_that_is_not_installed"
    )
    package = build_package(model, env.tmp / "broken-package").out_dir
    # The template loads the entry script lazily-tolerant; break function_app itself too.
    (package / "function_app.py").write_text("import package_that_is_not_installed\n")
    host = env.host(package, {}, "broken")
    host.start()
    try:
        status, _, body = call(
            env.connection(host), "POST", f"/api/score?code={FUNCTION_KEY}", b"{}"
        )
        assert status == 503
        assert "ModuleNotFoundError" in body.decode()
        assert "package_that_is_not_installed" in host.log_file.read_text()
    finally:
        host.stop()


def test_entry_script_that_fails_to_import_reports_model_not_loaded(env: Env) -> None:
    model = _write_model(
        env.tmp / "missing-dep-model", "return 1", extra_imports="import package_not_installed"
    )
    package = build_package(model, env.tmp / "missing-dep-package").out_dir
    host = env.host(package, {}, "missing-dep")
    host.start()
    try:
        conn = env.connection(host)
        status, _, body = call(conn, "POST", f"/api/score?code={FUNCTION_KEY}", b'{"data":1}')
        assert status == 503
        assert "package_not_installed" in json.loads(body)["error"]
        status, _, body = call(conn, "GET", "/api/health")
        assert status == 503 and json.loads(body)["model_loaded"] is False
    finally:
        host.stop()


def test_host_exits_when_its_parent_dies(env: Env, tmp_path: Path) -> None:
    package = build_package(SAMPLE, tmp_path / "orphan-package").out_dir
    script = textwrap.dedent(
        f"""\
        import sys, time
        from pathlib import Path
        from app.sandbox.functionhost import FunctionHost
        host = FunctionHost(
            package_dir=Path({str(package)!r}), app_settings={{}}, function_keys={{}},
            master_key="m", cert_file=Path({str(env.cert_file)!r}),
            key_file=Path({str(env.key_file)!r}), log_file=Path({str(tmp_path / "o.log")!r}))
        host.start()
        print(host.pid, flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert not _pid_gone(child_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 15
    while not _pid_gone(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    gone = _pid_gone(child_pid)
    if not gone:
        os.kill(child_pid, signal.SIGKILL)
    assert gone, "the host outlived its parent"


@pytest.mark.parametrize(
    ("route", "path"),
    [
        ("score", "/api/score"),
        ("items/{id:int}", "/api/items/{id:int}"),
        ("files/{*rest}", "/api/files/{rest:path}"),
        ("users/{name:alpha}/{page?}", "/api/users/{name}/{page}"),
    ],
)
def test_azure_route_templates_map_to_starlette_paths(route: str, path: str) -> None:
    assert starlette_path("api", route) == path
    assert starlette_path("", "score") == "/score"


GENERIC_APP = """\
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="items/{id:int}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def item(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"item {req.route_params['id']} q={req.params.get('q')}")


@app.route(route="echo", auth_level=func.AuthLevel.ADMIN)
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body(), status_code=202, headers={"X-Echo": req.method})


@app.route(route="fails")
def fails(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("handler bug")
"""


def test_generic_v2_app_routes_methods_auth_levels_and_failures(env: Env, tmp_path: Path) -> None:
    package = tmp_path / "generic"
    package.mkdir()
    (package / "function_app.py").write_text(GENERIC_APP)
    host = env.host(package, {}, "generic")
    host.start()
    try:
        conn = env.connection(host)
        assert call(conn, "GET", "/api/items/42?q=x")[2] == b"item 42 q=x"
        assert call(conn, "GET", "/api/items/abc")[0] == 404  # the int constraint holds
        assert call(conn, "POST", "/api/items/42")[0] == 405  # GET only

        # Admin level: a function key is not enough, the master key is.
        assert call(conn, "PUT", f"/api/echo?code={FUNCTION_KEY}", b"hi")[0] == 401
        status, headers, body = call(conn, "PUT", f"/api/echo?code={MASTER_KEY}", b"hi")
        assert (status, headers["x-echo"], body) == (202, "PUT", b"hi")

        # No auth level on the route: the app's default (function) applies.
        assert call(conn, "GET", "/api/fails")[0] == 401
        status, _, body = call(conn, "GET", "/api/fails", headers={"x-functions-key": FUNCTION_KEY})
        assert status == 500
        assert body == b"Exception while executing function: Functions.fails"
        assert "RuntimeError: handler bug" in host.log_file.read_text()
    finally:
        host.stop()


def test_entry_script_can_ask_for_parsed_input(env: Env, tmp_path: Path) -> None:
    model = _write_model(tmp_path / "parsed-model", 'return {"type": type(raw_data).__name__}')
    script = model / "score.py"
    script.write_text(script.read_text() + '\nRUN_INPUT = "parsed"\n')
    package = build_package(model, tmp_path / "parsed-package").out_dir
    host = env.host(package, {}, "parsed")
    host.start()
    try:
        status, _, body = call(
            env.connection(host), "POST", f"/api/score?code={FUNCTION_KEY}", b'{"data": [1]}'
        )
        assert (status, json.loads(body)) == (200, {"type": "dict"})
    finally:
        host.stop()


ISOLATION_APP = """\
import importlib.util
import json
import sys

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="where")
def where(req: func.HttpRequest) -> func.HttpResponse:
    import sklearn

    return func.HttpResponse(json.dumps({
        "sys_path": sys.path,
        "sklearn": sklearn.__file__,
        "redis": importlib.util.find_spec("redis").origin,
        "azure_identity": importlib.util.find_spec("azure.identity").origin,
        "rich": importlib.util.find_spec("rich") is not None,
        "platformdirs": importlib.util.find_spec("platformdirs") is not None,
    }))
"""


def test_a_package_runs_on_its_own_environment_never_the_sandboxs(
    env: Env, tmp_path: Path
) -> None:
    """The packages the app imports come from the environment made for its
    requirements; the sandbox's site-packages (with rich and platformdirs, which the
    package never asked for) are not on its sys.path."""
    import site

    package = build_package(SAMPLE, tmp_path / "isolated").out_dir
    (package / "function_app.py").write_text(ISOLATION_APP)
    environment = package_environment(package, ENV_CACHE, lambda _line: None)
    host = env.host(package, {}, "isolated")
    host.start()
    try:
        conn = env.connection(host)
        status, _, body = call(conn, "GET", "/api/where")
        conn.close()
        assert status == 200, host.log_file.read_text()
        got = json.loads(body)
    finally:
        host.stop()
    for module in ("sklearn", "redis", "azure_identity"):
        assert Path(got[module]).is_relative_to(environment), (module, got[module])
    assert got["rich"] is False and got["platformdirs"] is False
    ours = [*site.getsitepackages(), str(Path(__file__).resolve().parents[2])]
    assert not [entry for entry in got["sys_path"] if entry in ours]
    assert got["sys_path"][:2] == [str(package.resolve()), str(environment)]
    # The same requirements: the same environment, made once.
    assert package_environment(package, ENV_CACHE, lambda _line: None) == environment
