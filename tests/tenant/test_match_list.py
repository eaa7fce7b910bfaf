"""The Match dialog's list of a customer's IT Glue passwords, and the matched password's name
on an account, through a real tenant process and the IT Glue emulator."""

from __future__ import annotations

from typing import Any

from tests.tenant.test_pipeline import (
    BACKUP_SERVICE,
    DOMAIN_ADMIN,
    DOMAIN_ADMIN_VALUE,
    World,
    tenant,
    world,
)

__all__ = ["tenant", "world"]  # fixtures shared with the pipeline tests

NORTHWIND_NAMES = ["Backup service account", "Domain Admin", "Global admin",
                   "Reception PC local admin"]


def listing(world: World, customer_id: int, **params: Any) -> dict[str, Any]:
    r = world.api.get(f"/api/v1/customers/{customer_id}/itglue-passwords", params=params)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_the_list_names_each_password_and_its_account_but_never_a_value(world: World) -> None:
    body = listing(world, world.northwind)
    assert [row["name"] for row in body["data"]] == NORTHWIND_NAMES
    assert body["meta"] == {"total": 4}
    admin = next(row for row in body["data"] if row["id"] == str(DOMAIN_ADMIN))
    assert admin == {"id": str(DOMAIN_ADMIN), "name": "Domain Admin",
                     "username": "NWT\\administrator", "category": "Active Directory",
                     "matched_account_id": world.account["id"]}
    assert all(set(row) == set(admin) for row in body["data"])
    raw = world.api.get(f"/api/v1/customers/{world.northwind}/itglue-passwords").text
    for secret in (DOMAIN_ADMIN_VALUE, "Copper-Lantern-77#", "Maple-Orbit-19$",
                   "Quiet-Meadow-85%"):
        assert secret not in raw


def test_search_matches_name_username_or_category_in_any_case(world: World) -> None:
    def names(search: str) -> list[str]:
        return [row["name"] for row in listing(world, world.northwind, search=search)["data"]]

    assert names("BACKUP") == ["Backup service account"]
    assert names("svc-") == ["Backup service account"]
    assert names("local account") == ["Reception PC local admin"]
    assert names("admin") == ["Domain Admin", "Global admin", "Reception PC local admin"]
    assert names("no such password") == []
    assert listing(world, world.northwind, search="microsoft")["meta"] == {"total": 1}


def test_a_customer_without_an_itglue_organization_or_of_another_tenant_is_refused(
        world: World) -> None:
    r = world.api.post("/api/v1/customers", json={"name": "Walk-in Bakery"})
    assert r.status_code == 201, r.text
    r = world.api.get(f"/api/v1/customers/{r.json()['id']}/itglue-passwords")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "customer_not_linked"
    assert "Walk-in Bakery is not linked to an IT Glue organization" in r.json()["error"]["message"]
    assert world.api.get("/api/v1/customers/999999/itglue-passwords").status_code == 404


def test_an_account_shows_its_matched_password_by_name(world: World) -> None:
    # Matched at creation without a name: the tenant asked IT Glue (without the value).
    assert world.account["itglue_password_name"] == "Domain Admin"
    url = f"/api/v1/accounts/{world.account['id']}"
    # The Match dialog sends the name it listed.
    r = world.http.patch(url, headers=world.api.h(), json={
        "itglue_password_id": str(BACKUP_SERVICE),
        "itglue_password_name": "Backup service account"})
    assert r.status_code == 200, r.text
    assert r.json()["itglue_password_name"] == "Backup service account"
    r = world.http.patch(url, headers=world.api.h(), json={"display_name": "Renamed"})
    assert r.json()["itglue_password_name"] == "Backup service account"
    r = world.http.patch(url, headers=world.api.h(), json={"itglue_password_id": None})
    assert r.json()["itglue_password_id"] is None and r.json()["itglue_password_name"] is None
    r = world.http.patch(url, headers=world.api.h(), json={"itglue_password_id": DOMAIN_ADMIN})
    assert r.json()["itglue_password_name"] == "Domain Admin"
    assert world.api.get(url).json()["itglue_password_name"] == "Domain Admin"
