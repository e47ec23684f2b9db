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

Beyond ARM, the site's Kudu-style log endpoints take the sandbox token:
`GET /dataplane/sites/<name>/api/logstream` streams the log as Kudu's
`/api/logstream` does, and `GET /dataplane/sites/<name>/api/vfs/LogFiles/site.log`
returns the file (with `Range: bytes=N-` for what is new since offset N).

`WebProvider` is put together from one mixin per area, each in its own module
on top of `web_base.WebProviderBase`: `web_plans` (App Service plans),
`web_sites` (sites, name checks, restart/start/stop), `web_site_config` (app
settings and site config), `web_functions` (host keys and functions) and
`web_logs` (the Kudu-style log endpoints).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from app.sandbox.providers.web_functions import FunctionsMixin
from app.sandbox.providers.web_logs import LogsMixin
from app.sandbox.providers.web_plans import PlansMixin
from app.sandbox.providers.web_site_config import SiteConfigMixin
from app.sandbox.providers.web_sites import SitesMixin


class WebProvider(SitesMixin, SiteConfigMixin, PlansMixin, FunctionsMixin, LogsMixin):
    """The Microsoft.Web resource provider, one mixin per area it serves."""

    def routes(self) -> list[BaseRoute]:
        site, sites = self.site_routes()
        return [
            self.check_name_route(),
            *self.plan_routes(),
            *sites,
            *self.site_config_routes(site),
            *self.power_routes(site),
            *self.function_routes(site),
            *self.log_routes(),
        ]
