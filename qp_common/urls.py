"""Tenant URLs: which host is this computer, which URL a client may sign in to, and which
URL IT Glue could call from the internet.

Everything is decided from the text alone, without DNS: a name that resolves to a private
address today may resolve elsewhere tomorrow, and a check that trusts a lookup can be talked
into anything.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TenantURLError(ValueError):
    """A tenant URL that cannot be used; the message says what to type instead."""


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this computer's loopback interface.

    True for the names ``localhost`` and ``localhost.``, and for loopback IP literals written
    the standard way (``127.0.0.1``, ``127.5.6.7``, ``::1``, ``[::1]``, and IPv4-mapped
    ``::ffff:127.0.0.1``). Nothing is decided by prefix: ``127.attacker.example`` is a name
    anyone can point anywhere, so it is not loopback.
    """
    host = host.strip().lower()
    if host in ("localhost", "localhost."):
        return True
    try:
        ip = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return False
    return _effective(ip).is_loopback


def normalise_tenant_url(text: str) -> str:
    """Check and tidy a tenant URL (typed by a person, or read from a configuration).

    A missing scheme means ``https://``. https is required, except for a tenant on this
    computer (:func:`is_loopback_host`). The result has no trailing slash; a path is kept
    (a tenant behind a reverse proxy may live under one), but user names, passwords,
    queries and fragments are refused: they would be sent, or logged, with every request.

    Raises:
        TenantURLError: with a sentence saying what is wrong.
    """
    text = text.strip()
    if not text:
        raise TenantURLError("Enter the tenant's address, for example https://qp.example.com.")
    if any(ch.isspace() for ch in text):
        raise TenantURLError("The tenant address must not contain spaces. "
                             "Use https://host[:port].")
    if "://" not in text:
        text = "https://" + text
    text = text.rstrip("/")
    try:
        parts = urlsplit(text)
        host = parts.hostname
        _ = parts.port  # a port that is not a number in range raises ValueError
    except ValueError:
        host = None
    if not host or parts.scheme.lower() not in ("http", "https"):
        raise TenantURLError("That does not look like a tenant address. "
                             "Use https://host[:port].")
    if "@" in parts.netloc:
        raise TenantURLError("The tenant address must not contain a user name or password. "
                             "Use https://host[:port].")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise TenantURLError("The tenant address must not have a ?query or #fragment. "
                             "Use https://host[:port].")
    if parts.scheme.lower() == "http" and not is_loopback_host(host):
        raise TenantURLError("The tenant address must use https:// (plain http is only allowed "
                             "for a tenant on this computer: 127.0.0.1, ::1 or localhost).")
    return text


# Names that only mean something inside a network (or nowhere at all).
_PRIVATE_SUFFIXES = (".local", ".internal", ".localhost", ".lan", ".home.arpa", ".localdomain",
                     ".intranet", ".invalid")
# Wildcard DNS services that answer any name under them with the IP address written in it.
_WILDCARD_IP_DOMAINS = ("nip.io", "sslip.io", "xip.io", "traefik.me", "backname.io",
                        "nip.direct")
# Public names whose every subdomain resolves to 127.0.0.1.
_LOOPBACK_DOMAINS = ("localtest.me", "lvh.me", "vcap.me", "localhost.direct", "lacolhost.com")
# Four numbers joined by dots or dashes, as wildcard DNS names embed an address.
_EMBEDDED_IPV4_RE = re.compile(r"(?<![0-9])(\d{1,3})[.-](\d{1,3})[.-](\d{1,3})[.-](\d{1,3})"
                               r"(?![0-9])")
_HEX_LABEL_RE = re.compile(r"^(?:.*-)?([0-9a-f]{8})$")
_NUMBER_RE = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def parse_ip_host(host: str) -> IPAddress | None:
    """The IP address a URL's host stands for, in any form a browser or ``inet_aton``
    accepts: ``127.0.0.1``, ``127.1``, ``0x7f.1``, ``017700000001``, ``2130706433``,
    ``[::1]``. ``None`` for a name.

    Raises:
        ValueError: the host ends in a number but is no valid address (a browser refuses
            such a URL, and no public name looks like that).
    """
    host = host.strip().lower().removeprefix("[").removesuffix("]")
    if ":" in host:
        return ipaddress.ip_address(host.split("%", 1)[0])
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()  # one trailing dot is the DNS root
    if not labels or not _NUMBER_RE.match(labels[-1]):
        return None
    if len(labels) > 4 or not all(labels):
        raise ValueError(f"{host} is not a valid IP address")
    numbers = []
    for label in labels:
        if not _NUMBER_RE.match(label):
            raise ValueError(f"{host} is not a valid IP address")
        if label.startswith("0x"):
            numbers.append(int(label[2:] or "0", 16))
        elif len(label) > 1 and label.startswith("0"):
            numbers.append(int(label, 8))  # raises ValueError for 08, 09
        else:
            numbers.append(int(label))
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host} is not a valid IP address")
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _effective(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, NAT64), else ``ip`` itself."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _ip_problem(ip: IPAddress, shown: str) -> str | None:
    ip = _effective(ip)
    if ip.is_loopback:
        return f"{shown} is this computer only (loopback); IT Glue cannot reach it."
    if ip.is_unspecified:
        return f"{shown} is not a real destination (unspecified address); IT Glue cannot reach it."
    if ip.is_link_local:
        return f"{shown} is a link-local address; IT Glue cannot reach it."
    if ip.is_private or ip.is_reserved or ip.is_multicast or not ip.is_global:
        # not is_global also catches the shared address space of carrier-grade NAT (100.64/10)
        return f"{shown} is a private network address; IT Glue cannot reach it."
    return None


def _embedded_ip_problem(host: str) -> str | None:
    """Names like ``10.1.2.3.nip.io`` or ``app-192-168-0-1.sslip.io`` resolve to the address
    they spell out (wildcard DNS), so they are as private as that address."""
    for match in _EMBEDDED_IPV4_RE.finditer(host):
        if all(int(part) <= 255 for part in match.groups()):
            embedded = ipaddress.IPv4Address(".".join(str(int(p)) for p in match.groups()))
            if _ip_problem(embedded, host) is not None:
                return (f"{host} is a wildcard DNS name for {embedded}, a private or local "
                        "address; IT Glue cannot reach it.")
    wildcard = next((d for d in _WILDCARD_IP_DOMAINS if host.endswith("." + d)), None)
    if wildcard is not None:
        for label in host.removesuffix("." + wildcard).split("."):
            hex_match = _HEX_LABEL_RE.match(label)
            candidates: list[IPAddress] = []
            if hex_match:
                candidates.append(ipaddress.IPv4Address(int(hex_match.group(1), 16)))
            if "--" in label:  # sslip.io writes IPv6 with dashes: --1 is ::1
                with contextlib.suppress(ValueError):
                    candidates.append(ipaddress.IPv6Address(label.replace("-", ":")))
            for ip in candidates:
                if _ip_problem(ip, host) is not None:
                    return (f"{host} is a wildcard DNS name for {ip}, a private or local "
                            "address; IT Glue cannot reach it.")
    return None


def public_url_problem(url: str) -> str | None:
    """Why IT Glue could not call ``url`` from the internet, as a sentence; ``None`` when the
    URL looks public. Decided from the URL alone, without DNS."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        return "The URL is not valid."
    if parts.scheme.lower() != "https":
        return "IT Glue needs an https:// URL; this one is not https."
    if not host:
        return "The URL has no host name."
    try:
        ip = parse_ip_host(host)
    except ValueError:
        return f"{host} is not a valid address; IT Glue cannot reach it."
    if ip is not None:
        return _ip_problem(ip, host)
    name = host.rstrip(".")
    if name == "localhost" or name.endswith(_PRIVATE_SUFFIXES):
        return f"{name} is a local or internal name; IT Glue cannot reach it."
    if "." not in name:
        return f"{name} is a single-label name that only resolves inside a network."
    if any(name == d or name.endswith("." + d) for d in _LOOPBACK_DOMAINS):
        return f"{name} always points at the computer that looks it up (loopback); " \
               "IT Glue cannot reach it."
    return _embedded_ip_problem(name)


def public_url_ok(url: str) -> bool:
    """Whether IT Glue could plausibly call ``url``: see :func:`public_url_problem`."""
    return public_url_problem(url) is None


# -- IT Glue's own addresses -----------------------------------------------------------------

def is_itglue_host(host: str) -> bool:
    """IT Glue's web addresses: ``<account>.itglue.com``, ``.eu.itglue.com``, ``.au.itglue.com``."""
    return host.rstrip(".").lower().endswith(".itglue.com")


def foreign_host(url: str) -> str | None:
    """The host of a web address that is not IT Glue's; None when it is, or is no address."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host or is_itglue_host(host):
        return None
    return host
