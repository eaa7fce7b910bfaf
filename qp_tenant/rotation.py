"""Secret-key rotation: move every stored secret and keyed hash onto the current master key.

``qp-tenant rotate-key`` runs :func:`rotate_secrets` with a :class:`~qp_tenant.crypto.Crypto`
whose current key is the new one and whose previous keys include the old one. In one
transaction, a batch of rows at a time, it

* re-encrypts every value not yet under the current key: the IT Glue API key
  (``itglue_integrations.api_key_encrypted``), each Microsoft 365 link's client secret
  (``m365_links.client_secret_encrypted``), each workflow token's copy
  (``workflow_tokens.token_encrypted``) and each in-flight reset payload
  (``reset_jobs.password_encrypted``);
* re-computes ``workflow_tokens.token_hmac`` from the decrypted token, so the token is found
  under the current key alone;
* re-computes ``reset_jobs.password_hash`` (loop protection) for in-flight jobs whose hash was
  made with a previous key.

``accounts.last_applied_hash`` cannot be recomputed (the value is gone by then). Old hashes there
are still recognised while the previous key is configured; once it is removed, a stale hash only
means that IT Glue re-sending the very value last applied is applied once more instead of being
skipped.

Every UPDATE is conditional on the row still holding the value that was read, so a process
writing concurrently (already with the current key) is never overwritten. A value that no key
decrypts stops the rotation: the transaction is rolled back and the rows are named (table and
id only, never a value).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from qp_tenant.crypto import Crypto, SecretKeyError
from qp_tenant.domain.pipeline import reset_value_key
from qp_tenant.models import ITGlueIntegration, Microsoft365Link, ResetJob, WorkflowToken

BATCH_SIZE = 500
MAX_NAMED_ROWS = 5

INTEGRATIONS: Table = ITGlueIntegration.__table__  # type: ignore[assignment]
TOKENS: Table = WorkflowToken.__table__  # type: ignore[assignment]
JOBS: Table = ResetJob.__table__  # type: ignore[assignment]
M365_LINKS: Table = Microsoft365Link.__table__  # type: ignore[assignment]


@dataclass
class RotationResult:
    reencrypted: int = 0  # secrets now encrypted under the current key
    rehashed_tokens: int = 0  # workflow tokens now stored under the current key's HMAC
    rehashed_jobs: int = 0  # in-flight reset jobs whose loop-protection hash was redone


@dataclass
class UndecryptableSecrets(Exception):
    """Values that none of the keys decrypts: (table, row id, column) of the first few."""

    rows: list[tuple[str, int, str]] = field(default_factory=list)
    total: int = 0

    def add(self, table: str, row_id: int, column: str) -> None:
        self.total += 1
        if len(self.rows) < MAX_NAMED_ROWS:
            self.rows.append((table, row_id, column))

    def describe(self, keys: str) -> str:
        named = ", ".join(f"{table} row {row_id} ({column})" for table, row_id, column in self.rows)
        more = f" and {self.total - len(self.rows)} more" if self.total > len(self.rows) else ""
        what = "A stored secret" if self.total == 1 else f"{self.total} stored secrets"
        return (f"{what} cannot be decrypted with {keys}: {named}{more}. Add the key they were "
                f"stored with to the previous keys and run rotate-key again; nothing was changed.")

    def __str__(self) -> str:
        return self.describe("the current key or any previous key")


async def _batches(session: AsyncSession, query: Any, id_column: Any,
                   batch_size: int) -> AsyncIterator[list[Any]]:
    """Rows of ``query`` in id order, ``batch_size`` at a time (keyset pagination)."""
    last: int | None = None
    while True:
        page = query if last is None else query.where(id_column > last)
        rows = list((await session.execute(page.order_by(id_column).limit(batch_size))).all())
        if not rows:
            return
        yield rows
        last = rows[-1].id


def _decrypt(crypto: Crypto, value: str, failures: UndecryptableSecrets, table: str,
             row_id: int, column: str) -> str | None:
    try:
        return crypto.decrypt(value)
    except SecretKeyError:
        failures.add(table, row_id, column)
        return None


def _reencrypted(crypto: Crypto, value: str, plaintext: str) -> str:
    return value if crypto.is_current(value) else crypto.encrypt(plaintext)


async def _reencrypt_column(session: AsyncSession, crypto: Crypto,
                            failures: UndecryptableSecrets, table: Table, column: str,
                            batch_size: int) -> int:
    """Re-encrypt one encrypted column under the current key; returns the rows changed."""
    done = 0
    query = select(table.c.id, table.c[column])
    async for rows in _batches(session, query, table.c.id, batch_size):
        changes = []
        for row in rows:
            value = row[1]
            if not value or crypto.is_current(value):
                continue
            plaintext = _decrypt(crypto, value, failures, table.name, row.id, column)
            if plaintext is not None:
                changes.append({"rid": row.id, "old": value, "new": crypto.encrypt(plaintext)})
        if changes and not failures.total:
            await session.execute(
                update(table)
                .where(table.c.id == bindparam("rid"), table.c[column] == bindparam("old"))
                .values({column: bindparam("new")}), changes)
            done += len(changes)
    return done


async def rotate_secrets(session: AsyncSession, crypto: Crypto,
                         batch_size: int = BATCH_SIZE) -> RotationResult:
    """Re-encrypt and re-hash under ``crypto``'s current key, in ``session``'s transaction.

    Does not commit. Raises :class:`UndecryptableSecrets` (after looking at every row) when
    some value decrypts under none of the keys; the caller then rolls back.
    """
    result = RotationResult()
    failures = UndecryptableSecrets()

    # IT Glue API keys and Microsoft 365 client secrets: one encrypted column each.
    for table, column in ((INTEGRATIONS, "api_key_encrypted"),
                          (M365_LINKS, "client_secret_encrypted")):
        result.reencrypted += await _reencrypt_column(session, crypto, failures, table, column,
                                                      batch_size)

    # Workflow tokens: the encrypted copy and the lookup HMAC.
    query = select(TOKENS.c.id, TOKENS.c.token_hmac, TOKENS.c.token_encrypted)
    async for rows in _batches(session, query, TOKENS.c.id, batch_size):
        changes = []
        for row in rows:
            plaintext = _decrypt(crypto, row.token_encrypted, failures, "workflow_tokens",
                                 row.id, "token_encrypted")
            if plaintext is None:
                continue
            new_hmac = crypto.lookup_hash(plaintext)
            new_value = _reencrypted(crypto, row.token_encrypted, plaintext)
            if new_hmac == row.token_hmac and new_value == row.token_encrypted:
                continue
            changes.append({"rid": row.id, "old_hmac": row.token_hmac,
                            "old": row.token_encrypted, "new_hmac": new_hmac, "new": new_value})
            result.reencrypted += new_value != row.token_encrypted
            result.rehashed_tokens += new_hmac != row.token_hmac
        if changes and not failures.total:
            await session.execute(
                update(TOKENS)
                .where(TOKENS.c.id == bindparam("rid"),
                       TOKENS.c.token_hmac == bindparam("old_hmac"),
                       TOKENS.c.token_encrypted == bindparam("old"))
                .values(token_hmac=bindparam("new_hmac"), token_encrypted=bindparam("new")),
                changes)

    # In-flight reset payloads (finished jobs no longer hold one) and their value hashes.
    query = (select(JOBS.c.id, JOBS.c.account_id, JOBS.c.password_encrypted,
                    JOBS.c.password_hash)
             .where(JOBS.c.password_encrypted.is_not(None)))
    async for rows in _batches(session, query, JOBS.c.id, batch_size):
        changes = []
        for row in rows:
            value = row.password_encrypted
            if not value:
                continue
            plaintext = _decrypt(crypto, value, failures, "reset_jobs", row.id,
                                 "password_encrypted")
            if plaintext is None:
                continue
            new_value = _reencrypted(crypto, value, plaintext)
            new_hash = row.password_hash
            if row.account_id is not None and row.password_hash:
                hashes = crypto.lookup_hashes(reset_value_key(row.account_id, plaintext))
                if row.password_hash in hashes[1:]:  # made with a previous key
                    new_hash = hashes[0]
            if new_value == value and new_hash == row.password_hash:
                continue
            changes.append({"rid": row.id, "old": value, "new": new_value, "new_hash": new_hash})
            result.reencrypted += new_value != value
            result.rehashed_jobs += new_hash != row.password_hash
        if changes and not failures.total:
            await session.execute(
                update(JOBS)
                .where(JOBS.c.id == bindparam("rid"),
                       JOBS.c.password_encrypted == bindparam("old"))
                .values(password_encrypted=bindparam("new"), password_hash=bindparam("new_hash")),
                changes)

    if failures.total:
        raise failures
    return result
