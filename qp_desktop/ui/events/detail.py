"""The events page's detail pane: every field of the selected event, and for a failed reset
what to do about it (:class:`FailureBox`)."""

from __future__ import annotations

import html
import json

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from qp_desktop.ui.events.failures import ACTION_LABELS, RETRY, FailureAdvice
from qp_desktop.ui.events.records import SEVERITY_COLORS, EventRecord


def render_detail_html(record: EventRecord, palette: QPalette | None = None) -> str:
    """Every field of an event as HTML: a field table, the URL as a link, details as JSON."""
    esc = html.escape
    muted = "#8a8f98"
    if palette is not None:
        muted = palette.color(QPalette.ColorRole.PlaceholderText).name()
    sev_color = SEVERITY_COLORS.get(record.severity, QColor(muted)).name()
    rows: list[tuple[str, str]] = [
        ("Time", f"{esc(record.local_time_text())} "
                 f"<span style='color:{muted}'>({esc(record.occurred_at)})</span>"),
        ("Type", f"{esc(record.type)} <span style='color:{muted}'>· "
                 f"{esc(record.category)}</span>"),
        ("Severity", f"<b style='color:{sev_color}'>{esc(record.severity.capitalize())}</b>"),
        ("Summary", esc(record.summary)),
    ]
    if record.resource_name:
        rows.append(("Resource", esc(record.resource_name)))
    if record.resource_url:
        url = record.resource_url
        if url.startswith(("https://", "http://")):
            rows.append(("Resource URL", f"<a href='{esc(url, quote=True)}'>{esc(url)}</a>"))
        else:
            rows.append(("Resource URL", esc(url)))
    if record.account:
        rows.append(("Account", esc(record.account)))
    if record.token_id is not None:
        rows.append(("Token", esc(str(record.token_id))))
    rows.append(("Event id", str(record.id)))
    for key, value in record.extra.items():
        rows.append((esc(str(key)), esc(json.dumps(value, ensure_ascii=False))))
    table = "".join(
        f"<tr><td style='color:{muted}; padding-right:14px; white-space:nowrap'>{label}</td>"
        f"<td>{value}</td></tr>" for label, value in rows)
    details = json.dumps(record.details, indent=2, ensure_ascii=False, sort_keys=True)
    # Fields on the left, details JSON on the right: the pane is wide and short.
    return (f"<table width='100%' cellspacing='0' cellpadding='0'><tr>"
            f"<td width='58%' valign='top'><table cellspacing='0' cellpadding='2'>{table}"
            f"</table></td>"
            f"<td width='42%' valign='top' style='padding-left:16px'>"
            f"<div style='color:{muted}'>Details</div>"
            f"<pre style='margin-top:2px'>{esc(details)}</pre></td></tr></table>")


class FailureBox(QFrame):
    """Under a failed reset's details: what to do, the action that fixes it, and Retry.

    Signals:
        fix_requested(FailureAdvice): the fixing action (Match account…, Open agent…).
        retry_requested(FailureAdvice): Retry.
    """

    fix_requested = Signal(object)
    retry_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("failureBox")
        self.advice: FailureAdvice | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        layout.setSpacing(8)
        self.sentence = QLabel(objectName="failureSentence")
        self.sentence.setWordWrap(True)
        layout.addWidget(self.sentence, 1)
        self.fix_button = QPushButton(objectName="failureFixButton")
        self.fix_button.clicked.connect(lambda: self.fix_requested.emit(self.advice))
        layout.addWidget(self.fix_button)
        self.retry_button = QPushButton("Retry", objectName="failureRetryButton")
        self.retry_button.setToolTip("Run the reset again with the current value in IT Glue.")
        self.retry_button.clicked.connect(lambda: self.retry_requested.emit(self.advice))
        layout.addWidget(self.retry_button)
        self.setVisible(False)

    def show_advice(self, advice: FailureAdvice | None, can_retry: bool) -> None:
        self.advice = advice
        self.setVisible(advice is not None)
        if advice is None:
            return
        self.sentence.setText(advice.sentence)
        self.fix_button.setVisible(advice.action != RETRY)
        self.fix_button.setText(ACTION_LABELS.get(advice.action, ""))
        self.retry_button.setEnabled(can_retry and advice.retry_event_id is not None)
        if advice.retry_event_id is None:
            self.retry_button.setToolTip("This failure has no IT Glue trigger to run again.")

    def show_result(self, text: str) -> None:
        self.sentence.setText(text)
