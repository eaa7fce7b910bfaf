"""``POST /hooks/itglue/{token}`` as a bare ASGI handler: what IT Glue calls.

It sits in front of FastAPI on purpose: the hot path reads the body under a hard size cap,
parses it, and hands it to the group-commit ingest with nothing else in the way.
"""

from __future__ import annotations

import json
import re
from typing import Any

from qp_common.wire import error_body
from qp_tenant.domain.webhook import MAX_BODY_BYTES, Trigger, TriggerIngest, parse_body

HOOK_PREFIX = "/hooks/itglue/"
# What a workflow token can look like (``qpwt_`` and base64url); anything else is unknown
# without a lookup, and its body is not even read.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,200}")

Scope = dict[str, Any]
# Built once: ``json.dumps`` with options builds an encoder per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))


async def send_json(send: Any, status: int, body: dict[str, Any],
                    headers: dict[str, str] | None = None) -> None:
    payload = _COMPACT.encode(body).encode()
    raw_headers = [(b"content-type", b"application/json"),
                   (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


def _error(code: str, message: str) -> dict[str, Any]:
    return error_body(code, message)


TOO_LARGE = (413, "payload_too_large",
             f"The body is larger than {MAX_BODY_BYTES // 1024} KiB; IT Glue's payload is tiny.")


async def read_capped(scope: Scope, receive: Any) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed the cap."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                if int(value) > MAX_BODY_BYTES:
                    return None
            except ValueError:
                return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def handle_hook(scope: Scope, receive: Any, send: Any, ingest: TriggerIngest) -> None:
    path: str = scope["path"]
    token = path[len(HOOK_PREFIX):].strip("/")
    if scope["method"] != "POST":
        await send_json(send, 405, _error("method_not_allowed",
                                          "IT Glue workflows POST to this URL."),
                        {"Allow": "POST"})
        return
    if not TOKEN_SHAPE.fullmatch(token):
        await send_json(send, 404, _error("unknown_token", "This workflow URL is not known."))
        return
    raw = await read_capped(scope, receive)
    trigger = Trigger(token=token)
    if raw is None:
        trigger.refusal = TOO_LARGE
    else:
        trigger.body, trigger.refusal = parse_body(raw)
    status, body, headers = await ingest.submit(trigger)
    if raw is None:
        # Close the connection: otherwise the server would keep reading (and discarding) the
        # rest of an oversized body to reuse the connection.
        headers = {**headers, "Connection": "close"}
    await send_json(send, status, body, headers)


async def baseline_202(scope: Scope, receive: Any, send: Any) -> None:
    """The benchmark floor: same server, no framework, no database."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    await send_json(send, 202, {"event_id": 0, "status": "accepted"})
