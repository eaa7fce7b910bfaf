"""The IT Glue integration endpoints against the IT Glue emulator."""

from __future__ import annotations

import re

from tests.conftest import ITGLUE_KEY
from tests.support.processes import TenantProcess
from tests.tenant.conftest import Api


def test_connect_verifies_the_key_and_returns_only_a_hint(api: Api) -> None:
    r = api.put("/api/v1/integrations/itglue", json={"region": "eu", "api_key": ITGLUE_KEY})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["connected"] is True
    assert body["region"] == "eu"
    assert body["api_key_hint"] == "…" + ITGLUE_KEY[-4:]
    assert body["last_verified_at"]
    assert ITGLUE_KEY not in r.text
    assert body["webhook_payload"] == [
        {"key": "resourceUrl", "value": "[resource_url]"},
        {"key": "resourceName", "value": "[resource_name]"},
    ]
    again = api.get("/api/v1/integrations/itglue")
    assert ITGLUE_KEY not in again.text and again.json()["connected"] is True
    types = [e["type"] for e in api.events()]
    assert "integration.connected" in types


def test_a_key_it_glue_refuses_is_422_and_nothing_is_saved(api: Api) -> None:
    r = api.put("/api/v1/integrations/itglue", json={"region": "us", "api_key": "ITG.wrong"})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "itglue_key_rejected"
    assert "IT Glue" in err["message"]
    assert "ITG.wrong" not in r.text
    assert api.get("/api/v1/integrations/itglue").json()["connected"] is False


def test_unreachable_it_glue_is_502(tmp_path, itglue_emulator) -> None:
    tenant = TenantProcess(tmp_path / "t", env={"QP_ITGLUE_BASE_URL": "http://127.0.0.1:9"})
    tenant.create_tenant("acme", "Acme")
    tenant.create_user("acme", "a@acme.test", "long enough password")
    tenant.start()
    try:
        import httpx

        from tests.tenant.conftest import sign_in

        with httpx.Client(base_url=tenant.url, timeout=20) as http:
            api = sign_in(http, "a@acme.test", "long enough password")
            r = api.put("/api/v1/integrations/itglue", json={"region": "us", "api_key": ITGLUE_KEY})
            assert r.status_code == 502
            assert r.json()["error"]["code"] == "itglue_unreachable"
            message = r.json()["error"]["message"]
            assert "127.0.0.1:9 refused the connection" in message
            assert "IT Glue said" not in message  # it said nothing: nothing answered
    finally:
        tenant.stop()


def test_invalid_region_is_a_clear_422(api: Api) -> None:
    r = api.put("/api/v1/integrations/itglue", json={"region": "mars", "api_key": ITGLUE_KEY})
    assert r.status_code == 422
    assert "region" in r.json()["error"]["message"]


def test_disconnect_forgets_the_key(api: Api) -> None:
    api.put("/api/v1/integrations/itglue", json={"region": "us", "api_key": ITGLUE_KEY})
    assert api.delete("/api/v1/integrations/itglue").status_code == 204
    body = api.get("/api/v1/integrations/itglue").json()
    assert body["connected"] is False and body["api_key_hint"] is None


def test_generate_reveal_and_regenerate_tokens(api: Api) -> None:
    r = api.post("/api/v1/integrations/itglue/workflow-token", json={})
    assert r.status_code == 201
    first = r.json()
    token = first["token"]
    assert first["url"].split("/hooks/itglue/")[1].startswith("qpwt_")
    assert token["status"] == "active" and token["days_left"] == 365
    assert token["url_hint"].endswith("qpwt_…" + first["url"][-4:])
    assert token["public_url_ok"] is False  # loopback: IT Glue could never call it
    revealed = api.post("/api/v1/integrations/itglue/workflow-token/reveal")
    assert revealed.json()["url"] == first["url"]
    assert any(e["type"] == "token.revealed" for e in api.events())
    # "Generate New" without grace: the old URL stops working at once.
    second_url = api.generate()
    old = api.http.post(first["url"], json={"resourceUrl": "https://a.itglue.com/1/passwords/2"})
    assert old.status_code == 410 and old.json()["error"]["code"] == "token_revoked"
    assert api.http.post(second_url, json={"resourceUrl": "x"}).status_code == 202
    rejected = api.events(type="workflow_trigger.rejected")
    assert rejected[0]["details"]["code"] == "token_revoked"
    view = api.get("/api/v1/integrations/itglue").json()["workflow_token"]
    assert view["last_used_at"] is not None


def test_grace_period_keeps_the_old_url_working(api: Api) -> None:
    first_url = api.generate()
    api.generate(grace_hours=24)
    r = api.http.post(first_url, json={"resourceUrl": "https://a.itglue.com/1/passwords/2"})
    assert r.status_code == 202
    revoked = [e for e in api.events(type="token.revoked")]
    assert revoked and revoked[0]["details"]["grace_hours"] == 24
    # The summary is for a person: a plain date and time, not an RFC 3339 stamp.
    summary = revoked[0]["summary"]
    assert re.search(r"until \d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2} UTC", summary), summary
    assert "T" not in summary.split("until", 1)[1].split("UTC")[0]


def test_grace_hours_out_of_range_is_refused(api: Api) -> None:
    r = api.post("/api/v1/integrations/itglue/workflow-token", json={"grace_hours": 500})
    assert r.status_code == 422


def test_delete_token_revokes_it(api: Api) -> None:
    url = api.generate()
    assert api.delete("/api/v1/integrations/itglue/workflow-token").status_code == 204
    assert api.http.post(url, json={"resourceUrl": "x"}).status_code == 410
    view = api.get("/api/v1/integrations/itglue").json()["workflow_token"]
    assert view["status"] == "revoked"
    assert api.post("/api/v1/integrations/itglue/workflow-token/reveal").status_code == 404
