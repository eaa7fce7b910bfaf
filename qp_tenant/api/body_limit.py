"""A cap on request bodies for the API, applied before FastAPI reads anything.

FastAPI reads a JSON body whole before validating it, so without a cap one unauthenticated
request could make the process hold hundreds of megabytes. This pure-ASGI layer sits in front
of it (the webhook has its own, smaller cap in api/hooks.py and does not pass through here):

* a ``Content-Length`` over the cap is refused at once, without reading the body;
* a body without one (chunked) is counted as the application reads it; past the cap the read
  fails, whatever the application answers is replaced by the 413, and the connection is
  closed (the rest of the body is never read).

Both answer 413 ``payload_too_large`` in the API's error shape.
"""

from __future__ import annotations

from typing import Any

from qp_tenant.api.hooks import send_json

MAX_API_BODY_BYTES = 1024 * 1024

Scope = dict[str, Any]
Message = dict[str, Any]


class _BodyTooLarge(Exception):
    """Raised from ``receive`` once the body has passed the cap."""


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length, None without one, -1 when it is not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


class BodySizeLimit:
    """Wraps an ASGI app; HTTP request bodies over ``max_bytes`` get 413."""

    def __init__(self, app: Any, max_bytes: int = MAX_API_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, send: Any) -> None:
        limit = (f"{self.max_bytes // (1024 * 1024)} MiB" if self.max_bytes >= 1024 * 1024
                 else f"{self.max_bytes // 1024} KiB")
        await send_json(send, 413, {"error": {
            "code": "payload_too_large",
            "message": f"The request body is larger than {limit}; send less at a time.",
            "details": {"max_bytes": self.max_bytes},
        }}, headers={"Connection": "close"})

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and not 0 <= declared <= self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # The application answered its failed read (400, 500, ...): answer 413 instead.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._refuse(send)
