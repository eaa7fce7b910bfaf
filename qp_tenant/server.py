"""Run the tenant with uvicorn on a socket we bind ourselves (so ``--port 0`` can report)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator

import uvicorn

from qp_common.wire import listening_line
from qp_tenant.app import create_app
from qp_tenant.config import Settings

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    """uvicorn, exiting 0 after a graceful shutdown on SIGTERM/SIGINT.

    On SIGTERM uvicorn stops accepting, lets in-flight requests finish (up to
    ``timeout_graceful_shutdown``; a webhook's 202 is only sent after its commit), ends SSE
    streams with a ``retry:`` hint, runs the lifespan shutdown (the ingest queue is drained
    and committed), and then re-raises the signal so the process dies "killed by SIGTERM".
    Everything was finished cleanly by then, so report it as a clean exit instead.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: otherwise asyncio never sets TCP_NODELAY on accepted connections and
    # every response waits ~40 ms for Nagle + delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


async def serve(settings: Settings) -> int:
    try:
        sock = bind_socket(settings.host, settings.port)
    except OSError as exc:
        print(f"qp-tenant: cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
              file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    settings = settings.model_copy(update={"port": port})
    app = create_app(settings)
    config = uvicorn.Config(
        app, log_config=None, access_log=True, lifespan="on", proxy_headers=True,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds, timeout_keep_alive=30,
    )
    server = GracefulServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    # uvicorn offers no "started" event to await; poll its flag briefly.
    while not server.started and not task.done():  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    if server.started:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        print(listening_line(host, port), flush=True)
        log.info("Tenant serving on http://%s:%d; webhook base %s", host, port,
                 app.state.public_url)
    await task
    # Requests that waited for the ingest's final drain have their answers by now; give them
    # a moment to write them (what still runs after that gets no answer, which is allowed).
    pending = [t for t in server.server_state.tasks if not t.done()]
    if pending:
        await asyncio.wait(pending, timeout=2)
    if server.started and server.should_exit:
        # WORKAROUND: after a SIGTERM under load (PostgreSQL), interpreter teardown stalls
        # for seconds in native finalisers (no Python frame), which makes a supervisor wait
        # and then SIGKILL. The lifespan shutdown has committed, answered and closed
        # everything by now, so flush the logs and leave at once.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0 if server.started else 1
