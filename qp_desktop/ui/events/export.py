"""Export of the events page's shown events to CSV and JSON.

The ``iter_*`` writers yield the number of events written after each chunk, so the page
can drive them step by step with a progress dialog (:class:`ExportMixin`);
``export_csv``/``export_json`` run them to the end.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from PySide6.QtCore import (
    Qt,
    QTimer,
)
from PySide6.QtWidgets import (
    QFileDialog,
    QMessageBox,
    QProgressDialog,
)

from qp_desktop.ui.events.records import EventRecord

CSV_COLUMNS = ("id", "occurred_at", "local_time", "category", "type", "severity", "summary",
               "resource_name", "resource_url", "account", "token_id", "details")
CHUNK = 2000


def _csv_row(record: EventRecord) -> list[Any]:
    return [
        record.id, record.occurred_at, record.local_time_text(), record.category,
        record.type, record.severity, record.summary, record.resource_name or "",
        record.resource_url or "", record.account or "",
        "" if record.token_id is None else record.token_id,
        record.details_json,
    ]


def iter_write_csv(records: Sequence[EventRecord], out: TextIO,
                   chunk: int = CHUNK) -> Iterator[int]:
    """Write a header and one row per event; yields the count written after each chunk."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for start in range(0, len(records), chunk):
        writer.writerows(_csv_row(r) for r in records[start:start + chunk])
        yield min(start + chunk, len(records))
    if not records:
        yield 0


def iter_write_json(records: Sequence[EventRecord], out: TextIO,
                    chunk: int = CHUNK) -> Iterator[int]:
    """Write a JSON array of events in their wire shape; yields progress like the CSV one."""
    out.write("[")
    for start in range(0, len(records), chunk):
        parts = [json.dumps(r.to_dict(), ensure_ascii=False) for r in records[start:start + chunk]]
        if start:
            out.write(",\n")
        else:
            out.write("\n")
        out.write(",\n".join(parts))
        yield min(start + chunk, len(records))
    out.write("\n]\n" if records else "]\n")
    if not records:
        yield 0


def export_csv(records: Sequence[EventRecord], path: str | Path) -> int:
    """Write ``records`` to ``path`` as CSV (UTF-8, header row). Returns the count."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        for _ in iter_write_csv(records, out):
            pass
    return len(records)


def export_json(records: Sequence[EventRecord], path: str | Path) -> int:
    """Write ``records`` to ``path`` as a JSON array. Returns the count."""
    with open(path, "w", encoding="utf-8") as out:
        for _ in iter_write_json(records, out):
            pass
    return len(records)


PROGRESS_THRESHOLD = 5000  # exports larger than this run in steps behind a progress dialog


class ExportMixin:
    """The page's Export menu: ask where, then write what the table shows."""

    view_model: Any
    export_finished: Any
    choose_export_path: Any

    def _ask_export_path(self, fmt: str, suggested: str) -> str | None:
        filters = "CSV files (*.csv)" if fmt == "csv" else "JSON files (*.json)"
        path, _ = QFileDialog.getSaveFileName(self, f"Export shown events as {fmt.upper()}",
                                              suggested, filters)
        return path or None

    def export_shown(self, fmt: str) -> None:
        """Ask where, then write what the table shows (in its order) as CSV or JSON."""
        records = self.view_model.shown_records()
        stamp = datetime.now().strftime("%Y%m%d-%H%M")
        path = self.choose_export_path(fmt, str(Path.home() / f"qp-events-{stamp}.{fmt}"))
        if not path:
            return
        try:
            out = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 — stepped
        except OSError as exc:
            QMessageBox.warning(self, "Export failed", f"Could not write {path}: {exc.strerror}")
            return
        writer = (iter_write_csv if fmt == "csv" else iter_write_json)(records, out)
        if len(records) <= PROGRESS_THRESHOLD:
            with out:
                for _ in writer:
                    pass
            self.export_finished.emit(path, len(records))
            return
        self._run_stepped_export(writer, out, path, len(records))

    def _run_stepped_export(self, writer: Iterator[int], out: Any, path: str, total: int) -> None:
        progress = QProgressDialog(f"Exporting {total:,} events…", "Cancel", 0, total, self)
        progress.setObjectName("exportProgress")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(300)

        def step() -> None:
            if progress.wasCanceled():
                out.close()
                Path(path).unlink(missing_ok=True)
                return
            try:
                done = next(writer)
            except StopIteration:
                out.close()
                progress.setValue(total)
                progress.close()
                self.export_finished.emit(path, total)
                return
            except OSError as exc:
                out.close()
                progress.close()
                QMessageBox.warning(self, "Export failed", f"Could not write {path}: {exc}")
                return
            progress.setValue(done)
            QTimer.singleShot(0, step)

        QTimer.singleShot(0, step)

