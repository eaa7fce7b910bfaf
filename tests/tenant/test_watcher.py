"""The IT Glue watcher through a real tenant process and the IT Glue emulator process.

No webhook is sent unless a test says so: the tenant finds changes by listing IT Glue's
passwords itself (every second here). The agent is this test speaking the agent contract over
HTTP; the real agent against slapd is in tests/test_watcher_end_to_end.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from qp_common.wire import category_of, parse_rfc3339
from tests.conftest import ITGLUE_KEY
from tests.support.pipeline import (
    DOMAIN_ADMIN,
    agent_headers,
    change_in_itglue,
    connect_itglue,
    db_rows,
    enroll_agent,
    event_for_trigger,
    fire,
    import_customers,
    start_tenant,
    trigger_body,
    wait_for,
    wait_for_trigger_event,
)
from tests.support.processes import EmulatorProcess, TenantProcess
from tests.support.smtp import SmtpServer, smtp_server
from tests.tenant.conftest import Api, sign_in

__all__ = ["smtp_server"]  # fixture used by name below

NORTHWIND = 101
BACKUP_SERVICE = 5002
WATCH_ENV = {"QP_ITGLUE_WATCH_SECONDS": "1"}
OTHER_KEY = "ITG.fedcba9876543210fedcba9876543210"  # another key of the same IT Glue account


@pytest.fixture
def emulator() -> Iterator[EmulatorProcess]:
    """These tests change IT Glue data, so each gets its own emulator."""
    emu = EmulatorProcess(api_key=ITGLUE_KEY)
    emu.args += ["--api-key", OTHER_KEY]
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


class Watched:
    """A tenant with IT Glue connected, an agent, and Northwind's Domain Admin matched."""

    def __init__(self, tenant: TenantProcess, emulator: EmulatorProcess, http: httpx.Client):
        self.tenant = tenant
        self.emulator = emulator
        self.http = http
        self.api: Api = sign_in(http)
        customers = import_customers(self.api)
        self.agent_id, self.agent_token = enroll_agent(self.api, http)
        r = self.api.post("/api/v1/accounts", json={
            "customer_id": customers["Northwind Traders"], "kind": "administrator",
            "display_name": "Northwind domain admin",
            "source": {"type": "openldap", "agent_id": self.agent_id, "directory": "corp-ldap",
                       "identity": "uid=administrator,ou=people,dc=example,dc=test"},
            "itglue_password_id": DOMAIN_ADMIN,
        })
        assert r.status_code == 201, r.text
        self.account = r.json()

    def change(self, value: str, password_id: int = DOMAIN_ADMIN) -> dict[str, Any]:
        """A technician changes the password in IT Glue's web app (no workflow call)."""
        return change_in_itglue(self.emulator.url, password_id, value, "Dana Whitfield")

    def watcher(self) -> dict[str, Any]:
        r = self.api.get("/api/v1/integrations/itglue")
        assert r.status_code == 200, r.text
        return dict(r.json()["watcher"])

    def watcher_triggers(self) -> list[dict[str, Any]]:
        return [e for e in self.api.events(type="workflow_trigger.received", limit=500)
                if e["details"].get("found_by") == "watcher"]

    def wait_for_watcher_trigger(self, count: int = 1, timeout: float = 20.0
                                 ) -> list[dict[str, Any]]:
        return wait_for(lambda: (found := self.watcher_triggers()) and len(found) >= count
                        and found, timeout, f"{count} trigger(s) found by the watcher")

    def checked_after(self, moment: str) -> dict[str, Any]:
        """Wait until the watcher has completed a check that started after ``moment``."""
        since = parse_rfc3339(moment)
        assert since is not None

        def done() -> dict[str, Any] | None:
            state = self.watcher()
            checked = parse_rfc3339(state["last_checked_at"])
            return state if checked is not None and checked > since else None
        return wait_for(done, 20, "a watcher check after " + moment)

    def next_job(self, timeout: float = 20.0) -> dict[str, Any]:
        def once() -> dict[str, Any] | None:
            r = self.http.get("/api/v1/agent/jobs", params={"wait": 5},
                              headers=agent_headers(self.agent_token), timeout=15)
            return dict(r.json()["job"]) if r.status_code == 200 else None
        return wait_for(once, timeout, "a job for the agent")

    def queued(self) -> list[dict[str, Any]]:
        return self.api.events(type="password_reset.queued", limit=500)


def _tenant(tmp_path: Path, template: Path, emulator: EmulatorProcess,
            env: dict[str, str] | None = None) -> TenantProcess:
    return start_tenant(tmp_path, template, emulator.url, env={**WATCH_ENV, **(env or {})})


@pytest.fixture
def watched(tmp_path: Path, tenant_template: Path, emulator: EmulatorProcess
            ) -> Iterator[Watched]:
    tenant = _tenant(tmp_path, tenant_template, emulator)
    try:
        with httpx.Client(base_url=tenant.url, timeout=10) as http:
            yield Watched(tenant, emulator, http)
    finally:
        tenant.stop()


def test_a_change_without_any_webhook_is_found_by_the_watcher_and_queued_for_the_agent(
        watched: Watched) -> None:
    changed = watched.change("Quiet-Harbor-2031!")

    trigger = watched.wait_for_watcher_trigger()[0]
    assert category_of(trigger["type"]) == "Workflow Trigger"
    assert "found by the IT Glue watcher" in trigger["summary"]
    assert trigger["resource_name"] == "Domain Admin"
    assert trigger["resource_url"] == changed["resource_url"]
    assert trigger["details"]["password_id"] == str(DOMAIN_ADMIN)

    job = watched.next_job()
    assert job["password"] == "Quiet-Harbor-2031!"
    assert job["account_id"] == watched.account["id"]
    queued = wait_for_trigger_event(watched.api, trigger["id"], "password_reset.queued")
    assert queued["account"] == "Northwind domain admin"

    state = watched.watcher()
    assert state["enabled"] is True and state["interval_seconds"] == 1
    assert state["changes_found"] == 1 and state["last_error"] is None
    assert state["last_found_at"] and state["last_checked_at"] and state["next_check_at"]
    # A local tenant (no workflow URL): a change only the watcher saw is normal, not a warning.
    assert not watched.api.events(type="workflow_trigger.webhook_missing")
    assert "Quiet-Harbor-2031!" not in str(watched.api.events(limit=500))


def test_changes_from_before_it_glue_was_connected_are_not_replayed(
        tmp_path: Path, tenant_template: Path, emulator: EmulatorProcess) -> None:
    tenant = _tenant(tmp_path, tenant_template, emulator)
    try:
        with httpx.Client(base_url=tenant.url, timeout=10) as http:
            api = sign_in(http)
            assert api.get("/api/v1/integrations/itglue").json()["watcher"]["enabled"] is False
            # History: both passwords changed before IT Glue is connected to the tenant.
            for pw in (DOMAIN_ADMIN, BACKUP_SERVICE):
                change_in_itglue(emulator.url, pw, f"Old-History-{pw}!")
            world = Watched(tenant, emulator, http)
            connected = api.get("/api/v1/integrations/itglue").json()["last_verified_at"]
            watched_state = world.checked_after(connected)
            assert watched_state["changes_found"] == 0
            # One more check after that one: still nothing from before the connection.
            world.checked_after(watched_state["last_checked_at"])
            assert world.watcher_triggers() == []

            world.change("Fresh-Change-2031!")
            found = world.wait_for_watcher_trigger()
            assert [t["details"]["password_id"] for t in found] == [str(DOMAIN_ADMIN)]
            assert world.next_job()["password"] == "Fresh-Change-2031!"
    finally:
        tenant.stop()


@pytest.mark.parametrize(("key", "replayed"), [(OTHER_KEY, False), (ITGLUE_KEY, True)],
                         ids=["another-key-starts-afresh", "same-key-catches-up"])
def test_reconnecting_it_glue_restarts_the_cursor_only_for_another_key(
        watched: Watched, key: str, replayed: bool) -> None:
    watched.checked_after(watched.api.get("/api/v1/integrations/itglue")
                          .json()["last_verified_at"])
    assert watched.api.delete("/api/v1/integrations/itglue").status_code == 204
    watched.change("While-Disconnected-2031!")
    connect_itglue(watched.api, key)
    connected = watched.api.get("/api/v1/integrations/itglue").json()["last_verified_at"]
    state = watched.checked_after(connected)
    watched.checked_after(state["last_checked_at"])
    assert len(watched.watcher_triggers()) == (1 if replayed else 0)

    watched.change("After-Reconnect-2031!")
    watched.wait_for_watcher_trigger(2 if replayed else 1)


def test_a_change_made_while_the_tenant_was_stopped_is_applied_after_the_restart(
        watched: Watched) -> None:
    before = watched.checked_after(watched.api.get("/api/v1/integrations/itglue")
                                   .json()["last_verified_at"])
    assert before["changes_found"] == 0
    watched.tenant.stop()
    watched.change("While-Down-2031!")
    watched.tenant.restart()
    watched.api = sign_in(watched.http)

    trigger = watched.wait_for_watcher_trigger()[0]
    assert trigger["details"]["password_id"] == str(DOMAIN_ADMIN)
    assert watched.next_job()["password"] == "While-Down-2031!"
    assert len(watched.watcher_triggers()) == 1


def test_a_change_seen_by_the_watcher_and_then_the_webhook_is_reset_once(
        watched: Watched) -> None:
    url = watched.api.generate()
    watched.change("Seen-Twice-2031!")
    trigger = watched.wait_for_watcher_trigger()[0]
    wait_for_trigger_event(watched.api, trigger["id"], "password_reset.queued")

    # IT Glue's workflow calls late: the same change arrives as a webhook too.
    hook = fire(url, trigger_body(NORTHWIND, DOMAIN_ADMIN, "Domain Admin"))
    skipped = wait_for_trigger_event(watched.api, hook, "password_reset.skipped")
    assert "already in progress" in skipped["details"]["reason"]
    assert len(watched.queued()) == 1
    assert watched.next_job()["password"] == "Seen-Twice-2031!"


def test_a_change_seen_by_the_webhook_first_is_not_recorded_again_by_the_watcher(
        watched: Watched) -> None:
    url = watched.api.generate()
    changed = watched.change("Webhook-First-2031!")
    hook = fire(url, trigger_body(NORTHWIND, DOMAIN_ADMIN, "Domain Admin"))
    # The watcher has now looked at IT Glue after the change (twice, so one check started
    # after the webhook's commit).
    watched.checked_after(changed["password_updated_at"])
    watched.checked_after(watched.watcher()["last_checked_at"])

    # Usually the watcher records nothing. If its look fell between the change and the
    # webhook's commit, it recorded the change too, and the later trigger either joined the
    # earlier one's waiting check (one check per burst) or made its own, which was skipped as
    # a reset of the same value already in progress. Either way: one reset.
    def settled() -> list[str] | None:
        states = sorted(r["state"] for r in db_rows(
            watched.tenant, "SELECT state FROM reset_jobs WHERE itglue_password_id = ?",
            str(DOMAIN_ADMIN)))
        return states if states and "pending" not in states else None

    assert wait_for(settled, 20, "the checks of the change to end") in (
        ["queued"], ["queued", "skipped"])
    assert event_for_trigger(watched.api, hook, "password_reset.queued") or len(
        watched.watcher_triggers()) == 1
    assert len(watched.queued()) == 1
    assert watched.next_job()["password"] == "Webhook-First-2031!"


def test_a_429_from_it_glue_makes_the_watcher_wait_as_told_and_then_recover(
        watched: Watched) -> None:
    watched.checked_after(watched.api.get("/api/v1/integrations/itglue")
                          .json()["last_verified_at"])
    r = httpx.post(f"{watched.emulator.url}/_emulator/faults",
                   json={"statuses": [429], "retry_after": 3})
    assert r.status_code == 200, r.text
    watched.change("After-429-2031!")

    limited = wait_for(lambda: (s := watched.watcher())["last_error"] and s, 20,
                       "the watcher reporting the 429")
    assert "429" in limited["last_error"] and "3 s" in limited["last_error"]
    checked, following = (parse_rfc3339(limited["last_checked_at"]),
                          parse_rfc3339(limited["next_check_at"]))
    assert checked is not None and following is not None
    assert following - checked >= timedelta(seconds=3)  # not the 1 s interval

    trigger = watched.wait_for_watcher_trigger()[0]
    assert trigger["details"]["password_id"] == str(DOMAIN_ADMIN)
    recovered = wait_for(lambda: (s := watched.watcher())["last_error"] is None and s, 20,
                         "the watcher recovering")
    assert recovered["changes_found"] == 1
    assert watched.next_job()["password"] == "After-429-2031!"


def test_changes_whose_webhook_never_arrives_are_reported_once_with_an_alert_mail(
        tmp_path: Path, tenant_template: Path, emulator: EmulatorProcess,
        smtp_server: SmtpServer) -> None:
    tenant = _tenant(tmp_path, tenant_template, emulator,
                     env={"QP_ITGLUE_WATCH_GRACE_SECONDS": "1", "QP_ALERT_BATCH_SECONDS": "0",
                          **smtp_server.env()})
    try:
        with httpx.Client(base_url=tenant.url, timeout=10) as http:
            world = Watched(tenant, emulator, http)
            assert world.api.put("/api/v1/alerts", json={"recipients": ["ops@acme.test"]}
                                 ).status_code == 200
            world.api.generate()  # a workflow URL exists, but IT Glue never calls it
            world.change("No-Webhook-2031!")
            world.wait_for_watcher_trigger()
            missing = wait_for(lambda: world.api.events(type="workflow_trigger.webhook_missing"),
                               20, "the missing-webhook warning")
            assert len(missing) == 1
            warning = missing[0]
            assert warning["severity"] == "warning"
            assert category_of(warning["type"]) == "Workflow Trigger"
            assert "switched off" in warning["summary"] and "old workflow URL" in warning["summary"]
            mails = smtp_server.wait_for(1)
            assert "workflow is not calling" in mails[0].subject
            assert "Domain Admin" in mails[0].text and "No-Webhook" not in mails[0].text

            # A second change without a webhook within the hour: no second warning or mail.
            world.change("No-Webhook-Again-2031!", password_id=DOMAIN_ADMIN)
            world.wait_for_watcher_trigger(2)
            wait_for(lambda: db_rows(tenant, "SELECT awaiting FROM itglue_watch")[0]["awaiting"]
                     in ("[]", []), 20, "the second change's grace period to be over")
            assert len(world.api.events(type="workflow_trigger.webhook_missing")) == 1
            assert len([m for m in smtp_server.messages
                        if "workflow is not calling" in m.subject]) == 1
    finally:
        tenant.stop()
