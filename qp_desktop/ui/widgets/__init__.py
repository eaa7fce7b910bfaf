"""Reusable widgets that need nothing of the app."""

from qp_desktop.ui.widgets.banner import Banner
from qp_desktop.ui.widgets.busy import BusyBar
from qp_desktop.ui.widgets.clipboard_note import ClipboardNote
from qp_desktop.ui.widgets.copy_button import CopyButton
from qp_desktop.ui.widgets.copy_field import CopyField
from qp_desktop.ui.widgets.fitted_table import FittedTable
from qp_desktop.ui.widgets.secret_field import SecretField
from qp_desktop.ui.widgets.status_badge import StatusBadge

__all__ = ["Banner", "BusyBar", "ClipboardNote", "CopyButton", "CopyField", "FittedTable",
           "SecretField", "StatusBadge"]
