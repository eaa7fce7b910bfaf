"""Unit tests of the monitor's table model, filter and export, with synthetic events."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta

from PySide6.QtCore import QModelIndex, Qt

from qp_common.wire import category_of
from qp_desktop.demo.events import demo_events
from qp_desktop.ui.events.export import export_csv, export_json
from qp_desktop.ui.events.filter import EventFilter, EventFilterModel
from qp_desktop.ui.events.model import EventTableModel
from qp_desktop.ui.events.records import COL_ACCOUNT, COL_CATEGORY, COL_SEVERITY, COL_SUMMARY


def _event(event_id: int, type_: str = "workflow_trigger.received", severity: str = "info",
           summary: str = "something", minutes_ago: float = 0, **extra):
    moment = datetime(2025, 3, 4, 12, 0, tzinfo=UTC) - timedelta(minutes=minutes_ago)
    return {"id": event_id, "occurred_at": moment.isoformat().replace("+00:00", "Z"),
            "type": type_, "severity": severity, "summary": summary, "details": {}, **extra}


def test_categories_group_types_as_the_ui_names_them():
    assert category_of("workflow_trigger.rejected") == "Workflow Trigger"
    assert category_of("password_reset.failed") == "Workflow Trigger"
    assert category_of("token.expiring") == "Token"
    assert category_of("integration.error") == "Integration"
    assert category_of("alert.sent") == "Alert"
    assert category_of("agent.offline") == "Agent"
    assert category_of("customer.imported") == "Other"


def test_append_inserts_one_batch_and_never_resets(qtbot):
    model = EventTableModel()
    inserts, resets = [], []
    model.rowsInserted.connect(lambda _p, first, last: inserts.append((first, last)))
    model.modelReset.connect(lambda: resets.append(1))
    model.append_events([_event(1), _event(2), _event(3)])
    model.append_events([_event(5), _event(4)])  # out of order within a batch: sorted
    assert inserts == [(0, 2), (3, 4)]
    assert resets == []
    assert [r.id for r in model.records] == [1, 2, 3, 4, 5]


def test_append_drops_ids_already_held_and_prepend_only_takes_older(qtbot):
    model = EventTableModel()
    model.append_events([_event(10), _event(11)])
    model.append_events([_event(11), _event(9), _event(12), _event(12)])
    assert [r.id for r in model.records] == [10, 11, 12]
    model.prepend_older([_event(11), _event(8), _event(7)])  # newest first, as the API sends
    assert [r.id for r in model.records] == [7, 8, 10, 11, 12]


def test_display_roles_show_category_severity_and_account(qtbot):
    model = EventTableModel()
    model.append_events([_event(1, "password_reset.failed", "error", "Reset failed",
                                account="svc@contoso.local")])
    index = model.index(0, COL_CATEGORY)
    assert model.data(index) == "Workflow Trigger"
    assert model.data(model.index(0, COL_SEVERITY)) == "Error"
    assert model.data(model.index(0, COL_ACCOUNT)) == "svc@contoso.local"
    assert model.data(model.index(0, COL_SEVERITY), Qt.ItemDataRole.DecorationRole) is not None
    assert model.rowCount(QModelIndex()) == 1


def test_filter_model_newest_first_and_live_inserts_at_top(qtbot):
    model = EventTableModel()
    view = EventFilterModel(model, newest_first=True)
    model.append_events([_event(1), _event(2)])
    inserts = []
    view.rowsInserted.connect(lambda _p, first, last: inserts.append((first, last)))
    model.append_events([_event(3), _event(4)])
    assert inserts == [(0, 1)]
    assert [view.record_at(r).id for r in range(view.rowCount())] == [4, 3, 2, 1]
    model.prepend_older([_event(0)])
    assert inserts[-1] == (4, 4)  # an older page lands at the bottom
    view.set_newest_first(False)
    assert [view.record_at(r).id for r in range(view.rowCount())] == [0, 1, 2, 3, 4]
    assert view.row_of(3) == 3 and view.row_of(99) is None


def test_filters_combine_and_counters_add_up(qtbot):
    model = EventTableModel()
    view = EventFilterModel(model)
    counts = []
    view.counts_changed.connect(lambda shown, hidden: counts.append((shown, hidden)))
    model.append_events([
        _event(1, "password_reset.failed", "error", "Reset failed for svc-sql", minutes_ago=90),
        _event(2, "password_reset.failed", "error", "Reset failed for frontdesk", minutes_ago=5),
        _event(3, "token.expiring", "warning", "Token expires in 7 days", minutes_ago=4),
        _event(4, "password_reset.succeeded", "info", "Reset applied to svc-sql",
               minutes_ago=3),
        _event(5, "agent.offline", "warning", "Agent dc01 stopped", minutes_ago=2),
    ])
    now = datetime(2025, 3, 4, 12, 0, tzinfo=UTC).timestamp()
    view.set_filter(EventFilter(categories=frozenset({"Workflow Trigger"}),
                                severities=frozenset({"error"})))
    assert [r.id for r in view.shown_records()] == [2, 1]
    view.set_filter(EventFilter(categories=frozenset({"Workflow Trigger"}),
                                severities=frozenset({"error"}), since=now - 30 * 60))
    assert [r.id for r in view.shown_records()] == [2]
    view.set_filter(EventFilter(text="SVC-sql"))
    assert [r.id for r in view.shown_records()] == [4, 1]
    view.set_filter(EventFilter(text="svc-sql applied"))  # every word must match
    assert [r.id for r in view.shown_records()] == [4]
    view.set_filter(EventFilter(types=frozenset({"agent.offline"})))
    assert counts[-1] == (1, 4)
    # A live event that fails the filter only moves the "filtered out" counter.
    model.append_events([_event(6, "token.generated")])
    assert counts[-1] == (1, 5)
    model.append_events([_event(7, "agent.offline", "warning")])
    assert counts[-1] == (2, 5)


def test_text_filter_searches_details_values(qtbot):
    model = EventTableModel()
    view = EventFilterModel(model)
    model.append_events([_event(1, details={"code": "ldap_constraint_violation"}),
                         _event(2, details={"code": "agent_offline"})])
    view.set_filter(EventFilter(text="constraint"))
    assert [r.id for r in view.shown_records()] == [1]


def test_export_writes_exactly_the_shown_events(qtbot, tmp_path):
    model = EventTableModel()
    view = EventFilterModel(model)
    events = demo_events(300, end=datetime(2025, 3, 4, 12, 0, tzinfo=UTC))
    model.append_events(events)
    view.set_filter(EventFilter(severities=frozenset({"error"})))
    shown = view.shown_records()
    assert 0 < len(shown) < 300
    export_csv(shown, tmp_path / "e.csv")
    export_json(shown, tmp_path / "e.json")
    with open(tmp_path / "e.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["id"]) for r in rows] == [r.id for r in shown]
    assert {r["severity"] for r in rows} == {"error"}
    data = json.loads((tmp_path / "e.json").read_text(encoding="utf-8"))
    assert [e["id"] for e in data] == [r.id for r in shown]
    original = {e["id"]: e for e in events}
    assert data[0] == original[data[0]["id"]]  # the wire shape, field for field


def test_export_of_nothing_is_valid(tmp_path):
    export_json([], tmp_path / "e.json")
    export_csv([], tmp_path / "e.csv")
    assert json.loads((tmp_path / "e.json").read_text()) == []
    assert (tmp_path / "e.csv").read_text().startswith("id,occurred_at")


def test_demo_events_are_realistic_and_ordered():
    events = demo_events(500)
    assert [e["id"] for e in events] == list(range(1, 501))
    assert [e["occurred_at"] for e in events] == sorted(e["occurred_at"] for e in events)
    types = {e["type"] for e in events}
    for expected in ("workflow_trigger.received", "workflow_trigger.test",
                     "workflow_trigger.rejected", "password_reset.queued",
                     "password_reset.succeeded", "password_reset.failed", "token.generated",
                     "token.expiring", "integration.connected", "agent.online",
                     "agent.offline", "alert.sent"):
        assert expected in types
    failed = next(e for e in events if e["type"] == "password_reset.failed")
    assert failed["details"]["reason"] and failed["severity"] == "error"
    assert COL_SUMMARY == 4


def test_multi_data_answers_exactly_what_data_answers(qtbot):
    from PySide6.QtCore import QModelRoleData, QModelRoleDataSpan

    from qp_desktop.ui.events.records import COLUMN_COUNT, EventIdRole, EventRecordRole

    model = EventTableModel()
    view = EventFilterModel(model)
    model.append_events(demo_events(60))
    roles = [int(r) for r in range(14)] + [int(EventRecordRole), int(EventIdRole)]
    for table in (model, view):
        for row in (0, 7, 59):
            for column in range(COLUMN_COUNT):
                index = table.index(row, column)
                for role in roles:
                    item = QModelRoleData(role)
                    table.multiData(index, QModelRoleDataSpan(item))
                    expected = table.data(index, role)
                    got = item.data()
                    if role == Qt.ItemDataRole.DecorationRole and expected is not None:
                        assert got.cacheKey() == expected.cacheKey()
                    else:
                        assert got == expected, (row, column, role)


def test_multi_data_clears_roles_a_cell_has_no_value_for(qtbot):
    """The view reuses one role span from cell to cell: an error row's icon and colour must
    not leak into the next (info) cell."""
    from PySide6.QtCore import QModelRoleData

    model = EventTableModel()
    events = demo_events(60)
    model.append_events(events)
    error_row = next(i for i, e in enumerate(events) if e["severity"] == "error")
    info_row = next(i for i, e in enumerate(events) if e["severity"] == "info")
    roles = [Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.ForegroundRole]
    span = [QModelRoleData(int(role)) for role in roles]
    model.multiData(model.index(error_row, 3), span)  # severity column: icon + colour
    assert span[0].data() is not None
    model.multiData(model.index(info_row, 0), span)  # time column: neither
    for item, role in zip(span, roles, strict=True):
        assert item.data() == model.data(model.index(info_row, 0), role)
