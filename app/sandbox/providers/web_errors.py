"""App Service's own error body, which Microsoft.Web sends instead of ARM's.

ARM itself answers `{"error": {"code", "message"}}`, but once a request reaches the
App Service resource provider, the RP answers in its own PascalCase shape with no
`error` wrapper, as live answers quoted in Azure/azure-cli#31665,
Azure/terraform-azurerm-avm-res-web-site#248 and azure-cli's appservice recordings
show:

    {"Code": "Conflict", "Message": "Website with given name x already exists.",
     "Target": null,
     "Details": [{"Message": "..."}, {"Code": "Conflict"},
                 {"ErrorEntity": {"ExtendedCode": "54001",
                                  "MessageTemplate": "Website with given name {0} already exists.",
                                  "Parameters": ["x"], "Code": "Conflict", "Message": "..."}}],
     "Innererror": null}

Clients that only read ARM's shape (azure-core's `HttpResponseError.error`) get
nothing out of it, which is exactly what they get from Azure; emulating it lets the
product's own reading of App Service errors be tested. Errors that ARM sends before
the RP (a missing group, an unknown resource, authentication, api-version, a body
that is not JSON) keep ARM's shape.

`ExtendedCode` and `MessageTemplate` are App Service's where a live answer shows
them (54001, 51004, 70007 below); where none was found the code is null and the
template is the message itself, rather than a made-up number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.sandbox.arm import ArmError

# "Website with given name {0} already exists." (azure-cli troubleshooting recordings).
SITE_EXISTS_EXTENDED_CODE = "54001"
# "Cannot find {0} with name {1}." (seen for ServerFarm, Site, User).
CANNOT_FIND_EXTENDED_CODE = "51004"
# "Operation cannot be completed without additional quota. ..." on plan PUT (HTTP 401).
QUOTA_EXTENDED_CODE = "70007"


class AppServiceError(ArmError):
    """An ARM failure that App Service (not ARM) sends, in App Service's own shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        extended_code: str | None = None,
        template: str | None = None,
        parameters: Sequence[str] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, code, message, headers)
        self.extended_code = extended_code
        self.template = template if template is not None else message
        self.parameters = list(parameters)

    def body(self) -> dict[str, Any]:
        return {
            "Code": self.code,
            "Message": self.message,
            "Target": None,
            "Details": [
                {"Message": self.message},
                {"Code": self.code},
                {
                    "ErrorEntity": {
                        "ExtendedCode": self.extended_code,
                        "MessageTemplate": self.template,
                        "Parameters": self.parameters,
                        "Code": self.code,
                        "Message": self.message,
                    }
                },
            ],
            "Innererror": None,
        }


def app_service_error(error: ArmError) -> ArmError:
    """`error` in App Service's shape (an AppServiceError is returned as it is)."""
    if isinstance(error, AppServiceError):
        return error
    return AppServiceError(error.status, error.code, error.message, headers=error.headers)


def bad_request(message: str, code: str = "BadRequest") -> AppServiceError:
    return AppServiceError(400, code, message)


def conflict(message: str) -> AppServiceError:
    return AppServiceError(409, "Conflict", message)


def cannot_find(kind: str, name: str) -> AppServiceError:
    """App Service's 404 for a resource a request refers to (not the one its path names)."""
    return AppServiceError(
        404,
        "NotFound",
        f"Cannot find {kind} with name {name}.",
        extended_code=CANNOT_FIND_EXTENDED_CODE,
        template="Cannot find {0} with name {1}.",
        parameters=[kind, name],
    )


def site_exists(name: str) -> AppServiceError:
    return AppServiceError(
        409,
        "Conflict",
        f"Website with given name {name} already exists.",
        extended_code=SITE_EXISTS_EXTENDED_CODE,
        template="Website with given name {0} already exists.",
        parameters=[name],
    )
