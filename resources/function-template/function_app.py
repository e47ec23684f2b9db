"""HTTP front of the model: POST /api/score through the cache, GET /api/health.

Azure Functions Python v2 programming model. The user's entry script (seed
style: `init()` once, then `run(raw_json_text)` per request) lives in `model/`
and is loaded here; all cache logic is in `cache_aside.py`.

Application settings read (the contract with the deployer): REDIS_HOST,
REDIS_PORT (TLS port), REDIS_KEY, REDIS_AUTH (access-keys | entra),
REDIS_USERNAME (entra: the identity's object id; default: the token's oid), REDIS_CA_BUNDLE
(optional, only for a private CA), REDIS_TTL_SECONDS (default 3600),
MODEL_VERSION (default: the hash of the model files recorded at build time).
APPLICATIONINSIGHTS_CONNECTION_STRING (optional): read by the Functions host, which
sends each call's request to Application Insights; with it, this module also starts
the azure-monitor-opentelemetry distro for its own logger, so the `score cache=...`
trace carries `cache` and `model_version` as customDimensions.
APPLICATIONINSIGHTS_AUTHENTICATION_STRING (optional): `Authorization=AAD` (and
`ClientId=...` for a user-assigned identity) sends that telemetry with the managed
identity's token instead of the instrumentation key.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
from cache_aside import (
    BadRequest,
    CacheAsideScorer,
    CacheUnavailable,
    ModelError,
    RedisCache,
    RedisSettings,
    model_files_version,
)

log = logging.getLogger("mlcache.scoring")


def _authentication(text: str) -> dict[str, str]:
    """`Authorization=AAD;ClientId=...` as a dict with lower-case keys."""
    pairs = (part.partition("=") for part in text.split(";") if "=" in part)
    return {key.strip().lower(): value.strip() for key, _, value in pairs}


def _start_monitoring() -> str:
    """Send this module's logs to Application Insights through the
    azure-monitor-opentelemetry distro (Microsoft Learn, "Use OpenTelemetry with Azure
    Functions"), which, unlike the host's logging, makes a record's `extra` its
    customDimensions. Only `log` is exported (`logger_name`): the host already sends
    its own logs and each call's request, so tracing, metrics and live metrics stay
    off. Nothing happens, and the distro is not imported, without a connection
    string, or when PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY has the worker
    configure it itself. Returns what was done, for the log."""
    if not os.environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip():
        return ""
    if os.environ.get("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY", "").lower() == "true":
        return "the Python worker sends telemetry (PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY)"
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
    except ImportError:
        return "azure-monitor-opentelemetry is not installed: cache outcomes stay in messages"
    options: dict[str, Any] = {
        "logger_name": log.name, "disable_tracing": True, "disable_metrics": True,
        "enable_live_metrics": False, "enable_performance_counters": False,
    }
    auth = _authentication(os.environ.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", ""))
    if auth.get("authorization", "").upper() == "AAD":
        # "Microsoft Entra authentication for Application Insights": the exporter
        # takes a token credential; the setting names a user-assigned identity's client id.
        from azure.identity import ManagedIdentityCredential

        client_id = auth.get("clientid") or None
        options["credential"] = ManagedIdentityCredential(client_id=client_id)
    try:
        configure_azure_monitor(**options)
    except Exception as exc:  # telemetry must never keep the model from serving
        return f"Application Insights not started ({type(exc).__name__}); scoring goes on"
    # The exporter's own request and transmission lines would reach the host's logs
    # (and Application Insights) once per batch; its warnings and errors still do.
    for noisy in ("azure.core.pipeline.policies.http_logging_policy",
                  "azure.monitor.opentelemetry.exporter"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return ("Application Insights: sending this app's traces with "
            + ("Microsoft Entra authentication" if "credential" in options
               else "the instrumentation key"))


MONITORING = _start_monitoring()

APP_DIR = Path(__file__).resolve().parent
MODEL_DIR = APP_DIR / "model"
PACKAGE_INFO = APP_DIR / "package-info.json"

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _package_info() -> dict[str, Any]:
    try:
        info: dict[str, Any] = json.loads(PACKAGE_INFO.read_text(encoding="utf-8"))
        return info
    except (OSError, ValueError):
        return {}


def _load_entry_script(path: Path) -> ModuleType:
    # The entry script may import helper modules that sit next to it.
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location("score", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["score"] = module
    spec.loader.exec_module(module)
    return module


def _wants_parsed_input(module: ModuleType) -> bool:
    """`run` gets the raw JSON text (AzureML style) unless the script asks for parsed data."""
    if str(getattr(module, "RUN_INPUT", "raw")).lower() == "parsed":
        return True
    params = list(inspect.signature(module.run).parameters.values())
    if params and params[0].annotation is not inspect.Parameter.empty:
        annotation = params[0].annotation
        name = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
        return str(name).split("[")[0] in ("dict", "list", "Any", "typing.Any")
    return False


# A failed init() is retried, but not on every request: loading a model can be slow.
LOAD_RETRY_SECONDS = 30.0


class _Model:
    """The loaded entry script and its scorer; loading is retried if init() failed."""

    def __init__(self) -> None:
        self.scorer: CacheAsideScorer | None = None
        self.error = ""
        self.version = ""
        self._lock = threading.Lock()
        self._next_attempt = 0.0

    def ensure_loaded(self) -> CacheAsideScorer | None:
        if self.scorer is not None:
            return self.scorer
        with self._lock:
            if self.scorer is None and time.monotonic() >= self._next_attempt:
                self._load()
                if self.scorer is None:
                    self._next_attempt = time.monotonic() + LOAD_RETRY_SECONDS
        return self.scorer

    def _load(self) -> None:
        info = _package_info()
        entry = MODEL_DIR / str(info.get("entry_script", "score.py"))
        try:
            # AzureML set AZUREML_MODEL_DIR for init(); seed-style scripts rely on it.
            os.environ["AZUREML_MODEL_DIR"] = str(MODEL_DIR)
            module = _load_entry_script(entry)
            module.init()
            self.version = (
                os.environ.get("MODEL_VERSION", "").strip()
                or str(info.get("model_version", ""))
                or model_files_version(str(MODEL_DIR))
            )
            cache, no_cache_reason = None, "no cache configured"
            try:
                settings = RedisSettings.from_environment()
            except ValueError as exc:
                # Bad cache settings must not take the model down: score without the cache.
                no_cache_reason = f"cache settings invalid: {exc}"
                log.error("%s", no_cache_reason)
            else:
                cache = RedisCache(settings) if settings is not None else None
            self.scorer = CacheAsideScorer(
                module.run,
                self.version,
                cache,
                pass_raw_text=not _wants_parsed_input(module),
                no_cache_reason=no_cache_reason,
            )
            self.error = ""
            log.info("model %s loaded (version %s)", entry.name, self.version)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.exception("loading the model failed")


MODEL = _Model()
if MONITORING:
    log.info("%s", MONITORING)
MODEL.ensure_loaded()


def _json_response(status: int, payload: dict[str, Any], **headers: str) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(payload), status_code=status, mimetype="application/json", headers=headers
    )


def record_cache_outcome(cache: str, model_version: str) -> None:
    """One trace per scoring call saying whether Redis answered (HIT, MISS or BYPASS).

    With Application Insights configured (APPLICATIONINSIGHTS_CONNECTION_STRING), the
    distro started by `_start_monitoring` sends this trace with `cache` and
    `model_version` as customDimensions (`traces | where customDimensions.cache ==
    "HIT"`). The host's own logging, which does not carry `extra`
    (azure-functions-python-worker#1327), sends it too, with `cache=HIT` in its message
    only. Without Application Insights it is one more line of the container log.
    """
    log.info("score cache=%s model=%s", cache, model_version,
             extra={"cache": cache, "model_version": model_version})


@app.route(route="score", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def score(req: func.HttpRequest) -> func.HttpResponse:
    started = time.perf_counter()
    scorer = MODEL.ensure_loaded()
    if scorer is None:
        return _json_response(503, {"error": f"the model is not loaded: {MODEL.error}"})
    try:
        result = scorer.score(req.get_body())
    except BadRequest as exc:
        return _json_response(400, {"error": str(exc)})
    except ModelError as exc:
        return _json_response(500, {"error": str(exc)})
    except Exception as exc:
        log.exception("scoring failed")
        return _json_response(500, {"error": f"scoring failed: {type(exc).__name__}"})
    headers = {
        "X-Cache": result.cache,
        "X-Scoring-Time-Ms": f"{result.elapsed_ms:.3f}",
        "X-Request-Time-Ms": f"{(time.perf_counter() - started) * 1000:.3f}",
        "X-Model-Version": scorer.model_version,
    }
    if result.cache_detail:
        headers["X-Cache-Detail"] = result.cache_detail
    record_cache_outcome(result.cache, scorer.model_version)
    return func.HttpResponse(
        result.body, status_code=200, mimetype="application/json", headers=headers
    )


@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Model loaded, and the cache answers PING. Never reads or writes a cache key."""
    scorer = MODEL.ensure_loaded()
    body: dict[str, Any] = {"model_loaded": scorer is not None, "model_version": MODEL.version}
    if scorer is None:
        body["model_error"] = MODEL.error
    if scorer is None:
        body["cache"] = "unknown"
    elif scorer.cache is None:
        body["cache"] = "not configured"
        body["cache_detail"] = scorer.no_cache_reason
    else:
        try:
            scorer.cache.ping()
            body["cache"] = "reachable"
        except CacheUnavailable as exc:
            body["cache"] = "unreachable"
            body["cache_detail"] = str(exc)
    return _json_response(200 if scorer is not None else 503, body)
