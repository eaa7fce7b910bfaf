"""Which hosts are this computer, which tenant URLs a client accepts, which URLs are public."""

from __future__ import annotations

import pytest

from qp_common.urls import (
    TenantURLError,
    foreign_host,
    is_itglue_host,
    is_loopback_host,
    normalise_tenant_url,
    parse_ip_host,
    public_url_ok,
    public_url_problem,
)


@pytest.mark.parametrize("host", [
    "localhost", "LOCALHOST", "localhost.", "127.0.0.1", "127.5.6.7", "::1", "[::1]",
    "[::ffff:127.0.0.1]", "::ffff:127.0.0.1", "::ffff:7f00:1",
])
def test_loopback_hosts_are_recognised(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", [
    "127.attacker.example", "127.0.0.1.attacker.example", "localhost.attacker.example",
    "mylocalhost", "10.0.0.1", "::2", "[::ffff:10.0.0.1]", "", "0.0.0.0", "example.com",
    "127.0.0.1evil", "1270.0.0.1",
])
def test_other_hosts_are_not_loopback_whatever_they_start_with(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(("typed", "expected"), [
    ("qp.example.com", "https://qp.example.com"),
    ("  https://qp.example.com/  ", "https://qp.example.com"),
    ("https://qp.example.com:8443/", "https://qp.example.com:8443"),
    ("https://proxy.example.com/qp/", "https://proxy.example.com/qp"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://localhost:8000/", "http://localhost:8000"),
    ("http://[::1]:8000", "http://[::1]:8000"),
    ("http://[::ffff:127.0.0.1]:8000", "http://[::ffff:127.0.0.1]:8000"),
])
def test_tenant_urls_are_tidied(typed: str, expected: str) -> None:
    assert normalise_tenant_url(typed) == expected


@pytest.mark.parametrize(("typed", "says"), [
    ("", "Enter the tenant's address"),
    ("   ", "Enter the tenant's address"),
    ("http://qp.example.com", "must use https://"),
    ("http://127.attacker.example", "must use https://"),
    ("http://127.0.0.1.nip.io:8000", "must use https://"),
    ("http://10.0.0.5:8080", "must use https://"),
    ("ftp://qp.example.com", "does not look like a tenant address"),
    ("https://", "does not look like a tenant address"),
    ("https://qp.example.com:99999", "does not look like a tenant address"),
    ("https://qp.example.com:port", "does not look like a tenant address"),
    ("https://admin:hunter2@qp.example.com", "user name or password"),
    ("https://qp.example.com/?token=x", "?query or #fragment"),
    ("https://qp.example.com/#x", "?query or #fragment"),
    ("https://qp example.com", "spaces"),
])
def test_bad_tenant_urls_are_refused_with_a_sentence(typed: str, says: str) -> None:
    with pytest.raises(TenantURLError, match=says.replace("?", r"\?")):
        normalise_tenant_url(typed)


def test_a_refused_url_is_a_value_error_and_does_not_quote_a_password() -> None:
    with pytest.raises(ValueError) as caught:
        normalise_tenant_url("https://admin:hunter2@qp.example.com")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(("host", "address"), [
    ("127.0.0.1", "127.0.0.1"), ("127.1", "127.0.0.1"), ("0x7f.1", "127.0.0.1"),
    ("017700000001", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"), ("10.1", "10.0.0.1"), ("192.168.257", "192.168.1.1"),
    ("127.0.0.1.", "127.0.0.1"), ("[::1]", "::1"), ("8.8.8.8", "8.8.8.8"),
])
def test_ip_literals_are_read_in_every_form_a_browser_accepts(host: str, address: str) -> None:
    assert str(parse_ip_host(host)) == address


@pytest.mark.parametrize("host", ["256.1.1.1", "08.1.1.1", "1.2.3.4.5", "0x.1.1.1g", "1..1"])
def test_names_ending_in_a_bad_number_are_invalid(host: str) -> None:
    if host == "0x.1.1.1g":  # ends in a name: not an address attempt
        assert parse_ip_host(host) is None
        return
    with pytest.raises(ValueError):
        parse_ip_host(host)


@pytest.mark.parametrize("url", [
    "https://qp.example.com", "https://qp.example.com:8443/base", "https://8.8.8.8",
    "https://[2001:4860:4860::8888]", "https://8.8.8.8.nip.io", "https://tenant.acme-msp.co.uk",
    "https://a-1-2-3.example.com",
])
def test_public_urls_are_ok(url: str) -> None:
    assert public_url_ok(url), public_url_problem(url)


@pytest.mark.parametrize("url", [
    "http://qp.example.com",                       # not https
    "https://127.0.0.1", "https://127.1", "https://0x7f.1", "https://017700000001",
    "https://2130706433", "https://[::1]", "https://[::ffff:127.0.0.1]",
    "https://[::ffff:10.0.0.1]", "https://[64:ff9b::a00:1]", "https://[2002:a00:1::]",
    "https://10.1.2.3", "https://172.16.0.1", "https://192.168.1.10", "https://192.168.257",
    "https://169.254.169.254",                    # link-local (cloud metadata)
    "https://[fe80::1]", "https://[fd00::1]",      # link-local, unique local
    "https://100.64.1.1", "https://100.127.255.254",  # carrier-grade NAT
    "https://0.0.0.0", "https://0", "https://[::]",   # unspecified
    "https://224.0.0.1", "https://240.0.0.1", "https://256.1.1.1", "https://08.1.1.1",
    "https://localhost", "https://localhost.", "https://printer.local", "https://qp.internal",
    "https://app.localhost", "https://nas.lan", "https://box.home.arpa", "https://qp.invalid",
    "https://qp", "https://qp.",                   # single-label names
    "https://10.1.2.3.nip.io", "https://app.192.168.1.5.nip.io", "https://10-1-2-3.sslip.io",
    "https://app-192-168-0-1.sslip.io", "https://0a010203.nip.io", "https://--1.sslip.io",
    "https://127.0.0.1.xip.io", "https://anything.localtest.me", "https://lvh.me",
    "https://tenant.127-0-0-1.example.com",
    "not a url at all", "https://", "https://[::1",
])
def test_urls_it_glue_cannot_reach_are_not_ok(url: str) -> None:
    assert not public_url_ok(url)
    assert public_url_problem(url)


def test_the_problem_is_a_sentence_a_person_can_act_on() -> None:
    assert public_url_problem("http://qp.example.com") == (
        "IT Glue needs an https:// URL; this one is not https.")
    assert "loopback" in (public_url_problem("https://0x7f.1") or "")
    assert "wildcard DNS name for 10.1.2.3" in (public_url_problem("https://10.1.2.3.nip.io")
                                                 or "")


@pytest.mark.parametrize(("url", "foreign"), [
    ("https://acme.itglue.com/2412/passwords/98765", None),
    ("https://acme.eu.itglue.com/1/passwords/2", None),
    ("https://ACME.AU.ITGLUE.COM./1/passwords/2", None),
    ("https://itglue.com.attacker.example/1/passwords/2", "itglue.com.attacker.example"),
    ("https://attacker-itglue.com/1/passwords/2", "attacker-itglue.com"),
    ("http://example.org/x", "example.org"),
    ("not a url", None), ("", None), ("ftp://acme.itglue.com/x", None),
])
def test_foreign_hosts_are_named_and_itglue_hosts_are_not(url: str, foreign: str | None) -> None:
    assert foreign_host(url) == foreign
    if foreign is not None:
        assert not is_itglue_host(foreign)
