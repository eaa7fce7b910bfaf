"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives.

It runs in its own thread and event loop, so in-process async tests and tenant subprocesses
can both talk to it. ``refuse`` makes it answer every recipient with a 550; ``credentials``
turns on AUTH (over plain text: loopback only); :func:`dead_port` gives a port nobody
listens on.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

REFUSAL = "550 5.1.1 Mailbox unavailable"


@dataclass
class Received:
    sender: str
    recipients: list[str]
    message: Message

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))  # type: ignore[attr-defined]
        return str(body.get_content()) if body is not None else ""


class _Handler:
    def __init__(self, server: SmtpServer):
        self.server = server

    async def handle_RCPT(self, smtp: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.server.refuse:
            self.server.refusals += 1
            return REFUSAL
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=default_policy)
        with self.server.lock:
            self.server.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 and a free port; ``messages`` holds what arrived."""

    def __init__(self, credentials: tuple[str, str] | None = None):
        self.host = "127.0.0.1"
        self.port = free_port()
        self.refuse = False
        self.refusals = 0
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self.credentials = credentials
        self.auth_attempts = 0
        kwargs: dict[str, Any] = {}
        if credentials is not None:
            kwargs = {"authenticator": self._authenticate, "auth_require_tls": False}
        self.controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                     **kwargs)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        self.auth_attempts += 1
        if isinstance(auth_data, LoginPassword) and self.credentials is not None:
            user, password = self.credentials
            if auth_data.login.decode() == user and auth_data.password.decode() == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def env(self) -> dict[str, str]:
        """``QP_SMTP_*`` variables that point a tenant process here."""
        env = {"QP_SMTP_HOST": self.host, "QP_SMTP_PORT": str(self.port), "QP_SMTP_TLS": "none",
               "QP_SMTP_FROM": "qp-alerts@acme.test"}
        if self.credentials:
            env["QP_SMTP_USER"], env["QP_SMTP_PASSWORD"] = self.credentials
        return env

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        """Block (a thread-safe poll) until ``count`` messages arrived; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} mail(s) within {timeout} s, "
                             f"got {len(self.messages)}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dead_port() -> int:
    """A loopback port with nothing listening: connecting to it is refused."""
    return free_port()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def smtp_server_with_auth() -> Iterator[SmtpServer]:
    server = SmtpServer(credentials=("alerts@acme.test", "s3cret-SMTP-pa55")).start()
    try:
        yield server
    finally:
        server.stop()
