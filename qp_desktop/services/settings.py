"""Declared user preferences over ``QSettings``; window geometry is kept apart.

Nothing secret is ever stored here: no passwords, tokens, keys or URLs holding tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

if TYPE_CHECKING:
    # Imported where used: these types are built by PySide on first use, and the sign-in
    # window, painted before anything else, reads its preferences but no window state.
    from PySide6.QtCore import QByteArray, QSettings

T = TypeVar("T", bool, int, str)


# A NamedTuple rather than a frozen dataclass: the sign-in window reads its settings before
# it is painted, and importing ``dataclasses`` and building the class cost more than that.
class Setting(NamedTuple, Generic[T]):
    """One preference: where it lives, its type, default and the label a UI shows."""

    key: str
    type: type[T]
    default: T
    label: str


TENANT_MODE = Setting("tenant/mode", str, "local", "Tenant")  # "local" or "url"
TENANT_URL = Setting("tenant/url", str, "", "Tenant address")
LAST_EMAIL = Setting("sign_in/email", str, "", "Email")
REMEMBER_ME = Setting("sign_in/remember", bool, False, "Remember me")
# Long enough for what sits between Copy and Paste in IT Glue: open the workflow, add the
# Webhook action, find its URL box (about eight clicks and a page load or two). 30 s ran
# out before the paste; two minutes still clears a forgotten URL soon.
CLIPBOARD_CLEAR_SECONDS = Setting("clipboard/clear_seconds", int, 120,
                                  "Clear copied secrets after (seconds)")
EVENTS_NEWEST_FIRST = Setting("events/newest_first", bool, True, "Newest events on top")
NOTIFY_EXPIRY = Setting("notifications/token_expiry", bool, True,
                        "Workflow URL about to expire or expired")
NOTIFY_RESET_FAILED = Setting("notifications/reset_failed", bool, True, "Password reset failed")
NOTIFY_TRIGGER_REJECTED = Setting("notifications/trigger_rejected", bool, True,
                                  "Workflow trigger refused")
START_AT_LOGIN = Setting("general/start_at_login", bool, False, "Start QP Desktop at login")
# The tenant on this computer keeps one port (chosen free at its first start), so the
# workflow URL in IT Glue and the address agents enrolled with survive a restart.
LOCAL_TENANT_PORT = Setting("local_tenant/port", int, 0, "Port of the tenant on this computer")
LOCAL_PUBLIC_URL = Setting("local_tenant/public_url", str, "",
                           "Public address of the tenant on this computer")
# Not preferences, but app state that must survive restarts (no secrets: token ids only).
ALERT_MEMORY = Setting("notifications/memory", str, "", "Expiry notifications already shown")
TRAY_HINT_SHOWN = Setting("tray/hint_shown", bool, False, "Told that closing hides to the tray")
# Names the setup wizard suggests for the IT Glue workflow (the technician may change them).
WIZARD_TRIGGER_NAME = Setting("wizard/trigger_name", str, "Quickpass password sync",
                              "Suggested IT Glue trigger name")
WIZARD_ACTION_NAME = Setting("wizard/action_name", str, "Quickpass webhook",
                             "Suggested IT Glue webhook action name")

ALL_SETTINGS: tuple[Setting[Any], ...] = (
    TENANT_MODE, TENANT_URL, LAST_EMAIL, REMEMBER_ME, CLIPBOARD_CLEAR_SECONDS,
    EVENTS_NEWEST_FIRST, WIZARD_TRIGGER_NAME, WIZARD_ACTION_NAME,
    NOTIFY_EXPIRY, NOTIFY_RESET_FAILED, NOTIFY_TRIGGER_REJECTED, START_AT_LOGIN, ALERT_MEMORY,
    TRAY_HINT_SHOWN, LOCAL_TENANT_PORT, LOCAL_PUBLIC_URL,
)


def _coerce(setting: Setting[Any], raw: Any) -> Any:
    if raw is None:
        return setting.default
    if setting.type is bool:
        if isinstance(raw, str):
            return raw.lower() in {"1", "true", "yes", "on"}
        return bool(raw)
    try:
        return setting.type(raw)
    except (TypeError, ValueError):
        return setting.default


class Preferences:
    """Typed access to the declared settings."""

    def __init__(self, qsettings: QSettings):
        self.qsettings = qsettings

    def get(self, setting: Setting[T]) -> T:
        value: T = _coerce(setting, self.qsettings.value(setting.key))
        return value

    def set(self, setting: Setting[T], value: T) -> None:
        self.qsettings.setValue(setting.key, value)

    def sync(self) -> None:
        self.qsettings.sync()


class WindowState:
    """Window geometry and splitter state, stored apart from the preferences."""

    GROUP = "window_state"

    def __init__(self, qsettings: QSettings):
        self.qsettings = qsettings

    def load(self, name: str) -> QByteArray | None:
        from PySide6.QtCore import QByteArray

        value = self.qsettings.value(f"{self.GROUP}/{name}")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def save(self, name: str, state: QByteArray) -> None:
        self.qsettings.setValue(f"{self.GROUP}/{name}", state)
