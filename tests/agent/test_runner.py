"""The job loop against a tenant speaking the agent contract on loopback and a real slapd."""

from __future__ import annotations

import asyncio
import logging
import queue
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from qp_agent.backends import build_backends
from qp_agent.client import AgentClient, ResetJob, TenantUnreachable, make_http_client
from qp_agent.config import DirectoryConfig
from qp_agent.runner import AgentCredentialRefused, AgentRunner, Backoff

from .conftest import AGENT_TOKEN, READER_DN, FakeTenant, LdapUser, Slapd

NEW_PASSWORD = "Runner-N3w-Passw0rd"


@pytest.fixture
async def http(tenant: FakeTenant) -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client(tenant.url, wait_seconds=1) as client:
        yield client


def make_runner(
    http: httpx.AsyncClient,
    directories: list[DirectoryConfig],
    env: dict[str, str],
    token: str = AGENT_TOKEN,
) -> AgentRunner:
    return AgentRunner(
        AgentClient(http, token),
        build_backends(directories, environ=env),
        heartbeat_seconds=0.2,
        wait_seconds=1,
        backoff=Backoff(base=0.01, cap=0.05, rng=random.Random(1)),
    )


def job(user: LdapUser | None, identity: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": 41,
        "directory": "corp-ldap",
        "kind": "openldap",
        "identity": identity or (user.uid if user else "x"),
        "password": NEW_PASSWORD,
        "account_id": 9,
        "lease_expires_at": "2030-01-01T00:00:00Z",
        "something_new": {"tenant": "may add fields"},
        **extra,
    }


async def next_item(q: queue.Queue[Any]) -> Any:
    return await asyncio.to_thread(q.get, True, 15)


@pytest.mark.slapd
async def test_a_job_is_fetched_applied_to_slapd_and_reported_ok(
    tenant: FakeTenant,
    http: httpx.AsyncClient,
    slapd: Slapd,
    ldap_user: LdapUser,
    bind_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = make_runner(http, [slapd.directory()], bind_env)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))

    heartbeat = await next_item(tenant.heartbeats)
    tenant.add_job(job(ldap_user))
    job_id, body = await next_item(tenant.results)
    stop.set()
    await asyncio.wait_for(task, 15)

    assert heartbeat == {"directories": [{"name": "corp-ldap", "kind": "openldap"}]}
    assert (job_id, body) == ("41", {"ok": True})
    assert slapd.can_bind(ldap_user.dn, NEW_PASSWORD)
    assert not slapd.can_bind(ldap_user.dn, ldap_user.password)
    assert NEW_PASSWORD not in caplog.text
    assert AGENT_TOKEN not in caplog.text


@pytest.mark.slapd
async def test_a_directory_refusal_is_posted_as_ok_false_with_the_reason(
    tenant: FakeTenant,
    http: httpx.AsyncClient,
    slapd: Slapd,
    ldap_user: LdapUser,
    bind_env: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    reader = slapd.directory(bind_dn=READER_DN, bind_password_env="QP_TEST_READER_BIND")
    runner = make_runner(http, [reader], bind_env)
    tenant.add_job(job(ldap_user))

    outcome = await runner.poll_once()
    job_id, body = await next_item(tenant.results)

    assert outcome is not None and not outcome.ok
    assert job_id == "41"
    assert body == {
        "ok": False,
        "error": f"Changing the password of {ldap_user.dn} failed: the agent's bind account "
        "is not allowed to change this password (insufficientAccessRights).",
    }
    assert body["error"] in caplog.text
    assert NEW_PASSWORD not in caplog.text
    assert slapd.can_bind(ldap_user.dn, ldap_user.password)


async def test_an_empty_poll_204_yields_no_job(tenant: FakeTenant, http: httpx.AsyncClient) -> None:
    tenant.max_wait = 0.1
    runner = make_runner(http, [DirectoryConfig(name="box", kind="local")], {})

    assert await runner.poll_once() is None
    assert tenant.results.empty()


async def test_a_job_for_an_unknown_directory_fails_clearly(
    tenant: FakeTenant, http: httpx.AsyncClient
) -> None:
    runner = make_runner(http, [DirectoryConfig(name="box", kind="local", dry_run=True)], {})
    tenant.add_job(job(None, identity="root", directory="elsewhere"))

    await runner.poll_once()
    _, body = await next_item(tenant.results)

    assert body == {
        "ok": False,
        "error": "This agent has no directory named 'elsewhere' in its configuration "
        "(it has: box).",
    }


async def test_a_job_whose_kind_does_not_match_the_directory_fails_clearly(
    tenant: FakeTenant, http: httpx.AsyncClient
) -> None:
    runner = make_runner(http, [DirectoryConfig(name="corp-ldap", kind="local")], {})
    tenant.add_job(job(None, identity="root"))

    await runner.poll_once()
    _, body = await next_item(tenant.results)

    assert body["ok"] is False
    assert "configured as local, but the job is for openldap" in body["error"]


async def test_a_backend_crash_is_reported_without_the_password(
    tenant: FakeTenant, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    class Exploding:
        directory = DirectoryConfig(name="corp-ldap", kind="openldap")

        async def set_password(self, identity: str, password: str) -> str:
            raise RuntimeError(f"bug while handling {password}")

    runner = AgentRunner(AgentClient(http, AGENT_TOKEN), {"corp-ldap": Exploding()})
    outcome = await runner.apply_job(ResetJob.from_json(job(None)))

    assert outcome.ok is False
    assert outcome.error == "The agent failed unexpectedly (RuntimeError: bug while handling ***)."
    assert NEW_PASSWORD not in caplog.text


async def test_a_revoked_agent_token_stops_the_loop_with_a_clear_error(
    tenant: FakeTenant, http: httpx.AsyncClient
) -> None:
    runner = make_runner(http, [DirectoryConfig(name="box", kind="local")], {}, token="qpat_bad")
    with pytest.raises(AgentCredentialRefused, match="Unknown or revoked agent token"):
        await asyncio.wait_for(runner.run(asyncio.Event()), 15)


async def test_network_errors_back_off_and_stop_still_ends_the_loop(
    unused_port_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with make_http_client(unused_port_url, wait_seconds=1) as http:
        runner = make_runner(http, [DirectoryConfig(name="box", kind="local")], {})
        stop = asyncio.Event()
        third_retry = asyncio.Event()

        class CountingBackoff(Backoff):
            def next_delay(self) -> float:
                if self.attempt == 2:
                    third_retry.set()
                return super().next_delay()

        runner.backoff = CountingBackoff(base=0.01, cap=0.05, rng=random.Random(1))
        task = asyncio.create_task(runner.run(stop))
        await asyncio.wait_for(third_retry.wait(), 15)
        stop.set()
        await asyncio.wait_for(task, 15)

    assert "Cannot reach the tenant at" in caplog.text
    assert "Retrying in" in caplog.text
    async with make_http_client(unused_port_url) as http:
        with pytest.raises(TenantUnreachable):
            await AgentClient(http, AGENT_TOKEN).next_job(1)


async def test_stop_ends_a_waiting_long_poll_at_once(
    tenant: FakeTenant, http: httpx.AsyncClient
) -> None:
    tenant.max_wait = 60
    runner = make_runner(http, [DirectoryConfig(name="box", kind="local")], {})
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await next_item(tenant.heartbeats)

    stop.set()

    await asyncio.wait_for(task, 10)
    assert tenant.results.empty()


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(base=1, cap=8, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]

    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)
    backoff.reset()
    assert backoff.attempt == 0


def test_a_job_without_a_password_is_rejected_without_echoing_values() -> None:
    with pytest.raises(ValueError, match="job 5: field 'password' is missing"):
        ResetJob.from_json({"id": 5, "directory": "d", "kind": "local", "identity": "u"})
    parsed = ResetJob.from_json(job(None))
    assert parsed.id == "41"
    assert NEW_PASSWORD not in repr(parsed)
