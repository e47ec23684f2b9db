"""A Microsoft Entra ID authority on the sandbox endpoint, for the real azure-identity.

MSAL (under azure-identity) reads a tenant's OpenID configuration and then talks
OAuth 2.0 to the endpoints it names, so the sandbox serves the same paths as
`login.microsoftonline.com`, under its own HTTPS endpoint and CA:

  GET  /{tenant}/v2.0/.well-known/openid-configuration    discovery
  GET  /{tenant}/discovery/v2.0/keys                      jwks_uri
  GET  /common/discovery/instance                         instance metadata (only
                                                          asked when discovery is on)
  POST /{tenant}/oauth2/v2.0/devicecode                   device authorization
  GET  /devicelogin, POST /devicelogin                    where the person types the code
  GET  /{tenant}/oauth2/v2.0/authorize                    sign-in page (auth code + PKCE)
  POST /{tenant}/login                                    the sign-in form's target
  POST /{tenant}/oauth2/v2.0/token                        device_code, authorization_code,
                                                          refresh_token grants
  GET  /{tenant}/oauth2/v2.0/logout                       end_session_endpoint

`{tenant}` is a tenant id, its domain, or `organizations`/`common` (the user's
home tenant). Errors have Entra's body: `error`, `error_description` starting
with the AADSTS code, `error_codes`, `timestamp`, `trace_id`, `correlation_id`.
Codes, grants and refresh tokens live in memory: they end with the sandbox run,
as the signing key does. The user signs in with the name and password that
`connection.json` holds; any client id is accepted (the sandbox has no app
registrations), but redirect URIs must be loopback ones, as for a public client.
"""

from __future__ import annotations

import datetime
import hmac
import logging
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from app.sandbox import entra_pages as pages
from app.sandbox.directory import MULTI_TENANT_ALIASES, Directory, Tenant
from app.sandbox.entra_grants import (
    AUTH_CODE_SECONDS,
    DEVICE_CODE_SECONDS,
    Grant,
    GrantBook,
    OAuthError,
    SignInRequest,
    parse_scopes,
    required,
)
from app.sandbox.entra_tokens import ARM_AUDIENCES, TokenIssuer, correlation, new_code

log = logging.getLogger("mlcache.sandbox.entra")

# The paths above, so the server can hand them to this app rather than to ARM.
AUTHORITY_PATH = re.compile(
    r"^/(devicelogin|[^/]+/(v2\.0/\.well-known/openid-configuration|discovery/v2\.0/keys"
    r"|discovery/instance|oauth2/v2\.0/(authorize|token|devicecode|logout)|login))$",
    re.IGNORECASE,
)

_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _is_loopback_redirect(uri: str) -> bool:
    """Public clients redirect to the loopback interface over http (RFC 8252 7.3)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return False
    loopback = parts.hostname in ("localhost", "127.0.0.1")
    return parts.scheme == "http" and loopback and (port is None or 0 < port < 65536)


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (the only kind OAuth 2.0 posts)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(parse_qsl(body, keep_blank_values=True))


class EntraAuthority:
    """The authority's state (grants in flight) and its Starlette app."""

    def __init__(
        self, directory: Directory, tokens: TokenIssuer, *, endpoint: str, fast: bool
    ) -> None:
        self.directory = directory
        self.tokens = tokens
        self.endpoint = endpoint.rstrip("/")
        self.tokens.authority = self.endpoint
        # Entra asks for 5 s between polls; the fast profile keeps tests quick.
        self.poll_interval = 1 if fast else 5
        self.grants = GrantBook()
        self.app = Starlette(routes=self._routes())

    # routing

    def _routes(self) -> list[Route]:
        t = "/{tenant}"
        return [
            Route(t + "/v2.0/.well-known/openid-configuration", self.openid_configuration),
            Route(t + "/discovery/v2.0/keys", self.keys),
            Route(t + "/discovery/instance", self.instance_discovery),
            Route(t + "/oauth2/v2.0/devicecode", self.device_code, methods=["POST"]),
            Route(t + "/oauth2/v2.0/token", self.token, methods=["POST"]),
            Route(t + "/oauth2/v2.0/authorize", self.authorize, methods=["GET"]),
            Route(t + "/oauth2/v2.0/logout", self.logout, methods=["GET"]),
            Route(t + "/login", self.sign_in, methods=["POST"]),
            Route("/devicelogin", self.device_login, methods=["GET", "POST"]),
        ]

    # answers

    def oauth_error(self, request: Request, error: OAuthError) -> JSONResponse:
        trace = correlation()
        corr = request.headers.get("client-request-id") or correlation()
        now = _timestamp()
        description = (
            f"AADSTS{error.aadsts}: {error.message}\r\nTrace ID: {trace}\r\n"
            f"Correlation ID: {corr}\r\nTimestamp: {now}"
        )
        body = {
            "error": error.error,
            "error_description": description,
            "error_codes": [error.aadsts],
            "timestamp": now,
            "trace_id": trace,
            "correlation_id": corr,
        }
        return JSONResponse(body, status_code=error.status, headers={"Cache-Control": "no-store"})

    def _tenant(self, key: str) -> Tenant:
        tenant = self.directory.tenant(key)
        if tenant is None:
            raise OAuthError(
                "invalid_tenant",
                90002,
                f"Tenant '{key}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud. Check with your subscription "
                "administrator, this may happen if there are no active subscriptions for the "
                "tenant.",
            )
        return tenant

    def _resources(self) -> tuple[str, ...]:
        return (*ARM_AUDIENCES, self.endpoint, self.endpoint + "/")

    def _scopes(self, text: str, tenant: Tenant) -> tuple[str, str, frozenset[str]]:
        return parse_scopes(text, tenant, (*ARM_AUDIENCES, self.endpoint, self.endpoint + "/"))

    def _token_answer(self, grant: Grant, form: dict[str, str]) -> JSONResponse:
        who = self.tokens.user(grant.tenant)
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": grant.scope,
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": self.tokens.access_token(who, grant.audience, grant.client_id),
        }
        if "offline_access" in grant.oidc:
            refresh = new_code()
            self.grants.add_refresh_token(refresh, grant.client_id)
            body["refresh_token"] = refresh
        if "openid" in grant.oidc:
            body["id_token"] = self.tokens.id_token(who, grant.client_id, grant.nonce or None)
        if form.get("client_info") == "1":
            body["client_info"] = self.tokens.client_info(who)
        headers = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
        return JSONResponse(body, headers=headers)

    # discovery

    def _tenant_segment(self, key: str, tenant: Tenant) -> str:
        # A domain resolves to the tenant id, as Entra's discovery does; the multi-tenant
        # aliases stay, with Entra's "{tenantid}" placeholder in the issuer.
        return key.lower() if key.lower() in MULTI_TENANT_ALIASES else tenant.tenant_id

    async def openid_configuration(self, request: Request) -> Response:
        key = request.path_params["tenant"]
        try:
            tenant = self._tenant(key)
        except OAuthError as error:
            return self.oauth_error(request, error)
        segment = self._tenant_segment(key, tenant)
        base = f"{self.endpoint}/{segment}"
        issuer_tenant = "{tenantid}" if segment in MULTI_TENANT_ALIASES else tenant.tenant_id
        document = {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.endpoint}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
                "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email",
            ],
            "tenant_region_scope": "WW",
        }
        return JSONResponse(document, headers={"Cache-Control": "max-age=86400, private"})

    async def keys(self, request: Request) -> Response:
        key = request.path_params["tenant"]
        try:
            tenant = self._tenant(key)
        except OAuthError as error:
            return self.oauth_error(request, error)
        return JSONResponse(self.tokens.jwks(self.tokens.v2_issuer(tenant.tenant_id)))

    async def instance_discovery(self, request: Request) -> Response:
        host = urlsplit(self.endpoint).hostname or "127.0.0.1"
        endpoint = request.query_params.get("authorization_endpoint", "")
        path = urlsplit(endpoint).path.split("/")
        tenant = path[1] if len(path) > 1 and path[1] else "common"
        return JSONResponse(
            {
                "tenant_discovery_endpoint": (
                    f"{self.endpoint}/{tenant}/v2.0/.well-known/openid-configuration"
                ),
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            }
        )

    # device code flow

    async def device_code(self, request: Request) -> Response:
        form = await _form(request)
        try:
            tenant = self._tenant(request.path_params["tenant"])
            client_id = required(form, "client_id")
            audience, scope, oidc = self._scopes(required(form, "scope"), tenant)
        except OAuthError as error:
            return self.oauth_error(request, error)
        device_code = new_code()
        user_code = "".join(
            _USER_CODE_ALPHABET[b % len(_USER_CODE_ALPHABET)] for b in secrets.token_bytes(9)
        )
        grant = Grant(
            client_id, tenant, audience, scope, oidc,
            expires_at=time.time() + DEVICE_CODE_SECONDS, user_code=user_code,
        )
        self.grants.add_device_code(device_code, grant)
        verification_uri = f"{self.endpoint}/devicelogin"
        return JSONResponse(
            {
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": verification_uri,
                "expires_in": DEVICE_CODE_SECONDS,
                "interval": self.poll_interval,
                "message": (
                    f"To sign in, use a web browser to open the page {verification_uri} and "
                    f"enter the code {user_code} to authenticate."
                ),
            },
            headers={"Cache-Control": "no-store"},
        )

    async def device_login(self, request: Request) -> Response:
        action = f"{self.endpoint}/devicelogin"
        if request.method == "GET":
            return pages.device_login_page(action)
        form = await _form(request)
        user_code = form.get("otc", "").strip().upper()
        grant = self.grants.waiting_device_grant(user_code)
        if grant is None:
            return pages.device_login_page(
                action, error="That code didn't work. Check the code and try again.", status=400
            )
        if not self._credentials_valid(form):
            return pages.device_login_page(
                action, user_code=user_code, error=_BAD_CREDENTIALS, status=400
            )
        self.grants.approve(grant)
        log.info("device code sign-in approved in tenant %s", grant.tenant.tenant_id)
        return pages.device_done_page(grant.client_id)

    def _credentials_valid(self, form: dict[str, str]) -> bool:
        user = self.directory.user
        name_ok = form.get("login", "").strip().lower() == user.username.lower()
        password_ok = hmac.compare_digest(
            form.get("passwd", "").encode(), user.password.encode()
        )
        return name_ok and password_ok

    # authorization code flow

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        key = request.path_params["tenant"]
        tenant = self.directory.tenant(key)
        if tenant is None:
            return pages.error_page("Sign in", f"AADSTS90002: Tenant '{key}' not found.")
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if not client_id:
            return pages.error_page(
                "Sign in",
                "AADSTS900144: The request body must contain the following parameter: "
                "'client_id'.",
            )
        if not _is_loopback_redirect(redirect_uri):
            return pages.error_page(
                "Sign in",
                f"AADSTS50011: The redirect URI '{redirect_uri}' specified in the request does "
                f"not match the redirect URIs configured for the application '{client_id}'. "
                "The sandbox accepts loopback redirect URIs (http://localhost or "
                "http://127.0.0.1) only.",
            )
        try:
            if "code" not in params.get("response_type", "").split():
                raise OAuthError(
                    "unsupported_response_type",
                    70005,
                    "The sandbox supports response_type 'code' only.",
                )
            method = params.get("code_challenge_method") or (
                "plain" if params.get("code_challenge") else ""
            )
            if method not in ("", "plain", "S256"):
                raise OAuthError(
                    "invalid_request", 50147, f"The code_challenge_method '{method}' is invalid."
                )
            if params.get("prompt") == "none":
                raise OAuthError(
                    "login_required", 50058, "A silent sign-in request was sent but no user is "
                    "signed in."
                )
            audience, scope, oidc = self._scopes(params.get("scope", ""), tenant)
        except OAuthError as error:
            return self._redirect_error(params, error)
        request_id = new_code()
        self.grants.add_sign_in(request_id, SignInRequest(params, tenant, audience, scope, oidc))
        return pages.sign_in_page(
            f"{self.endpoint}/{tenant.tenant_id}/login",
            request_id,
            tenant_name=tenant.display_name,
            username=params.get("login_hint", ""),
        )

    async def sign_in(self, request: Request) -> Response:
        form = await _form(request)
        request_id = form.get("ctx", "")
        pending = self.grants.sign_in(request_id)
        if pending is None:
            return pages.error_page(
                "Sign in", "This sign-in request is no longer valid. Start the sign-in again."
            )
        if not self._credentials_valid(form):
            return pages.sign_in_page(
                f"{self.endpoint}/{pending.tenant.tenant_id}/login",
                request_id,
                tenant_name=pending.tenant.display_name,
                username=form.get("login", ""),
                error=_BAD_CREDENTIALS,
                status=400,
            )
        self.grants.end_sign_in(request_id)
        params = pending.params
        code = new_code()
        grant = Grant(
            params["client_id"], pending.tenant, pending.audience, pending.scope, pending.oidc,
            expires_at=time.time() + AUTH_CODE_SECONDS, approved=True,
            redirect_uri=params["redirect_uri"],
            code_challenge=params.get("code_challenge", ""),
            challenge_method=params.get("code_challenge_method")
            or ("plain" if params.get("code_challenge") else ""),
            nonce=params.get("nonce", ""),
        )
        self.grants.add_code(code, grant)
        log.info("browser sign-in completed in tenant %s", pending.tenant.tenant_id)
        answer = {"code": code}
        if params.get("client_info") == "1":
            answer["client_info"] = self.tokens.client_info(self.tokens.user(pending.tenant))
        if "state" in params:
            answer["state"] = params["state"]
        answer["session_state"] = correlation()
        return self._deliver(params, answer)

    def _deliver(self, params: dict[str, str], answer: dict[str, str]) -> Response:
        """Hand the authorize answer to the redirect URI the way `response_mode` asks."""
        redirect_uri = params["redirect_uri"]
        mode = params.get("response_mode", "query")
        if mode == "form_post":
            return pages.form_post_page(redirect_uri, answer)
        separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
        return RedirectResponse(redirect_uri + separator + urlencode(answer), status_code=302)

    def _redirect_error(self, params: dict[str, str], error: OAuthError) -> Response:
        answer = {
            "error": error.error,
            "error_description": f"AADSTS{error.aadsts}: {error.message}",
        }
        if "state" in params:
            answer["state"] = params["state"]
        return self._deliver(params, answer)

    async def logout(self, request: Request) -> Response:
        target = request.query_params.get("post_logout_redirect_uri", "")
        if target and _is_loopback_redirect(target):
            return RedirectResponse(target, status_code=302)
        return pages.signed_out_page()

    # the token endpoint

    async def token(self, request: Request) -> Response:
        form = await _form(request)
        try:
            tenant = self._tenant(request.path_params["tenant"])
            grant_type = required(form, "grant_type")
            client_id = required(form, "client_id")
            if grant_type == "urn:ietf:params:oauth:grant-type:device_code":
                grant = self.grants.redeem_device_code(required(form, "device_code"), client_id)
            elif grant_type == "authorization_code":
                grant = self.grants.redeem_code(form, client_id)
            elif grant_type == "refresh_token":
                grant = self._redeem_refresh_token(form, client_id, tenant)
            else:
                raise OAuthError(
                    "unsupported_grant_type",
                    70003,
                    f"The app requested an unsupported grant type '{grant_type}'.",
                )
        except OAuthError as error:
            return self.oauth_error(request, error)
        return self._token_answer(grant, form)

    def _redeem_refresh_token(self, form: dict[str, str], client_id: str, tenant: Tenant) -> Grant:
        self.grants.check_refresh_token(required(form, "refresh_token"), client_id)
        # The tokens are the asked tenant's: a refresh token of the home tenant redeemed at a
        # guest tenant's endpoint gives that tenant's tokens (how MSAL switches tenants).
        audience, scope, oidc = self._scopes(required(form, "scope"), tenant)
        return Grant(client_id, tenant, audience, scope, oidc | {"offline_access"}, time.time())


_BAD_CREDENTIALS = "AADSTS50126: Error validating credentials due to invalid username or password."
