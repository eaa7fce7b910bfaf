"""The one error shape of the HTTP contract: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from typing import Any

from qp_common.wire import error_body


class ApiError(Exception):
    """A refusal a client can act on. Routes and domain functions raise it; the app renders it."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.details)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} was not found.")
