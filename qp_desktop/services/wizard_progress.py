"""Where the technician is in the IT Glue workflow setup, kept per tenant and per token.

One small JSON document per tenant lives in ``QSettings`` under ``wizard_progress/<scope>``.
It remembers which steps are done (and when, and what proved it), which prerequisites the
technician confirmed, the failure-notification email, and the id of the workflow token the
steps were done with. When that token id changes, the steps that used the old URL are
reopened (see :meth:`WizardProgress.follow_token`).

Nothing secret is stored: no URL, no token, only the token's numeric id.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from PySide6.QtCore import QSettings

from qp_common.wire import format_rfc3339

log = logging.getLogger(__name__)

GROUP = "wizard_progress"
VERSION = 1


def scope_for(tenant_key: str, tenant_id: str) -> str:
    """A settings-safe name for one tenant (the sign-in key plus the tenant's own id)."""
    digest = hashlib.sha256(f"{tenant_key}\n{tenant_id}".encode()).hexdigest()
    return digest[:20]


def now_rfc3339() -> str:
    return format_rfc3339(datetime.now(UTC)) or ""


@dataclass
class StepRecord:
    """One step's state. ``reopened`` explains why a done step must be done again."""

    done: bool = False
    at: str | None = None  # RFC 3339 UTC: when it was done (or verified)
    note: str = ""  # what proved it, e.g. "Test trigger received for …"
    reopened: str = ""

    @classmethod
    def from_json(cls, data: Any) -> StepRecord:
        if not isinstance(data, dict):
            return cls()
        return cls(done=bool(data.get("done")), at=data.get("at") or None,
                   note=str(data.get("note") or ""), reopened=str(data.get("reopened") or ""))


@dataclass
class ProgressState:
    token_id: str | None = None
    steps: dict[str, StepRecord] = field(default_factory=dict)
    confirmed: list[str] = field(default_factory=list)
    failure_email: str = ""
    last_event_id: int | None = None
    # The address the workflow URL is built on (the tenant's public or local address): a new
    # one (a new port, a public address) changes the URL as much as a new token does.
    address: str | None = None


class WizardProgress:
    """Load, change and save one tenant's wizard progress. Every change is saved at once."""

    def __init__(self, qsettings: QSettings, scope: str):
        self.qsettings = qsettings
        self.scope = scope
        self.state = ProgressState()
        self.load()

    @property
    def _key(self) -> str:
        return f"{GROUP}/{self.scope}"

    # -- persistence -------------------------------------------------------------------------

    def load(self) -> None:
        raw = self.qsettings.value(self._key)
        self.state = ProgressState()
        if not raw:
            return
        try:
            data = json.loads(str(raw))
        except ValueError:
            log.warning("wizard progress for %s is unreadable; starting over", self.scope)
            return
        if not isinstance(data, dict):
            return
        token_id = data.get("token_id")
        last = data.get("last_event_id")
        self.state = ProgressState(
            token_id=None if token_id in (None, "") else str(token_id),
            steps={str(k): StepRecord.from_json(v)
                   for k, v in (data.get("steps") or {}).items()},
            confirmed=[str(x) for x in data.get("confirmed") or []],
            failure_email=str(data.get("failure_email") or ""),
            last_event_id=int(last) if isinstance(last, int) else None,
            address=str(data["address"]) if data.get("address") else None,
        )

    def save(self) -> None:
        state = self.state
        data = {
            "version": VERSION,
            "token_id": state.token_id,
            "steps": {k: asdict(v) for k, v in state.steps.items()
                      if v.done or v.reopened},
            "confirmed": sorted(set(state.confirmed)),
            "failure_email": state.failure_email,
            "last_event_id": state.last_event_id,
            "address": state.address,
        }
        self.qsettings.setValue(self._key, json.dumps(data, separators=(",", ":")))
        self.qsettings.sync()

    def reset(self) -> None:
        """Start over: forget every step and confirmation (the email is kept)."""
        email = self.state.failure_email
        last = self.state.last_event_id
        self.state = ProgressState(token_id=self.state.token_id, failure_email=email,
                                   last_event_id=last, address=self.state.address)
        self.save()

    # -- steps -------------------------------------------------------------------------------

    def step(self, key: str) -> StepRecord:
        return self.state.steps.get(key) or StepRecord()

    def is_done(self, key: str) -> bool:
        return self.step(key).done

    def mark_done(self, key: str, note: str = "", at: str | None = None) -> None:
        self.state.steps[key] = StepRecord(done=True, at=at or now_rfc3339(), note=note)
        self.save()

    def mark_undone(self, key: str) -> None:
        self.state.steps.pop(key, None)
        self.save()

    def is_confirmed(self, key: str) -> bool:
        return key in self.state.confirmed

    def set_confirmed(self, key: str, confirmed: bool) -> None:
        items = set(self.state.confirmed)
        if confirmed:
            items.add(key)
        else:
            items.discard(key)
        self.state.confirmed = sorted(items)
        self.save()

    def set_failure_email(self, email: str) -> None:
        if email != self.state.failure_email:
            self.state.failure_email = email
            self.save()

    def remember_event(self, event_id: int) -> None:
        if self.state.last_event_id is None or event_id > self.state.last_event_id:
            self.state.last_event_id = event_id
            self.save()

    def follow_address(self, address: str, url_steps: Iterable[str],
                       reason: str) -> list[str]:
        """Record the address the workflow URL is built on; if it changed, reopen the done
        steps in ``url_steps`` (the URL in IT Glue no longer reaches the tenant).

        Returns:
            The keys of the steps that were reopened.
        """
        address = address.rstrip("/")
        if not address or address == self.state.address:
            return []
        previous, self.state.address = self.state.address, address
        reopened = self._reopen(url_steps, reason) if previous is not None else []
        self.save()
        return reopened

    def _reopen(self, url_steps: Iterable[str], reason: str) -> list[str]:
        reopened: list[str] = []
        for key in url_steps:
            record = self.step(key)
            if record.done or record.reopened:
                self.state.steps[key] = StepRecord(reopened=reason)
                reopened.append(key)
        return reopened

    def follow_token(self, token_id: str | None, url_steps: Iterable[str],
                     reason: str) -> list[str]:
        """Record the current token; if it changed, reopen the done steps in ``url_steps``.

        Returns:
            The keys of the steps that were reopened (empty when nothing changed).
        """
        if token_id is None or token_id == self.state.token_id:
            return []
        previous, self.state.token_id = self.state.token_id, token_id
        reopened = self._reopen(url_steps, reason) if previous is not None else []
        self.save()
        return reopened
