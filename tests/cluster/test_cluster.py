"""Several ``qp-tenant serve`` processes on one PostgreSQL database (and behind nginx)."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from qp_tenant.db import EVENT_LOG_LOCK
from tests.cluster.conftest import Cluster, StreamReader, hook_path, signed_in
from tests.support import postgres
from tests.support.pipeline import wait_for


def body(n: int, tag: str = "x") -> dict[str, str]:
    return {"resourceUrl": f"https://acme.itglue.com/2412/passwords/{100000 + n}",
            "resourceName": f"{tag}-{n}"}


def deliver(client: httpx.Client, path: str, payload: dict[str, str],
            deadline: float) -> int:
    """POST like IT Glue does: retry until a 202 (an unanswered request is not accepted)."""
    while True:
        try:
            r = client.post(path, json=payload)
            if r.status_code == 202:
                return int(r.json()["event_id"])
            assert r.status_code >= 500, r.text  # a refusal is a bug, not a reason to retry
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"webhook {payload['resourceName']} never accepted")
        time.sleep(0.05)  # back-off before the retry, as IT Glue would


def trigger_ids(reader: StreamReader) -> list[int]:
    return [int(e["id"]) for e in reader.events if e["type"] == "workflow_trigger.test"
            or e["type"] == "workflow_trigger.received"]


def test_a_subscriber_on_one_process_receives_events_accepted_by_another_once_in_order(
        cluster: Cluster) -> None:
    a, b = cluster.start(2)
    api = signed_in(a.url)
    path = hook_path(api.generate())
    reader = StreamReader(a.url, api.access_token).start()
    try:
        acked: list[int] = []
        with httpx.Client(base_url=b.url, timeout=10) as client:
            deadline = time.monotonic() + 60
            for n in range(30):
                acked.append(deliver(client, path, body(n), deadline))
        # The stream's fallback poll is 30 s here: only LISTEN/NOTIFY can make this in time.
        wait_for(lambda: set(acked) <= set(reader.ids), 20, "events from the other process")
    finally:
        reader.stop()
    ids = reader.ids
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert ids == sorted(ids), "events arrived out of id order"
    assert reader.connects == 1


def test_a_reader_resuming_after_an_id_never_misses_a_lower_id_committed_later(
        cluster: Cluster) -> None:
    """Two processes commit events concurrently; a reader always resuming after the highest
    id it has seen (what the stream does) must end up with every id, without a gap."""
    a, b = cluster.start(2)
    api = signed_in(a.url)
    path = hook_path(api.generate())
    seen: list[int] = []
    done = threading.Event()

    def read() -> None:
        last = 0
        while True:
            finished = done.is_set()
            rows = cluster.rows("SELECT id FROM events WHERE id > ? ORDER BY id", last)
            for row in rows:
                seen.append(int(row["id"]))
                last = int(row["id"])
            if finished:
                return

    def send(url: str, start: int) -> list[int]:
        with httpx.Client(base_url=url, timeout=10) as client:
            deadline = time.monotonic() + 120
            return [deliver(client, path, body(start + n, "c"), deadline) for n in range(60)]

    reader = threading.Thread(target=read)
    reader.start()
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(send, url, i * 1000)
                   for i, url in enumerate([a.url, b.url] * 3)]
        acked = [eid for f in futures for eid in f.result()]
    done.set()
    reader.join(60)
    everything = [int(r["id"]) for r in cluster.rows("SELECT id FROM events ORDER BY id")]
    # (The pipeline may still add events after the reader's last look: compare the prefix.)
    assert seen == everything[:len(seen)], "the resuming reader skipped an id committed late"
    assert set(acked) <= set(seen)
    assert len(acked) == 360


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_losing_a_process_under_load_behind_nginx_loses_no_acknowledged_webhook(
        cluster: Cluster, how: str) -> None:
    a, b = cluster.start(2)
    proxy = cluster.behind_nginx()
    api = signed_in(proxy.url)
    path = hook_path(api.generate())
    # Round robin spreads the subscribers over both processes.
    readers = [StreamReader(proxy.url, api.access_token).start() for _ in range(4)]
    start_ids: list[int] = []
    acked: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(1_000_000))

    def load() -> None:
        with httpx.Client(base_url=proxy.url, timeout=10) as client:
            deadline = time.monotonic() + 120
            while not stop.is_set():
                with lock:
                    n = next(counter)
                eid = deliver(client, path, body(n, how), deadline)
                with lock:
                    acked.append(eid)

    try:
        with ThreadPoolExecutor(4) as pool:
            workers = [pool.submit(load) for _ in range(4)]
            wait_for(lambda: len(acked) >= 100, 60, "load to get going")
            start_ids = [len(r.events) for r in readers]
            if how == "kill9":
                b.kill()
            else:
                code = b.stop()
                assert code == 0, b.output[-4000:]
            with lock:
                at_loss = len(acked)
            wait_for(lambda: len(acked) >= at_loss + 100, 60, "the survivor to take the load")
            stop.set()
            for w in workers:
                w.result()
        last = max(acked)
        wait_for(lambda: all(r.last_id is not None and r.last_id >= last for r in readers),
                   30, "every subscriber to catch up")
    finally:
        stop.set()
        for r in readers:
            r.stop()

    stored = {int(r["id"]) for r in cluster.rows("SELECT id FROM events")}
    assert set(acked) <= stored, "an acknowledged webhook is not in the database"
    everything = sorted(i for i in stored if i <= last)
    for r in readers:
        ids = [i for i in r.ids if i <= last]
        first = ids[0]
        assert ids == [i for i in everything if i >= first], "a subscriber saw a gap or repeat"
    moved = [r for r in readers if r.connects > 1]
    assert moved, "no subscriber was on the lost process"
    assert start_ids  # the survivor's subscribers kept receiving: checked by the ids above
    if how == "sigterm":
        assert any(500 in r.retry_hints for r in moved), "no retry hint on shutdown"
    assert a.proc is not None and a.proc.poll() is None


def test_sigterm_answers_in_flight_webhooks_or_leaves_them_unanswered(
        cluster: Cluster) -> None:
    """Every 202 a stopping process gave is in the database; nothing is half-done."""
    (a,) = cluster.start(1)
    api = signed_in(a.url)
    path = hook_path(api.generate())
    answers: list[tuple[str, Any]] = []
    lock = threading.Lock()
    started = threading.Event()

    def fire(n: int) -> None:
        try:
            with httpx.Client(base_url=a.url, timeout=10) as client:
                started.set()
                r = client.post(path, json=body(n, "term"))
                with lock:
                    answers.append(("status", (r.status_code, r.json().get("event_id"))))
        except httpx.HTTPError as exc:
            with lock:
                answers.append(("error", repr(exc)))

    with ThreadPoolExecutor(16) as pool:
        for n in range(300):
            pool.submit(fire, n)
        started.wait(10)
        wait_for(lambda: len(answers) >= 20, 30, "some answers before the signal")
        code = a.stop()
    assert code == 0, a.output[-3000:]
    accepted = [eid for kind, v in answers if kind == "status" and v[0] == 202
                for eid in [v[1]]]
    stored = {int(r["id"]) for r in cluster.rows("SELECT id FROM events")}
    assert accepted and set(accepted) <= stored
    others = [v for kind, v in answers if kind == "status" and v[0] != 202]
    assert not others, f"a stopping process answered something other than 202: {others[:3]}"


def test_webhooks_still_waiting_when_the_shutdown_grace_runs_out_get_202_not_500(
        cluster: Cluster) -> None:
    """SIGTERM while webhooks wait for a commit that takes longer than the grace period.

    uvicorn cancels requests still running when its grace is up and answers them 500; a
    webhook must instead get its 202 once the final drain commits it (or no answer at all).
    The test makes the commit wait by holding the event-log lock every event writer takes.
    """
    (a,) = cluster.start(1, QP_SHUTDOWN_GRACE_SECONDS="1")
    api = signed_in(a.url)
    path = hook_path(api.generate())
    answers: list[tuple[int, int | None]] = []
    unanswered: list[str] = []
    lock = threading.Lock()
    with postgres.AdvisoryLock(cluster.database_url, EVENT_LOG_LOCK):
        waiting = ("SELECT count(*) AS n FROM pg_stat_activity "
                   "WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'")

        def fire(n: int) -> None:
            try:
                with httpx.Client(base_url=a.url, timeout=60) as client:
                    r = client.post(path, json=body(n, "grace"))
            except httpx.TransportError as exc:
                # Not answered at all (e.g. it connected only after the listener closed):
                # allowed; IT Glue retries it.
                with lock:
                    unanswered.append(repr(exc))
                return
            with lock:
                answers.append((r.status_code,
                                r.json()["event_id"] if r.status_code == 202 else None))

        pool = ThreadPoolExecutor(8)
        futures = [pool.submit(fire, n) for n in range(8)]
        wait_for(lambda: cluster.rows(waiting)[0]["n"] >= 1, 30, "the writer to wait")
        assert a.proc is not None
        a.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: "timeout graceful shutdown exceeded" in a.output, 30,
                   "uvicorn to give up waiting for the requests")
        assert not answers, "a webhook was answered before its commit"
    # The lock is released: the drain commits the waiting batch and answers it 202.
    for future in futures:
        future.result(timeout=60)
    pool.shutdown()
    assert a.proc.wait(timeout=60) == 0, a.output[-3000:]
    assert answers, f"the webhook that waited for the lock got no answer: {unanswered}"
    assert all(status == 202 for status, _ in answers), answers
    stored = {int(r["id"]) for r in cluster.rows("SELECT id FROM events")}
    assert {eid for _, eid in answers} <= stored


def test_refusals_on_several_processes_fold_into_one_event_per_minute(cluster: Cluster) -> None:
    a, b = cluster.start(2)
    api = signed_in(a.url)
    old = hook_path(api.generate())
    api.generate()  # the old URL is revoked, but a workflow keeps calling it on both processes

    def refuse(base_url: str) -> list[int]:
        with httpx.Client(base_url=base_url, timeout=10) as client:
            return [client.post(old, json=body(n)).status_code for n in range(40)]

    with ThreadPoolExecutor(4) as pool:
        answers = [s for part in pool.map(refuse, [a.url, b.url, a.url, b.url]) for s in part]
    assert set(answers) == {410}
    rejected = api.events(type="workflow_trigger.rejected")
    # The first refusal made the event; the other 159, on either process, only counted.
    assert [(e["details"]["code"], e["details"]["count"]) for e in rejected] == [
        ("token_revoked", 160)]
