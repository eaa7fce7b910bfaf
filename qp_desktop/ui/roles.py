"""What the signed-in user's role lets them do, shown on the controls themselves.

The tenant decides (a route below the caller's role answers 403 ``forbidden``); the app only
mirrors it, so a viewer never clicks a button just to be told no. A control a role may not
use is disabled and its tooltip says who can use it. The role order is the tenant's
(``viewer`` < ``technician`` < ``admin``); the app cannot import the tenant's code, so the
order is repeated here.
"""

from __future__ import annotations

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

ROLES = ("viewer", "technician", "admin")

ADMIN = "admin"
TECHNICIAN = "technician"

# The tooltip a gate replaced, kept on the widget so it comes back when the role allows.
_SAVED_TOOLTIP = "qp_role_saved_tooltip"
_GATED = "qp_role_gated"


def allows(role: str | None, minimum: str) -> bool:
    """Whether ``role`` may do what ``minimum`` may. ``None`` (not known yet, e.g. a page
    used outside a session) allows everything: the tenant still refuses what it must."""
    if role is None:
        return True
    if role not in ROLES or minimum not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(minimum)


def only_sentence(minimum: str, action: str) -> str:
    """``Only an administrator can generate a new workflow URL.``"""
    who = "an administrator" if minimum == ADMIN else "a technician or an administrator"
    return f"Only {who} can {action}."


def gate(widget: QWidget | QAction, role: str | None, minimum: str, action: str) -> bool:
    """Disable ``widget`` with a tooltip saying who may ``action`` when ``role`` is below
    ``minimum``; otherwise leave its enabled state alone and give back its own tooltip.

    Call it after the page's own enabling logic (busy, nothing selected…), every time that
    logic runs. Returns whether the role allows the action.
    """
    if allows(role, minimum):
        if widget.property(_GATED):
            widget.setProperty(_GATED, False)
            widget.setToolTip(str(widget.property(_SAVED_TOOLTIP) or ""))
        return True
    sentence = only_sentence(minimum, action)
    if not widget.property(_GATED) or widget.toolTip() != sentence:
        # The page may have set a new tooltip of its own since the last gate: keep that one.
        widget.setProperty(_SAVED_TOOLTIP, widget.toolTip())
    widget.setProperty(_GATED, True)
    widget.setEnabled(False)
    widget.setToolTip(sentence)
    return False
