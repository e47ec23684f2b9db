"""A site's host keys and the functions of the package it runs.

The function list comes from the deployed package itself (see `package_functions`),
so the RP answers only once a host runs, as App Service's does.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.sandbox.arm import arm_route, json_response
from app.sandbox.providers.web_base import WebProviderBase
from app.sandbox.providers.web_errors import AppServiceError
from app.sandbox.store import Record


class FunctionsMixin(WebProviderBase):
    """host/default/listkeys, functions (list, get) and functions/{name}/listkeys."""

    def function_routes(self, site: str) -> list[BaseRoute]:
        """Routes under the one-site path `site`."""
        return [
            arm_route(site + "/host/default/listkeys", self.list_host_keys, ["POST"]),
            arm_route(site + "/functions", self.list_functions, ["GET"]),
            arm_route(site + "/functions/{functionName}", self.get_function, ["GET"]),
            arm_route(
                site + "/functions/{functionName}/listkeys", self.list_function_keys, ["POST"]
            ),
        ]

    async def list_host_keys(self, request: Request) -> Response:
        private = self.site_record(request)["private"]
        return json_response(
            {
                "masterKey": private["masterKey"],
                "functionKeys": {"default": private["functionKey"]},
                "systemKeys": {},
            }
        )

    def _function_envelopes(self, record: Record) -> list[dict[str, Any]]:
        """FunctionEnvelope resources for the functions of the package the site runs."""
        body = record["body"]
        name = body["name"]
        functions = self.runtime.functions(name) or []
        prefix = self.runtime.route_prefix(name)
        host = body["properties"]["defaultHostName"]
        base = f"{prefix}/" if prefix else ""
        envelopes = []
        for function in functions:
            trigger: dict[str, Any] = {
                "type": "httpTrigger",
                "direction": "in",
                "name": function.trigger_arg,
                "authLevel": function.auth_level,
                "route": function.route,
            }
            if function.methods:
                trigger["methods"] = [m.lower() for m in function.methods]
            envelopes.append(
                {
                    "id": f"{body['id']}/functions/{function.name}",
                    "name": f"{name}/{function.name}",
                    "type": "Microsoft.Web/sites/functions",
                    "location": body["location"],
                    "properties": {
                        "name": function.name,
                        "function_app_id": body["id"],
                        "script_root_path_href": None,
                        "script_href": None,
                        "config_href": None,
                        "test_data_href": None,
                        "secrets_file_href": None,
                        "href": f"https://{host}/admin/functions/{function.name}",
                        "config": {
                            "bindings": [
                                trigger,
                                {"type": "http", "direction": "out", "name": "$return"},
                            ]
                        },
                        "invoke_url_template": f"https://{host}/{base}{function.route}",
                        "language": "python",
                        "isDisabled": False,
                    },
                }
            )
        return envelopes

    async def list_functions(self, request: Request) -> Response:
        record = self.site_record(request)
        return json_response({"value": self._function_envelopes(record)})

    async def get_function(self, request: Request) -> Response:
        record = self.site_record(request)
        wanted = request.path_params["functionName"]
        for envelope in self._function_envelopes(record):
            if envelope["properties"]["name"].lower() == wanted.lower():
                return json_response(envelope)
        raise AppServiceError(
            404,
            "NotFound",
            f"Error retrieving function '{wanted}': it does not exist in the running app "
            f"{record['body']['name']}.",
        )

    async def list_function_keys(self, request: Request) -> Response:
        record = self.site_record(request)
        function = request.path_params["functionName"]
        known = self.runtime.functions(record["body"]["name"])
        if known is not None and function.lower() not in {f.name.lower() for f in known}:
            raise AppServiceError(
                404,
                "NotFound",
                f"Error retrieving function keys: function '{function}' does not exist in "
                f"the running app {record['body']['name']}.",
            )
        # The sandbox host accepts the app's default function key for every function.
        return json_response(
            {
                "id": f"{record['body']['id']}/functions/{function}/keys",
                "name": function,
                "type": "Microsoft.Web/sites/functions/keys",
                "properties": {"default": record["private"]["functionKey"]},
            }
        )
