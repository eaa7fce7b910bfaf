"""What every page of the main window is: a protocol the window checks, and a base class.

:class:`PageProtocol` is the life cycle :class:`~qp_desktop.ui.main_window.MainWindow`
drives: ``activate()`` when the page is shown, ``forget_secrets()`` then ``shutdown()`` when
the window goes (sign-out, session expiry, quit). ``MainWindow.add_page`` refuses a widget
that lacks one of them (:func:`check_page`), so a forgotten method fails at construction
rather than being skipped in silence.

:class:`Page` is the common base: a header (title, subtitle, an optional Refresh button or
other controls on the right), the busy bar and banner under it, tenant calls with the busy
state (``_run``), background tasks, and an optional periodic refresh while shown.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLayout, QPushButton, QVBoxLayout, QWidget

from qp_desktop.services.tasks import TaskSet
from qp_desktop.ui.tasks import TenantCallsMixin
from qp_desktop.ui.widgets import Banner, BusyBar

PAGE_METHODS = ("activate", "shutdown", "forget_secrets")


@runtime_checkable
class PageProtocol(Protocol):
    def activate(self) -> None:
        """The page is shown: bring it up to date."""

    def shutdown(self) -> None:
        """The window is going away: stop timers and background work."""

    def forget_secrets(self) -> None:
        """Sign-out: drop every secret the page holds, in memory and on screen."""


def check_page(widget: object) -> None:
    """Raise ``TypeError`` naming what ``widget`` lacks of :class:`PageProtocol`."""
    missing = [name for name in PAGE_METHODS if not callable(getattr(widget, name, None))]
    if missing:
        raise TypeError(f"{type(widget).__name__} is not a main-window page: it has no "
                        + ", ".join(f"{name}()" for name in missing))


class Page(TenantCallsMixin, QWidget):
    """Base for the main window's pages.

    Subclasses build their layout, calling :meth:`build_header` first, and override
    :meth:`activate` (and :meth:`forget_secrets` when they hold a secret).
    """

    refresh_button: QPushButton  # with build_header(refresh=...)
    busy_bar: BusyBar  # with build_header(busy=...)
    banner: Banner

    def __init__(self, object_name: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(object_name)
        self.tasks = TaskSet()
        self._busy = 0
        self._closed = False
        self._timer: QTimer | None = None

    # -- layout -------------------------------------------------------------------------------

    def build_header(self, root: QVBoxLayout, title: str, subtitle: str | QLabel = "", *,
                     banner: str, busy: str | None = None, refresh: str | None = None,
                     side: QLayout | None = None, wrap_subtitle: bool = False) -> None:
        """Add the title row, then the busy bar (named ``busy``) and ``self.banner``.

        Args:
            subtitle: muted text under the title, or a label built by the page.
            refresh: the object name of a Refresh button on the right (runs ``activate``).
            side: other controls for the right of the title row.
        """
        title_label = QLabel(title)
        title_label.setProperty("role", "title")
        self.title_label = title_label
        if not subtitle and refresh is None and side is None:
            root.addWidget(title_label)
        else:
            top = QHBoxLayout()
            titles = QVBoxLayout()
            titles.setSpacing(2)
            titles.addWidget(title_label)
            if isinstance(subtitle, QLabel):
                titles.addWidget(subtitle)
            elif subtitle:
                label = QLabel(subtitle)
                label.setProperty("role", "muted")
                label.setWordWrap(wrap_subtitle)
                titles.addWidget(label)
            top.addLayout(titles, 1)
            if refresh is not None:
                self.refresh_button = QPushButton("Refresh")
                self.refresh_button.setObjectName(refresh)
                self.refresh_button.clicked.connect(self.activate)
                top.addWidget(self.refresh_button, 0, Qt.AlignmentFlag.AlignTop)
            if side is not None:
                top.addLayout(side)
            root.addLayout(top)
        if busy is not None:
            self.busy_bar = BusyBar(busy)
            root.addWidget(self.busy_bar)
        self.banner = Banner(banner)
        root.addWidget(self.banner)

    # -- busy state ---------------------------------------------------------------------------

    def _update_enabled(self) -> None:
        """Show the busy bar while a tenant call runs; pages also enable their controls."""
        if not self._closed and hasattr(self, "busy_bar"):
            self.busy_bar.setVisible(self._busy > 0)

    # -- periodic refresh ---------------------------------------------------------------------

    def refresh_periodically(self, interval_ms: int) -> None:
        """Call :meth:`_periodic_refresh` every ``interval_ms`` once the page has been shown."""
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._periodic_refresh)

    def _periodic_refresh(self) -> None:
        if self._busy == 0 and self.isVisible():
            self.activate()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt naming
        if self._timer is not None and not self._closed:
            self._timer.start()
        super().showEvent(event)

    # -- the page protocol --------------------------------------------------------------------

    def activate(self) -> None:
        """The page is shown. Pages that load from the tenant override this."""

    def shutdown(self) -> None:
        """Stop the periodic refresh and every background task; the page is done."""
        self._closed = True
        if self._timer is not None:
            self._timer.stop()
        self.tasks.cancel_all()

    def forget_secrets(self) -> None:
        """Nothing to forget unless a page holds a secret (it overrides this)."""
