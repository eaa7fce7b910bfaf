"""The text box with a Copy button: a value to type somewhere else, shown whole when asked."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QHBoxLayout, QWidget

from qp_desktop.services.clipboard import SecretClipboard
from qp_desktop.ui.theme import LIGHT, style_sheet
from qp_desktop.ui.widgets import CopyField


def shows_whole(field: CopyField) -> bool:
    """Whether the box draws its whole text: one too narrow scrolls the text to the left to
    show the end, which then lies nearer the start than the text is wide."""
    edit = field.edit
    edit.setCursorPosition(0)
    edit.grab()  # QLineEdit scrolls its text when it paints
    start = edit.cursorRect().center().x()
    edit.setCursorPosition(len(edit.text()))
    edit.grab()
    end = edit.cursorRect().center().x()
    return end - start >= edit.fontMetrics().horizontalAdvance(edit.text()) - 1


@pytest.mark.parametrize("fit", [True, False])
def test_a_fitted_field_keeps_its_whole_value_in_view_when_squeezed(qtbot, fit):
    holder = QWidget()
    holder.setStyleSheet(style_sheet(LIGHT))  # the app's padding and borders, on this only
    row = QHBoxLayout(holder)
    fields = [CopyField(f"f{n}", SecretClipboard(30_000), value, value, mono=True, fit=fit)
              for n, value in enumerate(("resourceName", "[resource_name]"))]
    for field in fields:
        row.addWidget(field)
    qtbot.addWidget(holder)
    holder.resize(200, 60)  # far too narrow for both: the layout gives what it must
    holder.show()
    qtbot.waitExposed(holder)
    assert all(shows_whole(f) for f in fields) is fit
    # A new value is fitted too.
    edit = fields[1].edit
    fields[1].setText("[resource_name_and_more]")
    qtbot.waitUntil(lambda: edit.width() >= edit.minimumSizeHint().width())  # laid out again
    assert shows_whole(fields[1]) is fit
