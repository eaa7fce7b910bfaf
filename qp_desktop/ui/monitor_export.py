"""Export of the monitor's shown events to CSV and JSON (plain file writing, no widgets).

The ``iter_*`` writers yield the number of events written after each chunk, so the window
can drive them step by step with a progress dialog; ``export_csv``/``export_json`` run them
to the end.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from qp_desktop.ui.event_model import EventRecord

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
