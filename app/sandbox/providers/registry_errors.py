"""A registry data-plane failure, answered in the Docker Registry v2 error shape
(`{"errors": [{"code", "message", "detail"}]}`) that registry clients parse."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response


class DataPlaneError(Exception):
    """A data-plane failure in the Docker Registry v2 error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        detail: Any = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.detail = detail

    def response(self) -> Response:
        return JSONResponse(
            {"errors": [{"code": self.code, "message": self.message, "detail": self.detail}]},
            status_code=self.status,
            headers={"Docker-Distribution-API-Version": "registry/2.0", **self.headers},
        )
