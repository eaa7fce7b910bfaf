"""What the API refuses before any query runs: ids out of range, NUL characters, bodies that
are not JSON or not of the declared types, and methods a path does not have.

Each of these reached the database driver (500) or answered a status the OpenAPI document
did not declare, until the API bounded it (found by tests/tenant/test_fuzz.py).
"""

from __future__ import annotations

import pytest

from tests.tenant.conftest import Api

TOO_BIG = 2**63  # one past the largest 64-bit row id


def _invalid(r: object, field: str) -> None:
    import httpx

    assert isinstance(r, httpx.Response)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert any(field in p["field"] for p in error["details"]["problems"]), error


@pytest.mark.parametrize("value", [TOO_BIG, 10**30, 0])
def test_path_ids_out_of_range_are_refused_not_a_server_error(api: Api, value: int) -> None:
    for method, path in [("GET", f"/api/v1/accounts/{value}"),
                         ("PATCH", f"/api/v1/accounts/{value}"),
                         ("DELETE", f"/api/v1/accounts/{value}"),
                         ("GET", f"/api/v1/events/{value}"),
                         ("POST", f"/api/v1/events/{value}/replay")]:
        r = api.http.request(method, path, headers=api.h(),
                             json={} if method == "PATCH" else None)
        _invalid(r, "path")


def test_a_path_id_that_is_not_a_number_is_not_found(api: Api) -> None:
    for path in ("/api/v1/accounts/abc", "/api/v1/accounts/-1", "/api/v1/events/1.5"):
        r = api.get(path)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (path, r.text)


@pytest.mark.parametrize("params", [{"before_id": TOO_BIG}, {"after_id": TOO_BIG},
                                    {"after_id": -1}, {"limit": TOO_BIG}, {"limit": 0}])
def test_event_cursors_out_of_range_are_refused(api: Api, params: dict[str, int]) -> None:
    _invalid(api.get("/api/v1/events", params=params), next(iter(params)))


def test_query_ids_out_of_range_are_refused(api: Api) -> None:
    _invalid(api.get("/api/v1/accounts", params={"customer_id": TOO_BIG}), "customer_id")
    _invalid(api.get("/api/v1/accounts", params={"customer_id": 0}), "customer_id")


def test_a_last_event_id_out_of_range_is_a_clear_400(api: Api) -> None:
    for value in (str(TOO_BIG), "-1", "abc"):
        with api.http.stream("GET", "/api/v1/events/stream", headers={
                **api.h(), "Last-Event-ID": value}) as r:
            r.read()
            assert r.status_code == 400, (value, r.text)
            assert r.json()["error"]["code"] == "invalid_last_event_id"


def test_body_ids_and_numbers_out_of_range_are_refused(api: Api) -> None:
    account = {"customer_id": TOO_BIG, "kind": "service", "display_name": "X",
               "source": {"type": "local", "identity": "x"}}
    _invalid(api.post("/api/v1/accounts", json=account), "customer_id")
    _invalid(api.post("/api/v1/accounts", json={**account, "customer_id": 1,
                                                "source": {**account["source"],
                                                           "agent_id": TOO_BIG}}), "agent_id")
    _invalid(api.post("/api/v1/accounts/automatch", json={"customer_id": 0}), "customer_id")
    _invalid(api.post("/api/v1/customers", json={"name": "X", "itglue_organization_id": TOO_BIG}),
             "itglue_organization_id")
    _invalid(api.post("/api/v1/integrations/itglue/workflow-token",
                      json={"grace_hours": TOO_BIG}), "grace_hours")


def test_a_nul_character_is_refused_in_bodies_and_queries(api: Api) -> None:
    """PostgreSQL cannot store U+0000: it was a 500 there, and is a 422 on every database."""
    r = api.post("/api/v1/customers", json={"name": "Acme\x00"})
    assert r.status_code == 422 and "NUL" in r.json()["error"]["message"], r.text
    r = api.put("/api/v1/alerts", json={"recipients": ["ops\x00@acme.test"]})
    assert r.status_code == 422, r.text
    _invalid(api.get("/api/v1/events", params={"q": "a\x00b"}), "q")
    assert api.get("/api/v1/customers").json()["customers"] == []


def test_values_of_the_wrong_type_are_refused_not_coerced(api: Api) -> None:
    _invalid(api.post("/api/v1/integrations/itglue/workflow-token", json={"grace_hours": "5"}),
             "grace_hours")
    _invalid(api.put("/api/v1/alerts", json={"expiry_warning_days": ["7"]}),
             "expiry_warning_days")
    # A long run of digits is no shorter as a number: it was read as 0 and stored.
    _invalid(api.post("/api/v1/customers", json={"name": "X",
                                                 "itglue_organization_id": "0" * 40}),
             "itglue_organization_id")


def test_a_body_that_is_not_json_is_a_clear_400(api: Api) -> None:
    r = api.http.post("/api/v1/customers", content=b"\x15not json",
                      headers={**api.h(), "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == {"code": "invalid_json", "message": "The body is not valid JSON.",
                                 "details": {}}


def test_a_method_a_path_lacks_is_405_with_every_method_it_has(api: Api) -> None:
    r = api.http.request("PUT", "/api/v1/accounts/1", headers=api.h())
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert set(r.headers["allow"].split(", ")) == {"GET", "PATCH", "DELETE"}
    r = api.http.request("PATCH", "/api/v1/accounts/automatch", headers=api.h(), json={})
    assert r.status_code == 405 and r.headers["allow"] == "POST"
