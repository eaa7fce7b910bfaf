"""Friendly local times: ``12 Mar 2027, 14:05 (in 364 days)``."""

from __future__ import annotations

from datetime import UTC, datetime


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def relative(when: datetime, now: datetime | None = None) -> str:
    """``in 3 days``, ``5 minutes ago``, ``just now``."""
    now = now or datetime.now(UTC)
    seconds = (when - now).total_seconds()
    future = seconds > 0
    span = abs(seconds)
    if span < 60:
        return "just now"
    if span < 3600:
        text = _plural(int(span // 60), "minute")
    elif span < 86400:
        text = _plural(int(span // 3600), "hour")
    else:
        text = _plural(round(span / 86400), "day")
    return f"in {text}" if future else f"{text} ago"


def friendly(when: datetime | None, now: datetime | None = None, empty: str = "Never") -> str:
    """Local date and time with a relative hint; ``empty`` for ``None``."""
    if when is None:
        return empty
    local = when.astimezone()
    day = local.strftime("%d %b %Y").lstrip("0")
    return f"{day}, {local:%H:%M} ({relative(when, now)})"


def wait_text(seconds: int) -> str:
    """``45 seconds``, ``2 minutes``: how long to wait before trying again."""
    if seconds < 90:
        return _plural(max(1, seconds), "second")
    return _plural(round(seconds / 60), "minute")
