"""The job loop: long-poll the tenant, apply each reset with its backend, report the result.

A heartbeat runs beside the loop. Network trouble is met with exponential backoff with full
jitter, so a fleet of agents does not reconnect in step after a tenant restart. A stop request
(SIGTERM/SIGINT in the CLI) ends a waiting poll at once, but a job already being applied is
finished and reported first: half-applying a password and then going silent would leave the
tenant guessing.

The directory sync runs beside the job loop too (so it never delays a reset): it reports
every directory's accounts on start, every ``sync_interval_seconds``, and at once when a
technician asks ("Sync now", delivered through its own long poll). Accounts go out in pages
of :data:`SYNC_PAGE_ACCOUNTS` as the directory yields them, so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import traceback
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qp_agent.backends import (
    DirectoryAccount,
    DirectoryListingFailed,
    PasswordBackend,
    PasswordChangeFailed,
    scrub,
)
from qp_agent.client import (
    DEFAULT_WAIT_SECONDS,
    AgentClient,
    ResetJob,
    TenantRejected,
    TenantUnreachable,
)
from qp_agent.config import DEFAULT_HEARTBEAT_SECONDS, DirectoryConfig

logger = logging.getLogger(__name__)

RESULT_POST_ATTEMPTS = 5
# Accounts per report: well under the tenant's 1 MiB body limit and its 1000 per page.
SYNC_PAGE_ACCOUNTS = 500


class AgentCredentialRefused(Exception):
    """The tenant answered 401/403 to the agent token: revoked, or enrolled elsewhere."""


@dataclass(frozen=True)
class JobOutcome:
    """What happened to one job, as reported to the tenant."""

    job_id: str
    ok: bool
    error: str | None = None


@dataclass
class Backoff:
    """Exponential backoff with full jitter (a random delay in ``[0, min(cap, base·2^n)]``).

    Args:
        rng: a ``random.Random`` to draw from; tests pass a seeded one.
    """

    base: float = 1.0
    cap: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def next_delay(self) -> float:
        """The delay before the next retry; each call widens the window."""
        ceiling = min(self.cap, self.base * (2**self.attempt))
        self.attempt += 1
        return self.rng.uniform(0, ceiling)

    def reset(self) -> None:
        """Start again from the smallest window (after a success)."""
        self.attempt = 0


class AgentRunner:
    """Runs reset jobs from one tenant against this agent's directories.

    Args:
        client: the tenant's agent API, authenticated with this agent's token.
        backends: one password backend per directory name.
        heartbeat_seconds: how often the tenant hears from the agent.
        wait_seconds: the long-poll wait asked of the tenant.
    """

    def __init__(
        self,
        client: AgentClient,
        backends: Mapping[str, PasswordBackend],
        *,
        heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS,
        wait_seconds: int = DEFAULT_WAIT_SECONDS,
        backoff: Backoff | None = None,
        sync_interval_seconds: float | None = None,
    ) -> None:
        self.client = client
        self.backends = dict(backends)
        self.heartbeat_seconds = heartbeat_seconds
        self.wait_seconds = wait_seconds
        self.backoff = backoff or Backoff()
        # None: no directory sync (a runner that only applies jobs).
        self.sync_interval_seconds = sync_interval_seconds
        self._sync_refusal: str | None = None  # said once, not at every page or sync

    @property
    def directories(self) -> list[dict[str, str]]:
        """The heartbeat's directory list: name and kind of each, no secrets."""
        configs: Sequence[DirectoryConfig] = [b.directory for b in self.backends.values()]
        return [d.describe() for d in configs]

    async def apply_job(self, job: ResetJob) -> JobOutcome:
        """Apply ``job`` with its directory's backend; never raises, never leaks the password."""
        backend = self.backends.get(job.directory)
        if backend is None:
            known = ", ".join(sorted(self.backends)) or "none"
            return JobOutcome(
                job.id,
                False,
                f"This agent has no directory named {job.directory!r} in its configuration "
                f"(it has: {known}).",
            )
        if backend.directory.kind != job.kind:
            return JobOutcome(
                job.id,
                False,
                f"Directory {job.directory!r} is configured as {backend.directory.kind}, "
                f"but the job is for {job.kind}; fix the account's source or the agent config.",
            )
        try:
            summary = await backend.set_password(job.identity, job.password)
        except PasswordChangeFailed as exc:
            return JobOutcome(job.id, False, scrub(exc.reason, job.password))
        except Exception as exc:  # a bug in one backend must not kill the agent
            reason = scrub(f"{type(exc).__name__}: {exc}", job.password)
            # The traceback is what a bug report needs. Its text can quote the new password,
            # which has no recognisable shape, so it is scrubbed here; the log filter masks
            # the rest (tokens, keys).
            trace = scrub("".join(traceback.format_exception(exc)).rstrip(), job.password)
            logger.error(
                "Job %s: unexpected failure in the %s backend: %s\n%s",
                job.id, job.kind, reason, trace,
            )
            return JobOutcome(job.id, False, f"The agent failed unexpectedly ({reason}).")
        logger.debug("Job %s: %s", job.id, summary)
        return JobOutcome(job.id, True)

    async def handle_job(self, job: ResetJob, stop: asyncio.Event | None = None) -> JobOutcome:
        """Apply ``job`` and post its result, retrying the post through network trouble."""
        logger.info(
            "Job %s: setting the password of %r in directory %r",
            job.id,
            job.identity,
            job.directory,
        )
        outcome = await self.apply_job(job)
        if outcome.ok:
            logger.info("Job %s: done", job.id)
        else:
            logger.warning("Job %s failed: %s", job.id, outcome.error)
        await self._post_result(outcome, stop)
        return outcome

    async def poll_once(self) -> JobOutcome | None:
        """Fetch at most one job (one long poll) and handle it; ``None`` if there was none.

        Raises:
            TenantUnreachable, TenantRejected: the poll itself failed.
        """
        job = await self.client.next_job(self.wait_seconds)
        if job is None:
            return None
        return await self.handle_job(job)

    async def send_heartbeat(self) -> None:
        """Tell the tenant the agent is alive and which directories it serves."""
        await self.client.heartbeat(self.directories)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and apply jobs until ``stop`` is set.

        Raises:
            AgentCredentialRefused: the tenant refused the agent token.
        """
        heartbeat = asyncio.create_task(self._heartbeat_loop(stop), name="qp-agent-heartbeat")
        sync = (asyncio.create_task(self._sync_loop(stop), name="qp-agent-sync")
                if self.sync_interval_seconds is not None else None)
        logger.info(
            "Agent running against %s with directories: %s",
            self.client.base_url,
            ", ".join(sorted(self.backends)) or "none",
        )
        try:
            while not stop.is_set():
                poll = asyncio.create_task(self.client.next_job(self.wait_seconds))
                stopped = asyncio.create_task(stop.wait())
                await asyncio.wait({poll, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not poll.done():
                    # Stopping mid-poll: a job the tenant might hand out now comes back to
                    # the queue when its lease expires.
                    poll.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await poll
                    break
                stopped.cancel()
                try:
                    job = poll.result()
                except TenantRejected as exc:
                    if exc.status in (401, 403):
                        raise AgentCredentialRefused(
                            f"The tenant refused this agent's credential: {exc.message} "
                            "Enroll the agent again."
                        ) from None
                    await self._pause(stop, f"The tenant refused the job poll: {exc}.")
                    continue
                except TenantUnreachable as exc:
                    await self._pause(stop, str(exc))
                    continue
                self.backoff.reset()
                if job is not None:
                    await self.handle_job(job, stop)
        finally:
            for task in (heartbeat, sync):
                if task is None:
                    continue
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        logger.info("Agent stopped.")

    async def _post_result(self, outcome: JobOutcome, stop: asyncio.Event | None) -> None:
        backoff = Backoff(base=self.backoff.base, cap=self.backoff.cap, rng=self.backoff.rng)
        for attempt in range(1, RESULT_POST_ATTEMPTS + 1):
            try:
                await self.client.post_result(outcome.job_id, outcome.ok, outcome.error)
                return
            except TenantRejected as exc:
                # 404/409: the lease ran out and the tenant moved on; nothing to retry.
                logger.warning("Job %s: the tenant refused the result: %s", outcome.job_id, exc)
                return
            except TenantUnreachable as exc:
                if attempt == RESULT_POST_ATTEMPTS or (stop is not None and stop.is_set()):
                    logger.error(
                        "Job %s: could not report the result (%s); the tenant will see the "
                        "lease expire.",
                        outcome.job_id,
                        exc,
                    )
                    return
                delay = backoff.next_delay()
                logger.warning(
                    "Job %s: reporting the result failed (%s); retrying in %.1f s",
                    outcome.job_id,
                    exc,
                    delay,
                )
                await _wait(stop, delay)

    async def _pause(self, stop: asyncio.Event, reason: str) -> None:
        delay = self.backoff.next_delay()
        logger.warning("%s Retrying in %.1f s.", reason, delay)
        await _wait(stop, delay)

    async def _heartbeat_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.send_heartbeat()
            except (TenantUnreachable, TenantRejected) as exc:
                logger.warning("Heartbeat failed: %s", exc)
            await _wait(stop, self.heartbeat_seconds)


    # -------------------------------------------------------------------- directory sync
    async def sync_directory(self, name: str) -> dict[str, int] | None:
        """List one directory and report it to the tenant, page by page.

        Returns the counts the tenant answered (summed over pages), or None when the sync
        could not be completed (the reason is logged, and reported when it was the
        directory's fault).

        Raises:
            TenantUnreachable, TenantRejected: the tenant could not take a page (other than
                the refusal of an agent without a customer, which is logged once).
        """
        backend = self.backends[name]
        lister = getattr(backend, "list_accounts", None)
        if lister is None:
            return None
        directory = backend.directory
        sync_id = uuid.uuid4().hex
        totals = {"received": 0, "created": 0, "updated": 0, "gone": 0}
        accounts: Iterator[DirectoryAccount] = lister()
        try:
            while True:
                try:
                    page = await asyncio.to_thread(_take, accounts, SYNC_PAGE_ACCOUNTS)
                except DirectoryListingFailed as exc:
                    logger.warning("Directory sync of %r failed: %s", name, exc.reason)
                    await self.client.report_accounts(
                        sync_id=sync_id, directory=name, directory_kind=directory.kind,
                        accounts=[], final=True, error=exc.reason)
                    return None
                final = len(page) < SYNC_PAGE_ACCOUNTS
                answer = await self.client.report_accounts(
                    sync_id=sync_id, directory=name, directory_kind=directory.kind,
                    accounts=[a.to_json() for a in page], final=final)
                for key in totals:
                    value = answer.get(key)
                    totals[key] += value if isinstance(value, int) else 0
                if final:
                    break
        except TenantRejected as exc:
            if exc.code != "agent_has_no_customer":
                raise
            if self._sync_refusal != exc.message:
                logger.warning("Directory sync: %s", exc.message)
                self._sync_refusal = exc.message
            return None
        finally:
            close = getattr(accounts, "close", None)
            if close is not None:
                await asyncio.to_thread(close)  # ends the LDAP connection if cut short
        self._sync_refusal = None
        logger.info("Directory %r synced: %d accounts (%d new, %d changed, %d gone)",
                    name, totals["received"], totals["created"], totals["updated"],
                    totals["gone"])
        return totals

    async def sync_all(self) -> None:
        """Report every directory; a failure of one does not stop the others."""
        for name in sorted(self.backends):
            try:
                await self.sync_directory(name)
            except (TenantUnreachable, TenantRejected) as exc:
                logger.warning("Directory sync of %r could not reach the tenant: %s", name, exc)
            except Exception as exc:  # a bug in one lister must not kill the agent
                logger.error("Directory sync of %r failed unexpectedly: %s: %s",
                             name, type(exc).__name__, exc)

    async def _sync_loop(self, stop: asyncio.Event) -> None:
        assert self.sync_interval_seconds is not None
        requested = asyncio.Event()
        watcher = asyncio.create_task(self._watch_sync_requests(stop, requested),
                                      name="qp-agent-sync-requests")
        try:
            while not stop.is_set():
                requested.clear()  # a request that comes during this sync runs another
                await self.sync_all()
                waits = [asyncio.create_task(stop.wait()), asyncio.create_task(requested.wait())]
                try:
                    await asyncio.wait(waits, timeout=self.sync_interval_seconds,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in waits:
                        task.cancel()
                if requested.is_set():
                    logger.info("The tenant asked for a directory sync now.")
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch_sync_requests(self, stop: asyncio.Event, requested: asyncio.Event) -> None:
        backoff = Backoff(base=self.backoff.base, cap=self.backoff.cap, rng=self.backoff.rng)
        while not stop.is_set():
            try:
                if await self.client.next_sync_request(self.wait_seconds):
                    requested.set()
                backoff.reset()
            except TenantRejected as exc:
                if exc.status == 404:
                    logger.info("This tenant does not offer sync requests; the agent syncs "
                                "every %g s.", self.sync_interval_seconds)
                    return
                await _wait(stop, backoff.next_delay())
            except TenantUnreachable:
                await _wait(stop, backoff.next_delay())


def _take(items: Iterator[Any], count: int) -> list[Any]:
    """Up to ``count`` next items of ``items`` (run in a worker thread: it may block)."""
    page = []
    for item in items:
        page.append(item)
        if len(page) >= count:
            break
    return page


async def _wait(stop: asyncio.Event | None, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
