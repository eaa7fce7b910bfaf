"""A failed connection, described: each way a real connection fails, made for real."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from qp_common.transport import (
    CONNECTION,
    DNS,
    REFUSED,
    TIMEOUT,
    TLS,
    describe_transport_error,
)


def _failure(url: str, **kwargs: object) -> BaseException:
    with pytest.raises(httpx.HTTPError) as caught:
        httpx.get(url, timeout=kwargs.pop("timeout", 5), **kwargs)  # type: ignore[arg-type]
    return caught.value


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qp transport test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _Server:
    """A loopback listener that, per connection, does a TLS handshake, or says nothing."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = int(self.sock.getsockname()[1])
        self.context = context
        self.open: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(conn)
            if self.context is not None:
                with contextlib.suppress(ssl.SSLError, OSError):
                    self.open.append(self.context.wrap_socket(conn, server_side=True))

    def close(self) -> None:
        self.sock.close()
        for conn in self.open:
            conn.close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[_Server, Path]]:
    cert, key = _certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = _Server(context)
    yield server, cert
    server.close()


@pytest.fixture
def silent_server() -> Iterator[_Server]:
    server = _Server(None)
    yield server
    server.close()


def test_a_name_that_does_not_resolve_says_so() -> None:
    failure = describe_transport_error(_failure("https://qp-tenant.invalid/"),
                                       "qp-tenant.invalid")
    assert failure.kind == DNS
    assert failure.message.startswith("The name qp-tenant.invalid did not resolve")


def test_a_refused_connection_says_so() -> None:
    port = _unused_port()
    failure = describe_transport_error(_failure(f"http://127.0.0.1:{port}/"),
                                       f"127.0.0.1:{port}")
    assert failure.kind == REFUSED
    assert failure.message.startswith(f"127.0.0.1:{port} refused the connection")


def test_an_untrusted_certificate_says_so(tls_server: tuple[_Server, Path]) -> None:
    server, _ = tls_server
    host = f"127.0.0.1:{server.port}"
    failure = describe_transport_error(_failure(f"https://{host}/"), host)
    assert failure.kind == TLS
    assert failure.message.startswith(f"The certificate of {host} is not trusted")
    assert "self-signed" in failure.message


def test_a_certificate_for_another_name_says_so(tls_server: tuple[_Server, Path]) -> None:
    server, cert = tls_server
    host = f"localhost:{server.port}"
    failure = describe_transport_error(
        _failure(f"https://{host}/", verify=ssl.create_default_context(cafile=str(cert))), host)
    assert failure.kind == TLS
    assert "issued for another name" in failure.message


def test_https_to_a_plain_port_says_it_is_not_https(silent_server: _Server) -> None:
    # A server that answers plain text to a TLS hello.
    port = _unused_port()
    listener = socket.create_server(("127.0.0.1", port))

    def answer() -> None:
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        failure = describe_transport_error(_failure(f"https://127.0.0.1:{port}/"),
                                           f"127.0.0.1:{port}")
    finally:
        listener.close()
    assert failure.kind == TLS
    assert "does not speak https" in failure.message


def test_a_server_that_never_answers_timed_out(silent_server: _Server) -> None:
    host = f"127.0.0.1:{silent_server.port}"
    failure = describe_transport_error(_failure(f"http://{host}/", timeout=0.2), host)
    assert failure.kind == TIMEOUT
    assert failure.message == f"{host} did not answer in time (timed out)."


@pytest.mark.parametrize(("exc", "kind", "says"), [
    (httpx.ConnectError("[Errno 111] Connection refused"), REFUSED, "refused the connection"),
    (httpx.ConnectError("[Errno -2] Name or service not known"), DNS, "did not resolve"),
    (httpx.ConnectError("certificate verify failed"), TLS, "certificate"),
    (httpx.ReadTimeout("timed out"), TIMEOUT, "did not answer in time"),
    (httpx.RemoteProtocolError("Server disconnected"), CONNECTION, "Server disconnected"),
    (ConnectionResetError(104, "Connection reset by peer"), CONNECTION, "cut off"),
    (OSError(101, "Network is unreachable"), CONNECTION, "cannot be reached from this network"),
])
def test_errors_without_a_typed_cause_are_read_from_their_text(
        exc: BaseException, kind: str, says: str) -> None:
    failure = describe_transport_error(exc, "api.itglue.com")
    assert failure.kind == kind and says in failure.message
    assert str(failure) == failure.message


def test_the_sentence_names_the_host_only() -> None:
    exc = httpx.ConnectError("[Errno -2] Name or service not known")
    failure = describe_transport_error(exc, "qp.example.com:8443")
    assert failure.message.startswith("The name qp.example.com did not resolve")
    assert "IT Glue said" not in failure.message


def test_only_certificate_refusals_are_flagged_as_certificate_problems(
        tls_server: tuple[_Server, Path]) -> None:
    server, _ = tls_server
    host = f"127.0.0.1:{server.port}"
    assert describe_transport_error(_failure(f"https://{host}/"), host).certificate
    port = _unused_port()
    assert not describe_transport_error(_failure(f"http://127.0.0.1:{port}/"),
                                        f"127.0.0.1:{port}").certificate
