"""The processes behind sandbox function apps: pull the image, run the host, keep the port.

Azure creates a site at once and starts its container afterwards: the image is
pulled with the credentials in the site's `DOCKER_REGISTRY_SERVER_*` settings,
a failed pull is written to the site's log, and the site answers 503 until the
cause is fixed. This module does the same with sandbox parts. Each site owns one
port for its whole life (its `defaultHostName` is `127.0.0.1:<port>`); while the
package runs, a `FunctionHost` listens there, and while it cannot run, a small
HTTPS server (`web_placeholder`) answers 503 on that port, so clients see what
they would see on Azure rather than a refused connection.

Work on one site is serialised on a worker thread and coalesced: several
changes in a row (settings, then image) restart the host once with the latest.
"""

from __future__ import annotations

import datetime
import json
import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import platformdirs

from app.imageref import ImageReferenceError, parse_image_reference
from app.sandbox.certs import CertificateAuthority
from app.sandbox.oci import ImageStore
from app.sandbox.providers.image_rootfs import ImageRoot, RootfsError, unpack_image
from app.sandbox.providers.insights_ingestion import CONTAINER_ENVIRONMENT
from app.sandbox.providers.package_env import EnvironmentFailed, package_environment
from app.sandbox.providers.package_functions import FunctionInfo, scan_functions
from app.sandbox.providers.web_placeholder import UnavailableServer
from app.sandbox.providers.web_pull import (
    Pulled,
    PullError,
    RegistryAccess,
    check_pull_credentials,
    find_image,
)
from app.sandbox.registry import PackageStore, package_files
from app.sandbox.requestlog import RequestLog

if TYPE_CHECKING:
    from app.sandbox.providers.web_access import SiteAccess

log = logging.getLogger("mlcache.sandbox.web")

LOG_NAME = "site.log"


class HostProcess(Protocol):
    """What the runtime needs of a function host (app.sandbox.functionhost.FunctionHost)."""

    def start(self, timeout: float = 30.0) -> None: ...

    def stop(self) -> None: ...

    def abort(self) -> None:
        """Kill the host while it is still starting, so its start() fails at once."""
        ...

    @property
    def running(self) -> bool: ...


HostFactory = Callable[..., HostProcess]


@dataclass(frozen=True)
class SiteSpec:
    """Everything that decides how a site's host runs; a change means a restart."""

    name: str
    resource_group: str
    linux_fx_version: str
    app_settings: Mapping[str, str]
    port: int
    master_key: str
    function_key: str
    acr_managed_identity: bool = False
    enabled: bool = True
    linux_plan: bool = True
    # The system-assigned identity (empty without one), its tenant, the site's id.
    principal_id: str = ""
    tenant_id: str = ""
    site_id: str = ""

    @property
    def host_name(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class _Site:
    spec: SiteSpec | None = None
    host: HostProcess | None = None
    placeholder: UnavailableServer | None = None
    state: str = "Starting"
    # (registry, repository) whose missing image keeps the site down, if that is why.
    waiting_for: tuple[str, str] | None = None
    # Down because its identity lacks a role: a new assignment starts it again.
    waiting_for_rights: bool = False
    # The host being started now, and whether a newer spec cut that start short.
    starting: HostProcess | None = None
    superseded: bool = False
    # Where the running host's function_app.py is: the site's wwwroot for a package,
    # the script root inside the unpacked tree for an image.
    script_root: Path | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def image_of(linux_fx_version: str) -> str | None:
    """The image named by `DOCKER|<image>`, or None for a code (non-container) site."""
    kind, sep, image = linux_fx_version.partition("|")
    if sep and kind.strip().upper() == "DOCKER" and image.strip():
        return image.strip()
    return None


def _timestamp() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


class SiteRuntime:
    """Starts, restarts and stops the host of every sandbox function app."""

    def __init__(
        self,
        root: Path,
        ca: CertificateAuthority,
        packages: PackageStore,
        lookup_registry: Callable[[str], RegistryAccess | None],
        host_factory: HostFactory | None = None,
        start_timeout: float = 60.0,
        request_log: RequestLog | None = None,
        access: SiteAccess | None = None,
        images: ImageStore | None = None,
    ) -> None:
        self.root = root
        self._images = images
        # Unpacked image trees, one per manifest digest, shared by every site.
        self.rootfs_cache = root.parent / "rootfs"
        # Unpacked layers, one per layer digest, shared by every sandbox of this user
        # (a layer is named by its content), as a container host keeps its layers.
        self.layer_cache = Path(platformdirs.user_cache_dir("mlcache-deploy")) / "sandbox-layers"
        # The packages of pushed packages (they carry none), one folder per requirements.
        self.env_cache = Path(platformdirs.user_cache_dir("mlcache-deploy")) / "sandbox-envs"
        self._access = access
        self._request_log = request_log
        self._ca = ca
        self._packages = packages
        self._lookup_registry = lookup_registry
        self._host_factory = host_factory
        self._start_timeout = start_timeout
        self._sites: dict[str, _Site] = {}
        self._pending: dict[str, SiteSpec] = {}
        self._workers: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- paths and state -------------------------------------------------------

    def site_dir(self, name: str) -> Path:
        return self.root / name.lower()

    def log_file(self, name: str) -> Path:
        return self.site_dir(name) / "LogFiles" / LOG_NAME

    def state(self, name: str) -> str:
        """`Running`, `Unavailable` (503), `Starting` or `Stopped`."""
        with self._lock:
            site = self._sites.get(name.lower())
            if site is None:
                return "Stopped"
            if name.lower() in self._pending or name.lower() in self._workers:
                return "Starting"
            return site.state

    def write_log(self, name: str, level: str, message: str) -> None:
        """One line in the site's log, in App Service's container-log format."""
        path = self.log_file(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"{_timestamp()} {level:<5} - {message}\n")

    # -- requests ----------------------------------------------------------------

    def apply(self, spec: SiteSpec) -> None:
        """Bring the site's host in line with `spec` (restarting it) in the background."""
        key = spec.name.lower()
        with self._lock:
            if self._closed:
                return
            site = self._sites.get(key)
            if site is None:
                site = self._sites[key] = _Site()
                # Answer 503 at once (as a starting container does), not "connection refused".
                with site.lock:
                    self._serve_unavailable(spec, site)
            self._pending[key] = spec
            if site.starting is not None:
                # A container still starting is stopped and started again with the
                # new configuration, not brought up on the old one first.
                site.superseded = True
                site.starting.abort()
            if key in self._workers:
                return
            worker = threading.Thread(target=self._work, args=(key,), name=f"site-{key}")
            worker.daemon = True
            self._workers[key] = worker
        worker.start()

    def image_pushed(self, registry: str, repository: str, tag: str) -> None:
        """A package landed in `registry/repository:tag`: start or update the sites concerned.

        A site that waits for a missing image starts (App Service starts a container
        again when asked to serve; the sandbox does it when the image arrives). A
        running site whose image is exactly this tag restarts on it when its
        `DOCKER_ENABLE_CI` setting is true, as App Service's continuous deployment does.
        """
        wanted = (registry.lower(), repository)
        pushed = f"{registry.lower()}.azurecr.io/{repository}:{tag}"
        retry: list[SiteSpec] = []
        redeploy: list[SiteSpec] = []
        with self._lock:
            for site in self._sites.values():
                spec = site.spec
                if spec is None:
                    continue
                if site.waiting_for == wanted:
                    retry.append(spec)
                elif (
                    spec.app_settings.get("DOCKER_ENABLE_CI", "").lower() == "true"
                    and self.canonical_image(image_of(spec.linux_fx_version) or "").lower()
                    == pushed.lower()
                ):
                    redeploy.append(spec)
        for spec in retry:
            self.write_log(spec.name, "INFO", f"Image pushed to {registry}/{repository}; retrying.")
            self.apply(spec)
        for spec in redeploy:
            self.write_log(
                spec.name, "INFO", f"Continuous deployment: {pushed} was pushed; restarting."
            )
            self.apply(spec)

    def rights_changed(self, principal_id: str) -> None:
        """A role assignment of `principal_id` took effect: start again the sites it runs
        that were refused a pull or their storage, as App Service retries a container."""
        with self._lock:
            specs = [
                site.spec for site in self._sites.values()
                if site.waiting_for_rights and site.spec is not None
                and site.spec.principal_id.lower() == principal_id.lower()
            ]
        for spec in specs:
            self.write_log(spec.name, "INFO", "A role assignment took effect; retrying.")
            self.apply(spec)

    def wait(self, name: str, timeout: float = 60.0) -> None:
        """Block until pending work on the site is done (tests, restart ?synchronous=true)."""
        with self._lock:
            worker = self._workers.get(name.lower())
        if worker is not None:
            worker.join(timeout)

    def stop_site(self, name: str) -> None:
        """Stop the site's processes and free its port (site deleted or sandbox stopping)."""
        key = name.lower()
        with self._lock:
            self._pending.pop(key, None)
            worker = self._workers.get(key)
        if worker is not None:
            worker.join(self._start_timeout + 10)
        with self._lock:
            site = self._sites.pop(key, None)
        if site is not None:
            with site.lock:
                self._stop_processes(key, site)

    def remove_site(self, name: str) -> None:
        """Stop the site and delete its files (wwwroot, logs, certificate)."""
        self.stop_site(name)
        shutil.rmtree(self.site_dir(name), ignore_errors=True)

    def shutdown(self) -> None:
        """Stop every site (the sandbox is stopping); their records stay for the next start."""
        with self._lock:
            self._closed = True
            names = list(self._sites)
        for name in names:
            self.stop_site(name)

    def script_root(self, name: str) -> Path:
        """The folder the site's host serves (its wwwroot, or an image's script root)."""
        with self._lock:
            site = self._sites.get(name.lower())
        found = site.script_root if site is not None else None
        return found if found is not None else self.site_dir(name) / "wwwroot"

    def functions(self, name: str) -> list[FunctionInfo] | None:
        """The HTTP functions of the package the site runs; None when none is deployed."""
        wwwroot = self.script_root(name)
        if self.host_pid(name) is None or not wwwroot.is_dir():
            return None
        return scan_functions(wwwroot)

    def route_prefix(self, name: str) -> str:
        """host.json's `extensions.http.routePrefix` (default `api`)."""
        try:
            data = json.loads((self.script_root(name) / "host.json").read_text())
            prefix = data.get("extensions", {}).get("http", {}).get("routePrefix", "api")
        except (OSError, ValueError, AttributeError):
            prefix = "api"
        return str(prefix).strip("/")

    def host_pid(self, name: str) -> int | None:
        """The pid of the site's running host process, if it has one."""
        with self._lock:
            site = self._sites.get(name.lower())
        pid = getattr(site.host, "pid", None) if site is not None else None
        return pid if isinstance(pid, int) else None

    def running_pids(self) -> list[int]:
        pids = []
        with self._lock:
            sites = list(self._sites.values())
        for site in sites:
            pid = getattr(site.host, "pid", None)
            if isinstance(pid, int):
                pids.append(pid)
        return pids

    # -- the worker --------------------------------------------------------------

    def _work(self, key: str) -> None:
        while True:
            with self._lock:
                spec = self._pending.pop(key, None)
                site = self._sites.get(key)
                if spec is None or site is None or self._closed:
                    self._workers.pop(key, None)
                    return
            with site.lock:
                try:
                    self._restart(key, site, spec)
                except Exception:  # keep the worker alive; the log says what went wrong
                    log.exception("site %s failed to start", spec.name)
                    self.write_log(spec.name, "ERROR", "Site start failed: internal error.")
                    site.state = "Unavailable"
                    self._serve_unavailable(spec, site)

    def _stop_processes(self, key: str, site: _Site) -> None:
        if site.host is not None:
            spec = site.spec
            if spec is not None:
                self.write_log(spec.name, "INFO", f"Stopping site {spec.name}.")
            try:
                site.host.stop()
            except Exception:
                log.exception("stopping the host of %s failed", key)
            site.host = None
        self._stop_placeholder(site)
        site.state = "Stopped"

    def _restart(self, key: str, site: _Site, spec: SiteSpec) -> None:
        self._stop_processes(key, site)
        site.spec = spec
        site.waiting_for = None
        site.waiting_for_rights = False
        if not spec.enabled:
            self.write_log(spec.name, "INFO", f"Site {spec.name} is stopped.")
            self._serve_unavailable(spec, site, stopped=True)
            return
        # While the image is pulled and the host starts, the port answers 503.
        self._serve_unavailable(spec, site)
        image_text = image_of(spec.linux_fx_version)
        if image_text is not None and not spec.linux_plan:
            self.write_log(
                spec.name,
                "ERROR",
                "The App Service plan is a Windows plan (reserved=false); containers need a "
                "Linux plan (kind 'linux', properties.reserved true).",
            )
            self._serve_unavailable(spec, site)
            return
        if image_text is None:
            self.write_log(
                spec.name,
                "ERROR",
                "The sandbox runs container function apps only; set siteConfig.linuxFxVersion "
                "to DOCKER|<registry>.azurecr.io/<repository>:<tag> "
                f"(now {spec.linux_fx_version!r}).",
            )
            self._serve_unavailable(spec, site)
            return
        self.write_log(spec.name, "INFO", f"Pulling image: {image_text}")
        try:
            pulled = self._pull(spec, image_text)
        except PullError as exc:
            self.write_log(spec.name, "ERROR", f"Pulling image {image_text} failed: {exc}")
            self.write_log(
                spec.name, "ERROR", "Image pull failed: site will answer 503 until this is fixed."
            )
            site.waiting_for = exc.missing
            site.waiting_for_rights = exc.rights
            self._serve_unavailable(spec, site)
            return
        image_root: ImageRoot | None = None
        if pulled.image is not None:
            assert self._images is not None
            try:
                image_root = unpack_image(self._images, pulled.image, self.rootfs_cache,
                                          self.layer_cache)
            except RootfsError as exc:
                self.write_log(spec.name, "ERROR", f"Pulling image {image_text} failed: {exc}")
                self._serve_unavailable(spec, site)
                return
        self.write_log(
            spec.name, "INFO", f"Pull Image successful, Image: {image_text}, {pulled.digest}"
        )
        if image_root is not None:
            wwwroot = image_root.script_root
            # App Service puts the image's Env in the container; app settings win.
            settings = {**image_root.environment, **spec.app_settings}
        else:
            assert pulled.package is not None
            wwwroot = self.site_dir(spec.name) / "wwwroot"
            shutil.rmtree(wwwroot, ignore_errors=True)
            wwwroot.mkdir(parents=True)
            for relative, path in package_files(pulled.package):
                target = wwwroot / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
            settings = dict(spec.app_settings)
        site.script_root = wwwroot
        cert = self._ca.issue_leaf(self.site_dir(spec.name) / "tls")
        # App Service sets these in every container; packages may read them.
        settings.setdefault("WEBSITE_SITE_NAME", spec.name)
        settings.setdefault("WEBSITE_HOSTNAME", spec.host_name)
        settings.setdefault("WEBSITE_RESOURCE_GROUP", spec.resource_group)
        # The sandbox's own: its CA trusted beside the public roots, no call home to Azure.
        for name, value in {**CONTAINER_ENVIRONMENT,
                            "REQUESTS_CA_BUNDLE": str(self._ca.trust_bundle())}.items():
            settings.setdefault(name, value)
        if self._access is not None:
            problem = self._access.host_storage_problem(settings, spec.principal_id)
            if problem is not None:
                for line in problem.lines:
                    self.write_log(spec.name, "ERROR", line)
                site.waiting_for_rights = problem.rights
                self._serve_unavailable(spec, site)
                return
            if spec.principal_id:
                settings.update(self._access.identity_environment(
                    spec.name, spec.principal_id, spec.tenant_id, spec.site_id
                ))
        if image_root is not None:
            python_path = image_root.python_path
        else:
            # The Dockerfile's `pip install` a built image would have run.
            try:
                python_path = (package_environment(
                    wwwroot, self.env_cache,
                    lambda line: self.write_log(spec.name, "INFO", line)),)
            except EnvironmentFailed as exc:
                self.write_log(spec.name, "ERROR", f"Container {spec.name} could not start: "
                               f"{exc}")
                self._serve_unavailable(spec, site)
                return
        self.write_log(spec.name, "INFO", f"Starting container for site {spec.name}")
        self._stop_placeholder(site)
        host = self._make_host(
            python_path=python_path,
            package_dir=wwwroot,
            app_settings=settings,
            function_keys={"default": spec.function_key},
            master_key=spec.master_key,
            cert_file=cert.cert_file,
            key_file=cert.key_file,
            log_file=self.log_file(spec.name),
            port=spec.port,
        )
        with self._lock:
            site.starting, site.superseded = host, False
        try:
            host.start(timeout=self._start_timeout)
        except Exception as exc:
            try:
                host.stop()
            except Exception:
                log.debug("stopping a host that failed to start", exc_info=True)
            if site.superseded:
                self.write_log(spec.name, "INFO", f"Site {spec.name} configuration changed "
                               "while its container started; restarting with the new one.")
                self._serve_unavailable(spec, site)
                return
            self.write_log(
                spec.name,
                "ERROR",
                f"Container {spec.name} didn't respond to HTTP pings on port {spec.port}, "
                f"failing site start: {exc}",
            )
            self._serve_unavailable(spec, site)
            return
        finally:
            with self._lock:
                site.starting = None
        site.host = host
        site.state = "Running"
        self.write_log(
            spec.name,
            "INFO",
            f"Container {spec.name} for site {spec.name} initialized successfully and is "
            "ready to serve requests.",
        )

    def _make_host(self, **kwargs: Any) -> HostProcess:
        factory = self._host_factory
        if factory is None:
            from app.sandbox.functionhost import FunctionHost

            factory = FunctionHost
        return factory(**kwargs)

    def _stop_placeholder(self, site: _Site) -> None:
        if site.placeholder is not None:
            site.placeholder.stop()
            site.placeholder = None

    def _serve_unavailable(self, spec: SiteSpec, site: _Site, stopped: bool = False) -> None:
        site.state = "Stopped" if stopped else "Unavailable"
        if site.placeholder is not None:
            if site.placeholder.stopped == stopped:
                return
            self._stop_placeholder(site)
        cert = self._ca.issue_leaf(self.site_dir(spec.name) / "tls")
        try:
            placeholder = UnavailableServer(
                spec.port, cert, stopped=stopped, request_log=self._request_log
            )
        except OSError as exc:
            self.write_log(spec.name, "ERROR", f"Port {spec.port} is in use: {exc}")
            return
        placeholder.start()
        site.placeholder = placeholder

    def canonical_image(self, image_text: str) -> str:
        """`image_text` with its host spelled `<name>.azurecr.io` when it names a sandbox
        registry by its `loginServer` (`127.0.0.1:<port>/repo@sha256:...`)."""
        host, sep, rest = image_text.partition("/")
        if sep and not host.lower().endswith(".azurecr.io"):
            registry = self._lookup_registry(host)
            if registry is not None:
                return f"{registry.name.lower()}.azurecr.io/{rest}"
        return image_text

    def _pull(self, spec: SiteSpec, image_text: str) -> Pulled:
        host = image_text.partition("/")[0]
        try:
            image = parse_image_reference(self.canonical_image(image_text))
        except ImageReferenceError as exc:
            raise PullError(f"invalid reference format: {exc}") from None
        missing = (image.registry.lower(), image.repository)
        registry = self._lookup_registry(image.registry)
        if registry is None:
            raise PullError(
                f'Get "https://{host}/v2/": dial tcp: lookup {host}: no such host',
                missing,
            )
        check_pull_credentials(spec, image, registry, self._access)
        manifest = find_image(self._images, image)
        if manifest is not None:
            return Pulled(manifest.digest, image=manifest)
        found = self._packages.resolve_image(image)
        if found is None:
            reference = image.digest or image.tag
            raise PullError(
                f"manifest for {image.login_server}/{image.repository}:{reference} not found: "
                "manifest unknown: manifest tagged by "
                f'"{reference}" is not found',
                missing,
            )
        return Pulled(found.digest, package=found.path)

