"""The watcher's walk over IT Glue's passwords (``scan``) against the in-process emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from qp_tenant.domain.watcher import Budget, scan
from qp_tenant.itglue.client import ITGlueClient
from qp_tenant.itglue.emulator import EmulatorState, create_app

KEY = "ITG.scan-test-key"
START = datetime(2026, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Iterator[Clock]:
    yield Clock()


@pytest.fixture
def state(clock: Clock) -> EmulatorState:
    state = EmulatorState(now=clock)
    state.add_api_key(KEY)
    org = state.add_organization("Scan Co")
    for n in range(250):
        state.add_password(org.id, f"pw {n}", f"user{n}", f"value {n}")
    clock.tick()  # the watcher's cursor starts after this history
    return state


@pytest.fixture
async def client(state: EmulatorState) -> AsyncIterator[ITGlueClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state))) as http:
        yield ITGlueClient(http, "https://api.itglue.test", KEY, max_retries=0)


async def test_nothing_changed_costs_one_request_and_keeps_the_cursor(
        client: ITGlueClient, clock: Clock) -> None:
    clock.tick()
    found = await scan(client, clock.now, [], page_size=50)
    assert found.changes == [] and found.requests == 1 and found.complete
    assert found.cursor_at == clock.now


async def test_changes_newer_than_the_cursor_are_found_across_pages_and_only_once(
        client: ITGlueClient, state: EmulatorState, clock: Clock) -> None:
    cursor = clock.now
    changed = []
    for pw_id in list(state.passwords)[:120]:
        clock.tick()
        state.change_password(pw_id, f"new {pw_id}")
        changed.append(str(pw_id))
    found = await scan(client, cursor, [], page_size=50)
    assert sorted(p.id for p in found.changes) == sorted(changed)
    assert found.requests == 3  # 120 newer entries on pages of 50, the third reaches the cursor
    assert found.cursor_at == clock.now and found.cursor_ids == [changed[-1]]

    again = await scan(client, found.cursor_at, found.cursor_ids, page_size=50)
    assert again.changes == [] and again.requests == 1


async def test_an_edit_that_is_not_a_new_value_moves_the_cursor_but_is_no_change(
        client: ITGlueClient, state: EmulatorState, clock: Clock) -> None:
    cursor = clock.now
    pw = next(iter(state.passwords.values()))
    clock.tick()
    pw.notes = "renamed the server"
    pw.updated_at = clock.now  # what a PATCH of the notes does in IT Glue
    found = await scan(client, cursor, [], page_size=50)
    assert found.changes == [] and found.cursor_at == clock.now


async def test_a_change_at_the_cursor_instant_not_seen_before_is_found(
        client: ITGlueClient, state: EmulatorState, clock: Clock) -> None:
    first, second = list(state.passwords)[:2]
    cursor = clock.now
    clock.tick()
    state.change_password(first, "a")
    seen = await scan(client, cursor, [], page_size=50)
    assert [p.id for p in seen.changes] == [str(first)]
    state.change_password(second, "b")  # same instant, committed after the first look
    later = await scan(client, seen.cursor_at, seen.cursor_ids, page_size=50)
    assert [p.id for p in later.changes] == [str(second)]


async def test_a_used_up_budget_stops_the_walk_without_moving_the_cursor(
        client: ITGlueClient, state: EmulatorState, clock: Clock) -> None:
    cursor = clock.now
    for pw_id in list(state.passwords)[:120]:
        clock.tick()
        state.change_password(pw_id, "new")
    now = [0.0]
    budget = Budget(share=2 / 3000, clock=lambda: now[0])  # two requests per window
    found = await scan(client, cursor, [], page_size=50, may_request=budget.take)
    assert not found.complete and found.requests == 2 and found.cursor_at == cursor
    assert budget.seconds_until_free() == 300.0
    now[0] = 300.0
    assert budget.take()
