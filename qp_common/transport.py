"""A failed connection (httpx, httpcore, ssl, socket) as a sentence a person can act on.

The tenant talking to IT Glue, the agent talking to the tenant and the desktop app talking
to either all fail the same few ways: the name does not resolve, nothing listens on the
port, the certificate is not trusted, the other side never answers. :func:`describe_transport_error`
tells which, from the exception and its chained causes (httpx wraps httpcore, which wraps
the ``OSError``/``ssl.SSLError``), without importing any HTTP library.

None of these is something the remote service *said*: a name that did not resolve was never
asked anything.
"""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass

DNS = "dns"
TLS = "tls"
REFUSED = "refused"
TIMEOUT = "timeout"
CONNECTION = "connection"  # reset, dropped, unreachable network, anything else

# OpenSSL's X509_V_ERR_* codes worth their own sentence.
_CERT_EXPIRED = 10
_CERT_SELF_SIGNED = (18, 19)
_CERT_HOSTNAME_MISMATCH = 62

_DNS_TEXTS = ("name or service not known", "nodename nor servname", "getaddrinfo failed",
              "temporary failure in name resolution", "no address associated with hostname",
              "name does not resolve", "name resolution")
_TLS_TEXTS = ("certificate verify failed", "certificate", "ssl", "tls", "handshake")


@dataclass(frozen=True)
class TransportFailure:
    """What went wrong (``kind``: one of ``dns``, ``tls``, ``refused``, ``timeout``,
    ``connection``) and a sentence that names the host and says it."""

    kind: str
    message: str
    # A TLS failure because the certificate was not accepted (untrusted, expired, another
    # name), rather than the handshake itself: a CA file may fix it.
    certificate: bool = False

    def __str__(self) -> str:
        return self.message


def _chain(exc: BaseException) -> list[BaseException]:
    seen: set[int] = set()
    out: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        out.append(current)
        current = current.__cause__ or current.__context__
    return out


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | socket.timeout):
        return True
    # httpx.TimeoutException, httpcore.TimeoutException and their subclasses, by name, so
    # that this module needs no HTTP library.
    return any(cls.__name__ in ("TimeoutException", "ConnectTimeout", "ReadTimeout",
                                "WriteTimeout", "PoolTimeout") for cls in type(exc).__mro__)


def _host_name(host: str) -> str:
    """``host`` without its port, for the DNS sentence (ports do not resolve)."""
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _tls_sentence(error: BaseException, host: str) -> str:
    code = getattr(error, "verify_code", None)
    detail = getattr(error, "verify_message", None) or getattr(error, "reason", None) or ""
    detail = str(detail or error).strip()
    if code == _CERT_HOSTNAME_MISMATCH:
        return (f"The certificate of {host} is not trusted: it was issued for another name "
                f"({detail}).")
    if code == _CERT_EXPIRED:
        return f"The certificate of {host} is not trusted: it has expired."
    if code in _CERT_SELF_SIGNED:
        return (f"The certificate of {host} is not trusted: it is self-signed or signed by a "
                f"private CA ({detail}).")
    if isinstance(error, ssl.SSLCertVerificationError) or "certificate" in detail.lower():
        return f"The certificate of {host} is not trusted ({detail})."
    if "wrong_version_number" in detail.lower() or "wrong version number" in detail.lower():
        return (f"The secure (TLS) connection to {host} failed: it does not speak https on "
                "that port (plain http?).")
    return f"The secure (TLS) connection to {host} failed ({detail})."


def describe_transport_error(exc: BaseException, host: str) -> TransportFailure:
    """Why no HTTP answer came back from ``host`` (``name`` or ``name:port``), as a sentence.

    Args:
        exc: what the HTTP client raised (any exception; its causes are searched).
        host: the host as the person knows it; it is the only part of the URL named, so a
            token in the path never reaches the sentence.
    """
    chain = _chain(exc)
    for error in chain:
        if isinstance(error, ssl.SSLError | ssl.CertificateError):
            sentence = _tls_sentence(error, host)
            return TransportFailure(TLS, sentence,
                                    certificate=sentence.startswith("The certificate"))
        if isinstance(error, socket.gaierror):
            return TransportFailure(DNS, f"The name {_host_name(host)} did not resolve: check "
                                         "the address, and this computer's DNS and network.")
        if isinstance(error, ConnectionRefusedError):
            return TransportFailure(REFUSED, f"{host} refused the connection (Connection "
                                             "refused): nothing listens on that port, or a "
                                             "firewall turns it away.")
    if any(_is_timeout(error) for error in chain):
        return TransportFailure(TIMEOUT, f"{host} did not answer in time (timed out).")
    for error in chain:
        if isinstance(error, OSError) and error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return TransportFailure(CONNECTION, f"{host} cannot be reached from this network "
                                                f"({error.strerror}).")
        if isinstance(error, ConnectionResetError | BrokenPipeError):
            return TransportFailure(CONNECTION, f"The connection to {host} was cut off "
                                                "(Connection reset).")
    # Nothing typed in the chain (a hand-made error, another library): read the text.
    text = " ".join(str(error) for error in chain)
    lowered = text.lower()
    if any(t in lowered for t in _DNS_TEXTS):
        return TransportFailure(DNS, f"The name {_host_name(host)} did not resolve: check "
                                     "the address, and this computer's DNS and network.")
    if "connection refused" in lowered:
        return TransportFailure(REFUSED, f"{host} refused the connection (Connection refused): "
                                         "nothing listens on that port, or a firewall turns "
                                         "it away.")
    if any(t in lowered for t in _TLS_TEXTS):
        return TransportFailure(TLS, f"The certificate of {host} is not trusted, or the secure "
                                     f"(TLS) connection failed ({str(exc) or 'no detail'}).",
                                certificate="certificate" in lowered)
    if "timed out" in lowered:
        return TransportFailure(TIMEOUT, f"{host} did not answer in time (timed out).")
    detail = str(exc) or type(exc).__name__
    return TransportFailure(CONNECTION, f"The connection to {host} failed ({detail}).")
