"""Can IT Glue reach a URL? Decided from the URL alone, without DNS."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

_PRIVATE_SUFFIXES = (".local", ".internal", ".localhost", ".lan", ".home.arpa", ".localdomain")


def public_url_problem(url: str) -> str | None:
    """Why IT Glue could not call this URL, as a sentence; ``None`` when it looks public."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return "The URL is not valid."
    if parts.scheme != "https":
        return "IT Glue needs an https:// URL; this one is plain http."
    if not host:
        return "The URL has no host name."
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        if ip.is_loopback:
            return f"{host} is this computer only (loopback); IT Glue cannot reach it."
        if ip.is_private or ip.is_link_local or ip.is_unspecified or ip.is_reserved:
            return f"{host} is a private network address; IT Glue cannot reach it."
        return None
    if host == "localhost" or host.endswith(_PRIVATE_SUFFIXES):
        return f"{host} is a local or internal name; IT Glue cannot reach it."
    if "." not in host:
        return f"{host} is a single-label name that only resolves inside a network."
    return None


def public_url_ok(url: str) -> bool:
    return public_url_problem(url) is None


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
