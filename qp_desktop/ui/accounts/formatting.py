"""How the Accounts page words things: kinds, sources, times, results, agent status."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtGui import QGuiApplication, QPalette

from qp_desktop.services.tenant_client import (
    Account,
    Agent,
)
from qp_desktop.ui.theme import DARK, LIGHT, Colours
from qp_desktop.ui.timefmt import friendly, relative

DASH = "\u2014"
KIND_LABELS = {"administrator": "Administrator", "service": "Service", "end_user": "End user"}
SOURCE_LABELS = {"active_directory": "Active Directory", "openldap": "OpenLDAP",
                 "local": "Local account", "entra_id": "Microsoft 365"}


def _colours() -> Colours:
    """The theme's colours for the palette in use (light or dark)."""
    window = QGuiApplication.palette().color(QPalette.ColorRole.Window)
    return DARK if window.lightness() < 128 else LIGHT


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one}" if n == 1 else f"{n} {many or one + 's'}"


def source_text(account: Account) -> str:
    """``Active Directory · corp-ad · jdoe``: the source type, directory and identity."""
    parts = [SOURCE_LABELS.get(account.source.type or "", account.source.type or "Unknown")]
    if account.source.directory:
        parts.append(account.source.directory)
    if account.source.identity:
        parts.append(account.source.identity)
    if account.source.on_premises_sync:
        parts.append("synced from on-premises AD")
    if account.state == "gone":
        parts.append("gone from its source")
    return " \u00b7 ".join(parts)


def short_time(when: datetime | None, now: datetime | None = None, empty: str = "Never"
               ) -> str:
    """A compact local time for a table cell: ``Today 09:38``, ``3 Jun 14:05``,
    ``3 Jun 2025, 14:05`` (another year)."""
    if when is None:
        return empty
    local = when.astimezone()
    today = (now or datetime.now(UTC)).astimezone()
    if local.date() == today.date():
        return f"Today {local:%H:%M}"
    day = local.strftime("%d %b").lstrip("0")
    if local.year != today.year:
        return f"{day} {local.year}, {local:%H:%M}"
    return f"{day} {local:%H:%M}"


def result_text(result: str | None) -> tuple[str, str]:
    """The last result as shown, and its kind: ``ok``, ``error`` or ``none``."""
    if not result:
        return DASH, "none"
    if result == "succeeded":
        return "Succeeded", "ok"
    if result.startswith("failed"):
        reason = result.partition(":")[2].strip()
        return (f"Failed: {reason}" if reason else "Failed"), "error"
    return result[:1].upper() + result[1:], "none"


def agent_status_text(agent: Agent, now: datetime | None = None) -> str:
    """``Online · seen just now`` or ``Offline since 3 Jun 2026, 09:12 (2 hours ago)``."""
    if agent.status == "online":
        seen = relative(agent.last_seen_at, now) if agent.last_seen_at else "just now"
        return f"Online \u00b7 seen {seen}"
    if agent.last_seen_at is None:
        return "Offline \u00b7 never connected"
    return f"Offline since {friendly(agent.last_seen_at, now)}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sync_text(agent: Agent, now: datetime | None = None) -> str:
    """Each directory of an agent and its last sync, one per line (the status tooltip)."""
    if not agent.syncs:
        return "Directories: " + ", ".join(agent.directories)
    lines = []
    for d in agent.syncs:
        when = (f"synced {relative(d.last_sync_at, now)}: {_plural(d.accounts, 'account')}"
                + (f", {d.gone} gone" if d.gone else "") if d.last_sync_at else "not synced yet")
        lines.append(f"{d.name}: {when}" + (f" \u2014 last sync failed: {d.last_error}"
                                            if d.last_error else ""))
    return "\n".join(lines)
