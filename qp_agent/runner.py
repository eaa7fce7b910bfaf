"""The job loop: long-poll the tenant, apply each reset with its backend, report the result.

A heartbeat runs beside the loop. Network trouble is met with exponential backoff with full
jitter, so a fleet of agents does not reconnect in step after a tenant restart. A stop request
(SIGTERM/SIGINT in the CLI) ends a waiting poll at once, but a job already being applied is
finished and reported first: half-applying a password and then going silent would leave the
tenant guessing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qp_agent.backends import PasswordBackend, PasswordChangeFailed, scrub
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
    ) -> None:
        self.client = client
        self.backends = dict(backends)
        self.heartbeat_seconds = heartbeat_seconds
        self.wait_seconds = wait_seconds
        self.backoff = backoff or Backoff()

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
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
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


async def _wait(stop: asyncio.Event | None, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    if stop is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
