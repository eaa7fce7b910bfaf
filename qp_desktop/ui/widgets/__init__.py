"""Reusable widgets that need nothing of the app.

Each is imported from its module on first use (PEP 562), so the sign-in window, the first
thing on screen, does not pay for the table or the clipboard widgets.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qp_desktop.ui.widgets.banner import Banner
    from qp_desktop.ui.widgets.busy import BusyBar
    from qp_desktop.ui.widgets.clipboard_note import ClipboardNote
    from qp_desktop.ui.widgets.copy_button import CopyButton
    from qp_desktop.ui.widgets.copy_field import CopyField
    from qp_desktop.ui.widgets.fitted_table import FittedTable
    from qp_desktop.ui.widgets.secret_field import SecretField
    from qp_desktop.ui.widgets.status_badge import StatusBadge

_MODULES = {"Banner": "banner", "BusyBar": "busy", "ClipboardNote": "clipboard_note",
            "CopyButton": "copy_button", "CopyField": "copy_field",
            "FittedTable": "fitted_table", "SecretField": "secret_field",
            "StatusBadge": "status_badge"}

__all__ = ["Banner", "BusyBar", "ClipboardNote", "CopyButton", "CopyField", "FittedTable",
           "SecretField", "StatusBadge"]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
