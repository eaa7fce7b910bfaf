"""Alert mail over SMTP (aiosmtplib): one connection per message, a sentence for each failure.

The SMTP password is only ever handed to aiosmtplib; it is kept out of ``repr`` and no error
text built here can contain it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from qp_tenant.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to hand mail over (``QP_SMTP_*``)."""

    host: str
    port: int = 25
    tls: str = "none"  # none | starttls | tls
    user: str = ""
    password: str = field(default="", repr=False)
    sender: str = "qp-tenant@localhost"
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(host=settings.smtp_host, port=settings.smtp_port, tls=settings.smtp_tls,
                   user=settings.smtp_user, password=settings.smtp_password,
                   sender=settings.smtp_from, timeout=settings.smtp_timeout_seconds)

    @property
    def configured(self) -> bool:
        return bool(self.host.strip())


class MailError(Exception):
    """A mail that was not handed over. ``reason`` is a sentence for the event log.

    ``permanent`` means retrying cannot help (nothing to connect to is configured).
    """

    def __init__(self, reason: str, *, permanent: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


def build_message(sender: str, recipients: Sequence[str], subject: str, body: str
                  ) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(body)
    return message


def describe_smtp_error(exc: BaseException, host: str, port: int) -> str:
    """A sentence a technician can act on. Never includes credentials."""
    where = f"{host}:{port}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        first = exc.recipients[0] if exc.recipients else None
        detail = f": {first.code} {first.message}" if first else ""
        return f"SMTP server {where} refused every recipient{detail}"
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return (f"SMTP server {where} rejected the user name or password "
                f"(QP_SMTP_USER / QP_SMTP_PASSWORD): {exc.code} {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPConnectTimeoutError):
        return f"could not connect to {where}: no answer in time"
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return f"SMTP server {where} refused the connection: {exc.code} {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"SMTP server {where} refused: {exc.code} {exc.message}"
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        return f"could not connect to {where}"
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return f"SMTP server {where} did not answer in time"
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return f"SMTP server {where} does not support what QP_SMTP_TLS asks for: {exc}"
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return f"SMTP server {where} closed the connection unexpectedly"
    if isinstance(exc, OSError):
        return f"could not connect to {where}: {exc.strerror or exc}"
    return f"could not send through {where}: {type(exc).__name__}"


class Mailer:
    """Sends one plain-text mail per call through the configured SMTP server."""

    def __init__(self, config: SmtpConfig):
        self.config = config

    @property
    def configured(self) -> bool:
        return self.config.configured

    async def send(self, recipients: Sequence[str], subject: str, body: str) -> list[str]:
        """Send; return the recipients the server refused (when it took at least one).

        Raises:
            MailError: nothing was delivered to the server.
        """
        cfg = self.config
        if not cfg.configured:
            raise MailError("SMTP is not configured: set QP_SMTP_HOST (and QP_SMTP_PORT, "
                            "QP_SMTP_TLS, QP_SMTP_FROM) for the tenant service", permanent=True)
        if not recipients:
            raise MailError("no recipients configured", permanent=True)
        message = build_message(cfg.sender, recipients, subject, body)
        try:
            refused, _ = await aiosmtplib.send(
                message,
                sender=cfg.sender,
                recipients=list(recipients),
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.user or None,
                password=(cfg.password or None) if cfg.user else None,
                use_tls=cfg.tls == "tls",
                start_tls=cfg.tls == "starttls",
                timeout=cfg.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            reason = describe_smtp_error(exc, cfg.host, cfg.port)
            log.warning("Alert mail %r not sent: %s", subject, reason)
            raise MailError(reason) from None
        log.info("Alert mail %r handed to %s:%d for %d recipient(s)", subject, cfg.host,
                 cfg.port, len(recipients) - len(refused))
        return sorted(refused)
