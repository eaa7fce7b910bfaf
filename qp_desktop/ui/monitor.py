"""The name the main window and the screenshots import the Events page by."""

from qp_desktop.ui.events.page import MonitorWindow

__all__ = ["MonitorWindow"]
