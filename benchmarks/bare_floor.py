"""The benchmark floor: a bare ASGI callable answering 202, served by uvicorn exactly as the
tenant is served (uvloop + httptools as pinned, one process, the socket bound the same way),
with no framework, no database and no logging. Prints the ``listening on`` line, like the
tenant, so tests/support/processes.py can start it.

Run: .venv/bin/python benchmarks/bare_floor.py [--port 0]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qp_common.wire import listening_line  # noqa: E402
from qp_tenant.server import GracefulServer, bind_socket  # noqa: E402

ANSWER = b'{"event_id":0,"status":"accepted"}'
HEADERS = [(b"content-type", b"application/json"),
           (b"content-length", str(len(ANSWER)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    while True:  # read the whole body, as the webhook does
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 202, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


async def serve(asgi: Any, port: int) -> None:
    """Serve ``asgi`` on 127.0.0.1:``port`` as the tenant is served; print the listening line."""
    sock = bind_socket("127.0.0.1", port)
    config = uvicorn.Config(asgi, log_config=None, access_log=False, lifespan="on",
                            loop="uvloop", http="httptools", timeout_keep_alive=30)
    # The tenant's server class: on SIGTERM it returns instead of dying by the signal, so a
    # floor's temporary database folder is removed when a benchmark round stops it.
    server = GracefulServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():  # noqa: ASYNC110 - no "started" event
        await asyncio.sleep(0.01)
    print(listening_line("127.0.0.1", sock.getsockname()[1]), flush=True)
    await task


async def lifespan(receive: Any, send: Any, startup: Any = None) -> None:
    """The ASGI lifespan protocol; ``startup()`` runs before startup is reported complete."""
    while (await receive())["type"] != "lifespan.shutdown":
        if startup is not None:
            startup()
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    import uvloop

    uvloop.run(serve(app, args.port))


if __name__ == "__main__":
    main()
