"""The IT Glue emulator answers with IT Glue's documented shapes, errors and limits."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from qp_tenant.itglue.emulator import EmulatorState, create_app

KEY = "ITG.emulator-test-key"
READ_ONLY_KEY = "ITG.no-password-access"
JSONAPI = "application/vnd.api+json"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> EmulatorState:
    moments = iter(datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=i) for i in range(1000))
    state = EmulatorState(clock=clock, now=lambda: next(moments))
    state.add_api_key(KEY, password_access=True)
    state.add_api_key(READ_ONLY_KEY, password_access=False)
    return state


@pytest.fixture
async def api(state: EmulatorState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://api.itglue.test", headers={"x-api-key": KEY}
    ) as client:
        yield client


def _patch(attributes: dict[str, object]) -> dict[str, object]:
    return {"data": {"type": "passwords", "attributes": attributes}}


async def test_missing_or_unknown_key_is_refused_with_jsonapi_403(
    api: httpx.AsyncClient,
) -> None:
    for headers in ({"x-api-key": ""}, {"x-api-key": "ITG.wrong"}):
        response = await api.get("/organizations", headers=headers)
        assert response.status_code == 403
        assert response.headers["content-type"].startswith(JSONAPI)
        error = response.json()["errors"][0]
        assert error["status"] == 403
        assert error["title"] and error["detail"]
        assert "ITG.wrong" not in response.text


async def test_organizations_are_paged_with_meta_and_links(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    for name in ("A", "B", "C", "D", "E"):
        state.add_organization(f"Customer {name}")
    response = await api.get("/organizations", params={"page[size]": 2, "page[number]": 2})
    body = response.json()
    assert response.status_code == 200
    assert [o["attributes"]["name"] for o in body["data"]] == ["Customer C", "Customer D"]
    assert all(isinstance(o["id"], str) and o["type"] == "organizations" for o in body["data"])
    assert body["meta"] == {
        "current-page": 2,
        "next-page": 3,
        "prev-page": 1,
        "total-pages": 3,
        "total-count": 5,
    }
    assert "page%5Bnumber%5D=3" in body["links"]["next"]
    last = (await api.get("/organizations", params={"page[size]": 2, "page[number]": 3})).json()
    assert last["meta"]["next-page"] is None


async def test_page_size_over_1000_is_a_422_naming_the_parameter(api: httpx.AsyncClient) -> None:
    response = await api.get("/organizations", params={"page[size]": 1001})
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["status"] == 422
    assert error["source"] == {"parameter": "page[size]"}


async def test_organizations_filter_by_name(api: httpx.AsyncClient, state: EmulatorState) -> None:
    state.add_organization("Northwind Traders")
    contoso = state.add_organization("Contoso Dental")
    body = (await api.get("/organizations", params={"filter[name]": "contoso dental"})).json()
    assert [o["id"] for o in body["data"]] == [str(contoso.id)]


async def test_password_show_has_every_documented_attribute_and_the_value(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    org = state.add_organization("Northwind Traders")
    pw = state.add_password(
        org.id, "Domain Admin", "administrator", "s3cret!", category_name="Active Directory"
    )
    body = (await api.get(f"/passwords/{pw.id}")).json()
    attributes = body["data"]["attributes"]
    assert body["data"]["id"] == str(pw.id) and body["data"]["type"] == "passwords"
    assert set(attributes) >= {
        "organization-id", "organization-name", "resource-url", "name", "username", "password",
        "url", "notes", "password-updated-at", "updated-by", "password-category-id",
        "password-category-name", "resource-id", "resource-type", "restricted", "archived",
        "created-at", "updated-at",
    }  # fmt: skip
    assert attributes["password"] == "s3cret!"
    assert attributes["resource-url"] == f"https://acme.itglue.com/{org.id}/passwords/{pw.id}"
    assert attributes["notes"] is None
    assert attributes["created-at"].endswith("Z")
    datetime.fromisoformat(attributes["password-updated-at"])


async def test_show_password_false_and_lists_never_carry_values(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    org = state.add_organization("Contoso Dental")
    other = state.add_organization("Elsewhere")
    pw = state.add_password(org.id, "Office admin", "it", "hunter2")
    state.add_password(other.id, "Not this one", "x", "y")
    shown = (await api.get(f"/passwords/{pw.id}", params={"show_password": "false"})).json()
    assert "password" not in shown["data"]["attributes"]
    listed = await api.get("/passwords", params={"filter[organization_id]": org.id})
    assert [p["id"] for p in listed.json()["data"]] == [str(pw.id)]
    assert "hunter2" not in listed.text
    nested = await api.get(f"/organizations/{org.id}/relationships/passwords")
    assert [p["id"] for p in nested.json()["data"]] == [str(pw.id)]


async def test_include_updater_adds_the_user_to_included(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    org = state.add_organization("Northwind Traders")
    pw = state.add_password(org.id, "Domain Admin", "administrator", "old")
    state.change_password(pw.id, "new", updated_by="Dana Whitfield")
    body = (await api.get(f"/passwords/{pw.id}", params={"include": "updater"})).json()
    updater_ref = body["data"]["relationships"]["updater"]["data"]
    assert updater_ref["type"] == "users"
    (user,) = body["included"]
    assert user["id"] == updater_ref["id"]
    assert user["attributes"]["name"] == "Dana Whitfield"
    assert body["data"]["attributes"]["updated-by"] == "Dana Whitfield"


async def test_key_without_password_access_sees_no_value_and_cannot_write_one(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    org = state.add_organization("Northwind Traders")
    pw = state.add_password(org.id, "Domain Admin", "administrator", "kept")
    headers = {"x-api-key": READ_ONLY_KEY, "content-type": JSONAPI}
    shown = await api.get(f"/passwords/{pw.id}", headers=headers)
    assert shown.status_code == 200
    assert "password" not in shown.json()["data"]["attributes"]
    refused = await api.patch(
        f"/passwords/{pw.id}", json=_patch({"password": "new"}), headers=headers
    )
    assert refused.status_code == 403
    assert state.passwords[pw.id].password == "kept"
    renamed = await api.patch(
        f"/passwords/{pw.id}", json=_patch({"name": "Renamed"}), headers=headers
    )
    assert renamed.status_code == 200


async def test_vault_only_me_deleted_and_unknown_passwords_are_404(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    org = state.add_organization("Fabrikam")
    vault = state.add_password(org.id, "Firewall", "admin", "v", visibility="vault")
    only_me = state.add_password(org.id, "Mine", "me", "m", visibility="only_me")
    deleted = state.add_password(org.id, "Gone", "old", "g")
    state.delete_password(deleted.id)
    for pw_id in (vault.id, only_me.id, deleted.id, 999999, "abc"):
        response = await api.get(f"/passwords/{pw_id}")
        assert response.status_code == 404, pw_id
        assert response.json()["errors"][0]["status"] == 404
    listed = (await api.get("/passwords", params={"filter[organization_id]": org.id})).json()
    assert listed["data"] == [] and listed["meta"]["total-count"] == 0


async def test_nested_route_refuses_a_password_of_another_organization(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    org = state.add_organization("Northwind Traders")
    other = state.add_organization("Contoso Dental")
    pw = state.add_password(org.id, "Domain Admin", "administrator", "v")
    ok = await api.get(f"/organizations/{org.id}/relationships/passwords/{pw.id}")
    assert ok.status_code == 200 and ok.json()["data"]["attributes"]["password"] == "v"
    wrong = await api.get(f"/organizations/{other.id}/relationships/passwords/{pw.id}")
    assert wrong.status_code == 404


async def test_patch_is_partial_and_hides_the_value_by_default(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    org = state.add_organization("Northwind Traders")
    pw = state.add_password(org.id, "Domain Admin", "administrator", "old", notes="keep me")
    before_changed = pw.password_updated_at
    response = await api.patch(
        f"/organizations/{org.id}/relationships/passwords/{pw.id}",
        json=_patch({"password": "new"}),
        headers={"content-type": JSONAPI},
    )
    assert response.status_code == 200
    assert "password" not in response.json()["data"]["attributes"]
    stored = state.passwords[pw.id]
    assert (stored.password, stored.username, stored.notes) == ("new", "administrator", "keep me")
    assert stored.password_updated_at is not None and before_changed is not None
    assert stored.password_updated_at > before_changed
    assert stored.updated_at == stored.password_updated_at
    shown = await api.patch(
        f"/passwords/{pw.id}",
        params={"show_password": "true"},
        json=_patch({"notes": "changed"}),
        headers={"content-type": JSONAPI},
    )
    assert shown.json()["data"]["attributes"]["password"] == "new"
    assert stored.password_updated_at < stored.updated_at  # only the notes changed


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        (b"{not json", ""),
        (b'{"nodata": 1}', "/data"),
        (b'{"data": {"type": "organizations", "attributes": {}}}', "/data/type"),
        (b'{"data": {"type": "passwords", "attributes": []}}', "/data/attributes"),
        (b'{"data": {"type": "passwords", "attributes": {"resource-url": "x"}}}',
         "/data/attributes/resource-url"),
        (b'{"data": {"type": "passwords", "attributes": {"archived": "yes"}}}',
         "/data/attributes/archived"),
    ],
)  # fmt: skip
async def test_malformed_patch_is_a_422_with_a_source_pointer(
    api: httpx.AsyncClient, state: EmulatorState, body: bytes, pointer: str
) -> None:
    org = state.add_organization("Northwind Traders")
    pw = state.add_password(org.id, "Domain Admin", "administrator", "old")
    response = await api.patch(
        f"/passwords/{pw.id}", content=body, headers={"content-type": JSONAPI}
    )
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["status"] == 422 and error["source"] == {"pointer": pointer}
    assert state.passwords[pw.id].password == "old"


async def test_patch_with_a_non_json_content_type_is_415(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    org = state.add_organization("Northwind Traders")
    pw = state.add_password(org.id, "Domain Admin", "administrator", "old")
    response = await api.patch(
        f"/passwords/{pw.id}", content=b"password=new", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415


async def test_rate_limit_answers_429_with_retry_after_until_the_window_moves(
    api: httpx.AsyncClient, state: EmulatorState, clock: FakeClock
) -> None:
    state.rate_limit = 2
    state.rate_window_seconds = 300
    assert (await api.get("/organizations")).status_code == 200
    clock.now += 100
    assert (await api.get("/organizations")).status_code == 200
    limited = await api.get("/organizations")
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "200"
    assert limited.json()["errors"][0]["status"] == 429
    other_key = await api.get("/organizations", headers={"x-api-key": READ_ONLY_KEY})
    assert other_key.status_code == 200  # the limit is per key
    clock.now += 200
    assert (await api.get("/organizations")).status_code == 200


async def test_request_log_records_method_path_and_query_without_the_key(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    await api.get("/organizations", params={"page[size]": 1})
    (entry,) = state.requests
    assert (entry.method, entry.path, entry.query, entry.status) == (
        "GET", "/organizations", {"page[size]": "1"}, 200,
    )  # fmt: skip
    assert KEY not in repr(state.requests)


async def test_emulator_change_endpoint_updates_value_times_and_updater(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    org = state.add_organization("Northwind Traders")
    pw = state.add_password(org.id, "Domain Admin", "administrator", "old")
    response = await api.post(
        f"/_emulator/passwords/{pw.id}/change",
        json={"password": "fresh", "updated_by": "Priya Raman"},
        headers={"x-api-key": ""},
    )
    assert response.status_code == 200
    assert response.json()["resource_url"] == state.resource_url(pw)
    shown = (await api.get(f"/passwords/{pw.id}", params={"include": "updater"})).json()
    assert shown["data"]["attributes"]["password"] == "fresh"
    assert shown["included"][0]["attributes"]["name"] == "Priya Raman"
    assert (
        shown["data"]["attributes"]["password-updated-at"]
        == shown["data"]["attributes"]["updated-at"]
    )


async def test_unknown_route_is_a_jsonapi_404(api: httpx.AsyncClient) -> None:
    response = await api.get("/flexible_assets")
    assert response.status_code == 404
    assert response.json()["errors"][0]["status"] == 404


def test_seed_demo_has_msp_customers_and_unreachable_passwords() -> None:
    state = EmulatorState()
    state.seed_demo()
    names = {o.name for o in state.organizations.values()}
    assert {"Northwind Traders", "Contoso Dental"} <= names
    categories = {p.password_category_name for p in state.passwords.values()}
    assert {"Active Directory", "Local Account", "Microsoft 365"} <= categories
    assert {p.visibility for p in state.passwords.values()} == {"shared", "vault", "only_me"}


def test_emulator_runs_as_a_process_and_prints_one_listening_line() -> None:
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "qp_tenant.itglue.emulator", "--port", "0", "--api-key", "X",
         "--seed-demo"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        base_url = line.removeprefix("listening on ")
        response = httpx.get(
            f"{base_url}/organizations", params={"page[size]": 1}, headers={"x-api-key": "X"}
        )
        assert response.status_code == 200
        assert response.json()["meta"]["total-count"] >= 2
        assert httpx.get(f"{base_url}/organizations").status_code == 403
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            assert process.stdout.read() == ""  # nothing but the one line on stdout
            process.stdout.close()


async def test_passwords_sort_newest_change_first_and_page_with_links(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    org = state.add_organization("Sorted Co")
    made = [state.add_password(org.id, f"pw {n}", f"user{n}", f"v{n}") for n in range(5)]
    state.change_password(made[1].id, "changed")  # now the newest change
    r = await api.get("/passwords", params={"sort": "-updated_at", "page[size]": "2"})
    assert r.status_code == 200
    body = r.json()
    assert [d["id"] for d in body["data"]] == [str(made[1].id), str(made[4].id)]
    assert body["meta"]["total-count"] == 5 and body["meta"]["next-page"] == 2
    next_link = body["links"]["next"]
    assert "page%5Bnumber%5D=2" in next_link and "sort=-updated_at" in next_link
    second = (await api.get("/passwords", params={"sort": "-updated_at", "page[size]": "2",
                                                  "page[number]": "2"})).json()
    assert [d["id"] for d in second["data"]] == [str(made[3].id), str(made[2].id)]

    by_value = (await api.get("/passwords", params={"sort": "-password_updated_at"})).json()
    assert by_value["data"][0]["id"] == str(made[1].id)
    assert by_value["data"][0]["attributes"]["password-updated-at"] == \
        by_value["data"][0]["attributes"]["updated-at"]
    ascending = (await api.get("/passwords", params={"sort": "name"})).json()
    assert [d["attributes"]["name"] for d in ascending["data"]] == [f"pw {n}" for n in range(5)]
    by_id = (await api.get("/passwords", params={"sort": "-id"})).json()
    assert [d["id"] for d in by_id["data"]] == [str(p.id) for p in reversed(made)]


async def test_passwords_filters_and_unknown_sort_or_filter_are_422(
    api: httpx.AsyncClient, state: EmulatorState
) -> None:
    org = state.add_organization("Filter Co")
    other = state.add_organization("Other Co")
    kept = state.add_password(org.id, "Domain Admin", "admin", "x", url="https://dc.test")
    state.add_password(other.id, "Printer", "printer", "y")
    named = (await api.get("/passwords", params={"filter[name]": "domain"})).json()
    assert [d["id"] for d in named["data"]] == [str(kept.id)]
    by_id = (await api.get("/passwords", params={"filter[id]": str(kept.id)})).json()
    assert [d["id"] for d in by_id["data"]] == [str(kept.id)]
    by_org = (await api.get(f"/organizations/{other.id}/relationships/passwords",
                            params={"sort": "-updated_at"})).json()
    assert [d["attributes"]["name"] for d in by_org["data"]] == ["Printer"]
    for params in ({"sort": "-colour"}, {"filter[colour]": "red"}, {"filter[id]": "abc"}):
        r = await api.get("/passwords", params=params)
        assert r.status_code == 422, params
        assert r.json()["errors"][0]["source"]["parameter"] in {"sort", *params}


async def test_a_queued_429_fault_carries_the_retry_after_it_was_given(
    api: httpx.AsyncClient,
) -> None:
    r = await api.post("/_emulator/faults", json={"statuses": [429], "retry_after": 7})
    assert r.status_code == 200
    limited = await api.get("/passwords")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "7"
    assert (await api.get("/passwords")).status_code == 200
    assert (await api.post("/_emulator/faults", json={"statuses": ["x"]})).status_code == 422
