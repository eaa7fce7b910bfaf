"""Reading IT Glue's resourceUrl: the shape IT Glue sends is read by a fast path, everything
else by the general one, and the two never disagree."""

from __future__ import annotations

import random

import pytest

from qp_tenant.domain.webhook import PasswordRef, _parse_any_resource_url, parse_resource_url

CASES = [
    ("https://acme.itglue.com/2412/passwords/998877", PasswordRef("acme", "2412", "998877")),
    ("  https://Acme-MSP.eu.itglue.com/7/passwords/1\n", PasswordRef("acme-msp", "7", "1")),
    ("https://acme.au.itglue.com/7/passwords/1", PasswordRef("acme", "7", "1")),
    ("https://ACME.ITGLUE.COM/7/passwords/1", PasswordRef("acme", "7", "1")),
    ("http://acme.itglue.com/7/passwords/1", PasswordRef("acme", "7", "1")),
    ("https://acme.itglue.com/7/passwords/1?tab=history#x", PasswordRef("acme", "7", "1")),
    ("https://user@acme.itglue.com:443/7/passwords/1", PasswordRef("acme", "7", "1")),
    ("https://acme.itglue.com/7/passwords/1/passwords/2", PasswordRef("acme", "7", "2")),
    ("https://a.b.c.itglue.com/7/passwords/1", PasswordRef("a", "7", "1")),
    ("https://acme.itglue.com/organizations/7/passwords/1", PasswordRef("acme", "7", "1")),
    ("https://acme.itglue.com.evil.example/7/passwords/1", None),
    ("https://itglue.com/7/passwords/1", None),
    ("https://acme.itglue.com/passwords/1", None),
    ("https://acme.itglue.com/7/passwords/x1", None),
    ("ftp://acme.itglue.com/7/passwords/1", None),
    ("https://acme.itglue.com/7/passwords/²", None),  # str.isdigit says yes to these
    ("https://acme.itglue.com/٧/passwords/1", None),
    ("not a url", None),
    ("", None),
]


@pytest.mark.parametrize(("url", "expected"), CASES)
def test_resource_urls_are_read_the_same_on_both_paths(url: str, expected: PasswordRef | None
                                                       ) -> None:
    assert parse_resource_url(url) == expected
    assert _parse_any_resource_url(url.strip()) == expected


def test_the_fast_path_agrees_with_the_general_one_on_generated_urls() -> None:
    rng = random.Random(17)
    pieces = ["https://", "http://", "acme", "ACME", "-", ".", "eu.", "itglue.com", "itglue.co",
              "/", "7", "2412", "passwords", "passwords/", "0", "١٢", "?", "#", ":443", "@",
              " ", "x"]
    for _ in range(20_000):
        url = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
        canonical = f"https://{rng.choice(['a', 'Bc', 'd-1'])}.{rng.choice(['', 'eu.'])}" \
                    f"itglue.com/{rng.randint(0, 10**6)}/passwords/{rng.randint(0, 10**9)}"
        for candidate in (url, canonical):
            assert parse_resource_url(candidate) == _parse_any_resource_url(candidate.strip())
