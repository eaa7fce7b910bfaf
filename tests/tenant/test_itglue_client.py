"""The IT Glue client, driven against the emulator through httpx.ASGITransport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from qp_tenant.itglue.client import (
    REGION_BASE_URLS,
    ITGlueAuthError,
    ITGlueClient,
    ITGlueNotFound,
    ITGluePasswordAccessDenied,
    ITGlueRateLimited,
    ITGlueUnreachable,
    ITGlueValidationError,
    RateLimiter,
    base_url_for,
)
from qp_tenant.itglue.emulator import EmulatorOrganization, EmulatorState, create_app

KEY = "ITG.client-test-key-0123456789"
READ_ONLY_KEY = "ITG.read-only-key-9876543210"
BASE_URL = "https://api.itglue.test"


class FakeTime:
    """A clock plus a sleep that moves it (or not): nothing ever really waits."""

    def __init__(self, advance: bool = True) -> None:
        self.now = 0.0
        self.advance = advance
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.advance:
            self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def state(fake_time: FakeTime) -> EmulatorState:
    state = EmulatorState(clock=fake_time.clock)
    state.add_api_key(KEY, password_access=True)
    state.add_api_key(READ_ONLY_KEY, password_access=False)
    return state


@pytest.fixture
async def http(state: EmulatorState) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state))) as client:
        yield client


@pytest.fixture
def make_client(http: httpx.AsyncClient, fake_time: FakeTime) -> Callable[..., ITGlueClient]:
    def make(api_key: str = KEY, **kwargs: object) -> ITGlueClient:
        kwargs.setdefault("sleep", fake_time.sleep)
        return ITGlueClient(http, BASE_URL, api_key, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def northwind(state: EmulatorState) -> EmulatorOrganization:
    return state.add_organization("Northwind Traders")


def test_base_url_follows_region_unless_overridden() -> None:
    assert base_url_for("us", None) == REGION_BASE_URLS["us"] == "https://api.itglue.com"
    assert base_url_for("EU", None) == "https://api.eu.itglue.com"
    assert base_url_for("au", None) == "https://api.au.itglue.com"
    assert base_url_for("us", "http://127.0.0.1:8123/") == "http://127.0.0.1:8123"
    with pytest.raises(ValueError, match="region"):
        base_url_for("mars", None)


async def test_valid_key_is_verified_with_one_cheap_request(
    make_client: Callable[..., ITGlueClient], state: EmulatorState
) -> None:
    await make_client().verify()
    (entry,) = state.requests
    assert (entry.method, entry.path, entry.query["page[size]"]) == ("GET", "/organizations", "1")


async def test_requests_send_the_key_and_jsonapi_headers(fake_time: FakeTime) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": {"id": "1", "type": "passwords",
                                                  "attributes": {"name": "n"}}})  # fmt: skip

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        client = ITGlueClient(http, BASE_URL, KEY, sleep=fake_time.sleep)
        await client.get_password(1)
        await client.update_password(1, {"notes": "x"})
    get, patch = seen
    assert get.headers["x-api-key"] == KEY
    assert get.headers["accept"] == "application/vnd.api+json"
    assert "content-type" not in get.headers
    assert patch.headers["content-type"] == "application/vnd.api+json"


async def test_bad_key_is_rejected_with_itglue_detail(
    make_client: Callable[..., ITGlueClient],
) -> None:
    bad_key = "ITG.this-key-is-wrong-42"
    with pytest.raises(ITGlueAuthError) as caught:
        await make_client(api_key=bad_key).verify()
    error = caught.value
    assert error.status == 403
    assert error.title == "Forbidden"
    assert error.detail and error.detail in str(error)
    assert error.title in str(error)
    assert bad_key not in str(error) and bad_key not in repr(error)


async def test_unknown_password_raises_not_found(
    make_client: Callable[..., ITGlueClient],
) -> None:
    with pytest.raises(ITGlueNotFound) as caught:
        await make_client().get_password("424242")
    assert caught.value.status == 404
    assert "424242" in str(caught.value)


async def test_vault_password_raises_not_found(
    make_client: Callable[..., ITGlueClient],
    state: EmulatorState,
    northwind: EmulatorOrganization,
) -> None:
    vault = state.add_password(northwind.id, "Firewall", "admin", "v", visibility="vault")
    with pytest.raises(ITGlueNotFound):
        await make_client().get_password(vault.id, org_id=northwind.id)


async def test_paging_follows_every_page(
    make_client: Callable[..., ITGlueClient], state: EmulatorState
) -> None:
    names = [f"Customer {i}" for i in range(7)]
    orgs = [state.add_organization(name) for name in names]
    for i in range(5):
        state.add_password(orgs[0].id, f"Account {i}", f"user{i}", f"value{i}")
    client = make_client()
    listed = await client.list_organizations(page_size=2)
    assert [o.name for o in listed] == names
    assert all(isinstance(o.id, str) for o in listed)
    passwords = await client.list_passwords(orgs[0].id, page_size=2)
    assert [p.username for p in passwords] == [f"user{i}" for i in range(5)]
    assert all(p.password is None for p in passwords)
    assert [r.query["page[number]"] for r in state.requests if r.path == "/passwords"] == [
        "1", "2", "3",
    ]  # fmt: skip


async def test_page_size_over_1000_is_a_validation_error(
    http: httpx.AsyncClient, fake_time: FakeTime
) -> None:
    # The client refuses to build such a request; the emulator's 422 is what a raw one gets.
    client = ITGlueClient(http, BASE_URL, KEY, sleep=fake_time.sleep)
    with pytest.raises(ValueError):
        await client.list_organizations(page_size=1001)
    with pytest.raises(ITGlueValidationError) as caught:
        await client._request("GET", "/organizations", params={"page[size]": "1001"})
    assert caught.value.status == 422
    assert caught.value.pointer == "page[size]"
    assert "page[size]" in str(caught.value)


async def test_rate_limited_request_is_retried_after_retry_after(
    make_client: Callable[..., ITGlueClient], state: EmulatorState, fake_time: FakeTime
) -> None:
    state.rate_limit = 1
    state.rate_window_seconds = 300
    client = make_client()
    await client.verify()
    await client.verify()  # 429 first, then allowed once the (fake) window has moved
    assert fake_time.sleeps == [300]
    assert [r.status for r in state.requests] == [200, 429, 200]


async def test_rate_limit_that_keeps_failing_raises_rate_limited(
    make_client: Callable[..., ITGlueClient], state: EmulatorState, fake_time: FakeTime
) -> None:
    state.rate_limit = 1
    fake_time.advance = False  # the window never moves
    client = make_client(max_retries=2)
    await client.verify()
    with pytest.raises(ITGlueRateLimited) as caught:
        await client.verify()
    assert caught.value.retry_after == 300
    assert caught.value.status == 429
    assert "Rate limit" in str(caught.value)
    assert len(fake_time.sleeps) == 2
    assert [r.status for r in state.requests] == [200, 429, 429, 429]


async def test_get_password_returns_value_and_updater(
    make_client: Callable[..., ITGlueClient],
    state: EmulatorState,
    northwind: EmulatorOrganization,
) -> None:
    pw = state.add_password(
        northwind.id, "Domain Admin", "administrator", "Winter-42!",
        category_name="Active Directory",
    )  # fmt: skip
    state.change_password(pw.id, "Summer-43!", updated_by="Dana Whitfield")
    got = await make_client().get_password(pw.id, org_id=northwind.id)
    assert got.id == str(pw.id)
    assert got.organization_id == str(northwind.id)
    assert got.organization_name == "Northwind Traders"
    assert got.password == "Summer-43!"
    assert got.category_name == "Active Directory"
    assert got.resource_url == f"https://acme.itglue.com/{northwind.id}/passwords/{pw.id}"
    assert (got.updater_name, got.updated_by) == ("Dana Whitfield", "Dana Whitfield")
    assert got.updater_email == "dana.whitfield@acme.example"
    assert got.password_updated_at is not None and got.password_updated_at.tzinfo is not None
    assert "Summer-43!" not in repr(got)


async def test_key_without_password_access_gets_no_value(
    make_client: Callable[..., ITGlueClient],
    state: EmulatorState,
    northwind: EmulatorOrganization,
) -> None:
    pw = state.add_password(northwind.id, "Domain Admin", "administrator", "Winter-42!")
    got = await make_client(api_key=READ_ONLY_KEY).get_password(pw.id)
    assert got.password is None
    assert got.username == "administrator"


async def test_writing_a_value_without_password_access_is_an_auth_error_without_the_value(
    make_client: Callable[..., ITGlueClient],
    state: EmulatorState,
    northwind: EmulatorOrganization,
) -> None:
    pw = state.add_password(northwind.id, "Domain Admin", "administrator", "old")
    with pytest.raises(ITGluePasswordAccessDenied) as caught:
        await make_client(api_key=READ_ONLY_KEY).update_password(pw.id, {"password": "N3w!"})
    assert isinstance(caught.value, ITGlueAuthError)
    assert "Password Access" in str(caught.value)
    assert "N3w!" not in str(caught.value)


async def test_update_password_changes_only_what_was_sent(
    make_client: Callable[..., ITGlueClient],
    state: EmulatorState,
    northwind: EmulatorOrganization,
) -> None:
    pw = state.add_password(
        northwind.id, "Domain Admin", "administrator", "old", notes="keep", url="https://dc01"
    )
    updated = await make_client().update_password(pw.id, {"password": "new-value"})
    assert updated.password is None  # PATCH answers without the value by default
    assert (updated.username, updated.url) == ("administrator", "https://dc01")
    stored = state.passwords[pw.id]
    assert (stored.password, stored.notes, stored.name) == ("new-value", "keep", "Domain Admin")
    again = await make_client().update_password(pw.id, {"notes": "changed"}, org_id=northwind.id)
    assert again.name == "Domain Admin"
    assert (stored.password, stored.notes) == ("new-value", "changed")


async def test_invalid_update_is_a_validation_error_with_pointer(
    make_client: Callable[..., ITGlueClient],
    state: EmulatorState,
    northwind: EmulatorOrganization,
) -> None:
    pw = state.add_password(northwind.id, "Domain Admin", "administrator", "old")
    with pytest.raises(ITGlueValidationError) as caught:
        await make_client().update_password(pw.id, {"resource_url": "https://x"})
    assert caught.value.pointer == "/data/attributes/resource-url"


async def test_connection_failure_raises_unreachable(fake_time: FakeTime) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        client = ITGlueClient(http, BASE_URL, KEY, sleep=fake_time.sleep)
        with pytest.raises(ITGlueUnreachable) as caught:
            await client.verify()
    assert caught.value.status is None
    assert "Connection refused" in str(caught.value)
    assert KEY not in str(caught.value)


async def test_a_name_that_does_not_resolve_is_not_something_it_glue_said(
        fake_time: FakeTime) -> None:
    async with httpx.AsyncClient() as http:
        client = ITGlueClient(http, "https://itglue-api.invalid", KEY, sleep=fake_time.sleep)
        with pytest.raises(ITGlueUnreachable) as caught:
            await client.verify()
    text = str(caught.value)
    assert text.startswith("IT Glue could not be reached: The name itglue-api.invalid did "
                           "not resolve")
    assert "IT Glue said" not in text and KEY not in text


async def test_timeout_raises_unreachable(fake_time: FakeTime) -> None:
    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(stall)) as http:
        with pytest.raises(ITGlueUnreachable, match="in time"):
            await ITGlueClient(http, BASE_URL, KEY, sleep=fake_time.sleep).verify()


async def test_server_error_raises_unreachable(
    make_client: Callable[..., ITGlueClient], state: EmulatorState
) -> None:
    state.queued_failures.append(503)
    with pytest.raises(ITGlueUnreachable) as caught:
        await make_client().verify()
    assert caught.value.status == 503


async def test_non_itglue_answer_raises_unreachable(fake_time: FakeTime) -> None:
    def captive_portal(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>Sign in to the hotel Wi-Fi</html>")

    async with httpx.AsyncClient(transport=httpx.MockTransport(captive_portal)) as http:
        with pytest.raises(ITGlueUnreachable):
            await ITGlueClient(http, BASE_URL, KEY, sleep=fake_time.sleep).verify()


async def test_rate_limiter_spaces_requests_beyond_the_limit(fake_time: FakeTime) -> None:
    limiter = RateLimiter(3, 10.0, clock=fake_time.clock, sleep=fake_time.sleep)
    sent_at = []
    for _ in range(7):
        await limiter.acquire()
        sent_at.append(fake_time.now)
    assert sent_at == [0, 0, 0, 10, 10, 10, 20]


async def test_rate_limiter_is_shared_by_a_client_across_calls(
    http: httpx.AsyncClient, fake_time: FakeTime, state: EmulatorState
) -> None:
    limiter = RateLimiter(2, 60.0, clock=fake_time.clock, sleep=fake_time.sleep)
    client = ITGlueClient(http, BASE_URL, KEY, limiter=limiter, sleep=fake_time.sleep)
    for _ in range(3):
        await client.verify()
    assert fake_time.sleeps == [60]
    assert [r.status for r in state.requests] == [200, 200, 200]
