"""Microsoft.Web: App Service plans and function apps, as WebSiteManagementClient calls them.

App Service answers plan and site writes synchronously (200 with the resource),
so this provider does too, after the latency profile's delay. A site is a real
local function host (see `web_runtime`): creating one succeeds whether or not its
image exists yet, the image named by `siteConfig.linuxFxVersion`
(`DOCKER|<registry>.azurecr.io/<repository>:<tag>`) is pulled from the sandbox
registry with the credentials in the `DOCKER_REGISTRY_SERVER_*` app settings, and
a failed pull shows in the site's log while the site answers 503.

`defaultHostName` is `127.0.0.1:<port>`: the address the host really listens on,
with a certificate from the sandbox CA, so `https://{defaultHostName}/api/...`
works unchanged. Site names are global across the sandbox, as on Azure.

Beyond ARM, each site has its own Kudu (SCM) host, `127.0.0.1:<port>` reported in
`hostNameSslStates` (hostType Repository) and `enabledHostNames` as
`<name>.scm.azurewebsites.net` is on Azure (`web_kudu`): the VFS listing of
`LogFiles`, the `*_docker.log` files once `config/logs` has container logging on,
and `/api/logstream`, with the ARM token. The older Kudu-style routes on the
sandbox endpoint stay: `GET /dataplane/sites/<name>/api/logstream` and
`GET /dataplane/sites/<name>/api/vfs/LogFiles/site.log` (with `Range: bytes=N-`).

`WebProvider` is put together from one mixin per area, each in its own module
on top of `web_base.WebProviderBase`: `web_plans` (App Service plans),
`web_sites` (sites, name checks, restart/start/stop), `web_site_config` (app
settings and site config), `web_logs_config` (`config/logs`), `web_functions`
(host keys and functions) and `web_logs` (the Kudu-style log endpoints on the
sandbox endpoint).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.sandbox.providers.web_functions import FunctionsMixin
from app.sandbox.providers.web_logs import LogsMixin
from app.sandbox.providers.web_logs_config import LogsConfigMixin
from app.sandbox.providers.web_plans import PlansMixin
from app.sandbox.providers.web_site_config import SiteConfigMixin
from app.sandbox.providers.web_sites import SitesMixin


class WebProvider(
    SitesMixin, SiteConfigMixin, LogsConfigMixin, PlansMixin, FunctionsMixin, LogsMixin
):
    """The Microsoft.Web resource provider, one mixin per area it serves."""

    def routes(self) -> list[BaseRoute]:
        site, sites = self.site_routes()
        return [
            self.check_name_route(),
            *self.plan_routes(),
            *sites,
            *self.site_config_routes(site),
            *self.logs_config_routes(site),
            *self.power_routes(site),
            *self.function_routes(site),
            *self.log_routes(),
        ]
