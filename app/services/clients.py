"""The one factory for every Azure management client, imported lazily.

Each client gets the target's credential, subscription, ARM endpoint
(`base_url`), token scopes, CA bundle (`connection_verify`), LRO polling
interval and retry policy. The sandbox differs only in those values.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any, cast

from app.services.target import CloudTarget

if TYPE_CHECKING:
    from azure.containerregistry import ContainerRegistryClient
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.containerregistry import ContainerRegistryManagementClient
    from azure.mgmt.containerregistrytasks import ContainerRegistryTasksMgmtClient
    from azure.mgmt.redis import RedisManagementClient
    from azure.mgmt.redisenterprise import RedisEnterpriseManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.resource.subscriptions import SubscriptionClient
    from azure.mgmt.storage import StorageManagementClient
    from azure.mgmt.web import WebSiteManagementClient

# attribute -> (module, class, takes a subscription id)
_CLIENTS: dict[str, tuple[str, str, bool]] = {
    "resources": ("azure.mgmt.resource.resources", "ResourceManagementClient", True),
    "subscriptions": ("azure.mgmt.resource.subscriptions", "SubscriptionClient", False),
    "redis": ("azure.mgmt.redis", "RedisManagementClient", True),
    "redis_enterprise": ("azure.mgmt.redisenterprise", "RedisEnterpriseManagementClient", True),
    "storage": ("azure.mgmt.storage", "StorageManagementClient", True),
    "web": ("azure.mgmt.web", "WebSiteManagementClient", True),
    "registry": ("azure.mgmt.containerregistry", "ContainerRegistryManagementClient", True),
    "registry_tasks": (
        "azure.mgmt.containerregistrytasks", "ContainerRegistryTasksMgmtClient", True),
    "authorization": ("azure.mgmt.authorization", "AuthorizationManagementClient", True),
}


# The headers azure-core reads a delay from, and their unit per second.
_RETRY_AFTER_HEADERS = (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0),
                        ("Retry-After", 1.0))


def reuse_acr_tokens(policy: Any) -> None:
    """Make azure-containerregistry's challenge policy send its last access token up
    front instead of every request going out bare first.

    As shipped (1.2), each request is sent without credentials, answered 401, and
    sent again after a token exchange: every 4 MB chunk of a layer upload crossed
    the wire twice, with two token POSTs. Docker clients reuse the token; so does
    this. A token without the scope a request needs is still answered 401 and the
    policy's own challenge handling takes over, as before.
    """
    exchange = policy.on_challenge
    last: list[str] = []

    def on_request(request: Any) -> None:
        if last and "Authorization" not in request.http_request.headers:
            request.http_request.headers["Authorization"] = "Bearer " + last[0]

    def on_challenge(request: Any, response: Any, challenge: str) -> bool:
        answered = bool(exchange(request, response, challenge))
        header = request.http_request.headers.get("Authorization", "")
        if answered and header.startswith("Bearer "):
            last[:] = [header.removeprefix("Bearer ")]
        return answered

    policy.on_request = on_request
    policy.on_challenge = on_challenge


class ClientFactory:
    """Makes (once) and hands out the SDK clients for one target."""

    def __init__(self, target: CloudTarget) -> None:
        self.target = target
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client_kwargs(self) -> dict[str, Any]:
        target = self.target
        kwargs: dict[str, Any] = {
            "base_url": target.arm_endpoint,
            "credential_scopes": list(target.credential_scopes),
            "polling_interval": target.polling_interval,
            **target.retry.as_kwargs(),
        }
        if target.ca_bundle is not None:
            kwargs["connection_verify"] = str(target.ca_bundle)
        kwargs["raw_response_hook"] = self._cap_poll_delay
        return kwargs

    def _cap_poll_delay(self, pipeline_response: Any) -> None:
        """Long-running operations are polled at the target's interval at most.

        The SDK sleeps for a status answer's Retry-After rather than its own
        polling interval, and ARM asks for 10 s and more while a cache is being
        created: progress would lag by that much. Only successful answers are
        capped; a throttling 429's Retry-After is honoured by the retry policy.
        """
        response = pipeline_response.http_response
        if response.status_code >= 400:
            return
        interval = self.target.polling_interval
        for header, scale in _RETRY_AFTER_HEADERS:
            value = response.headers.get(header)
            if value is None:
                continue
            try:
                seconds = float(value) / scale
            except ValueError:
                continue  # an HTTP date: rare on ARM, left as sent
            if seconds > interval:
                # Whole numbers: some operations deserialize the header as an int.
                # A 0 makes the SDK fall back to its polling interval (the target's).
                response.headers[header] = str(int(interval * scale))

    def _get(self, attribute: str) -> Any:
        with self._lock:
            client = self._clients.get(attribute)
            if client is None:
                module_name, class_name, needs_subscription = _CLIENTS[attribute]
                cls = getattr(importlib.import_module(module_name), class_name)
                args: list[Any] = [self.target.credential]
                if needs_subscription:
                    args.append(self.target.subscription_id)
                client = cls(*args, **self.client_kwargs())
                self._clients[attribute] = client
            return client

    def resources(self) -> ResourceManagementClient:
        return cast("ResourceManagementClient", self._get("resources"))

    def subscriptions(self) -> SubscriptionClient:
        return cast("SubscriptionClient", self._get("subscriptions"))

    def redis(self) -> RedisManagementClient:
        return cast("RedisManagementClient", self._get("redis"))

    def redis_enterprise(self) -> RedisEnterpriseManagementClient:
        return cast("RedisEnterpriseManagementClient", self._get("redis_enterprise"))

    def storage(self) -> StorageManagementClient:
        return cast("StorageManagementClient", self._get("storage"))

    def web(self) -> WebSiteManagementClient:
        return cast("WebSiteManagementClient", self._get("web"))

    def registry(self) -> ContainerRegistryManagementClient:
        return cast("ContainerRegistryManagementClient", self._get("registry"))

    def registry_tasks(self) -> ContainerRegistryTasksMgmtClient:
        return cast("ContainerRegistryTasksMgmtClient", self._get("registry_tasks"))

    def authorization(self) -> AuthorizationManagementClient:
        return cast("AuthorizationManagementClient", self._get("authorization"))

    def registry_data(self, login_server: str) -> ContainerRegistryClient:
        """A data-plane client for one registry (blobs, manifests), made per call: the
        caller closes it. It runs ACR's token exchange with the target's credential."""
        from azure.containerregistry import ContainerRegistryClient

        kwargs: dict[str, Any] = {"audience": self.target.audience,
                                  **self.target.retry.as_kwargs()}
        if self.target.ca_bundle is not None:
            kwargs["connection_verify"] = str(self.target.ca_bundle)
        client = ContainerRegistryClient(f"https://{login_server}", self.target.credential,
                                         **kwargs)
        reuse_acr_tokens(client._auth_policy)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            close = getattr(client, "close", None)
            if close is not None:
                close()
