"""The alert policy as pure functions: expiry thresholds, snooze, failure coalescing, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qp_desktop.services import alert_policy as p

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
KEY = p.token_key("https://qp.example.test|1", 42)


def walk(days: list[int], memory: p.AlertMemory | None = None, expired_at: int | None = None):
    """Decide for each day-left value in turn; return the thresholds notified."""
    memory = memory or p.AlertMemory()
    fired = []
    for i, left in enumerate(days):
        alert, memory = p.decide_expiry(memory, KEY, days_left=left,
                                        expired=expired_at is not None and i >= expired_at,
                                        now=NOW + timedelta(hours=i))
        if alert:
            fired.append(alert.threshold)
    return fired, memory


def test_each_threshold_fires_once_as_the_token_walks_through_its_life():
    fired, _ = walk([40, 31, 30, 29, 20, 8, 7, 7, 6, 2, 1, 1, 0])
    assert fired == [30, 7, 1]


def test_a_token_first_seen_late_warns_once_for_the_smallest_reached_threshold():
    fired, memory = walk([5, 5, 4])
    assert fired == [7]
    assert memory.get(KEY).done == {30, 7}
    fired, _ = walk([1], memory)
    assert fired == [1]


def test_expiry_fires_once_and_marks_every_threshold():
    fired, memory = walk([3, 0, -1, -2], expired_at=2)
    assert fired == [7, 1, p.EXPIRED]
    assert memory.get(KEY).done == {30, 7, 1, p.EXPIRED}


def test_memory_survives_a_restart_through_its_json_form():
    _, memory = walk([6])
    restored = p.AlertMemory.from_json(memory.to_json())
    assert restored == memory
    fired, _ = walk([6, 5], restored)
    assert fired == []


def test_damaged_memory_is_an_empty_memory():
    for text in ("", "not json", "[1,2]", '{"k": 3}', '{"k": {"done": ["x"]}}'):
        assert p.AlertMemory.from_json(text).tokens == {}


def test_tokens_are_remembered_apart_and_the_oldest_are_dropped():
    memory = p.AlertMemory()
    for i in range(p.MAX_REMEMBERED_TOKENS + 5):
        _, memory = p.decide_expiry(memory, f"t#{i}", days_left=3, expired=False, now=NOW)
    assert len(memory.tokens) == p.MAX_REMEMBERED_TOKENS
    assert "t#0" not in memory.tokens and f"t#{p.MAX_REMEMBERED_TOKENS + 4}" in memory.tokens


def test_custom_thresholds_from_the_tenant_are_honoured():
    alert, memory = p.decide_expiry(p.AlertMemory(), KEY, days_left=12, expired=False,
                                    now=NOW, thresholds=(14, 30, 7, 1))
    assert alert is not None and alert.threshold == 14
    assert memory.get(KEY).done == {14, 30}


def test_snooze_brings_the_notification_back_after_a_day():
    alert, memory = p.decide_expiry(p.AlertMemory(), KEY, days_left=6, expired=False, now=NOW)
    assert alert is not None and alert.threshold == 7
    memory = p.snooze(memory, KEY, NOW)
    later = NOW + timedelta(hours=23)
    assert p.decide_expiry(memory, KEY, days_left=6, expired=False, now=later)[0] is None
    back, memory = p.decide_expiry(memory, KEY, days_left=5, expired=False,
                                   now=NOW + timedelta(days=1, minutes=1))
    assert back is not None and back.reminder and back.threshold == 7 and back.days_left == 5
    # ... once.
    assert p.decide_expiry(memory, KEY, days_left=5, expired=False,
                           now=NOW + timedelta(days=1, hours=1))[0] is None


def test_a_new_threshold_waits_for_the_snooze_but_expiry_does_not():
    _, memory = p.decide_expiry(p.AlertMemory(), KEY, days_left=2, expired=False, now=NOW)
    memory = p.snooze(memory, KEY, NOW)
    held, memory = p.decide_expiry(memory, KEY, days_left=1, expired=False,
                                   now=NOW + timedelta(hours=2))
    assert held is None
    after, memory = p.decide_expiry(memory, KEY, days_left=1, expired=False,
                                    now=NOW + timedelta(days=1, hours=1))
    assert after is not None and after.threshold == 1 and not after.reminder
    memory = p.snooze(memory, KEY, NOW + timedelta(days=1, hours=1))
    expired, _ = p.decide_expiry(memory, KEY, days_left=0, expired=True,
                                 now=NOW + timedelta(days=1, hours=2))
    assert expired is not None and expired.expired


def test_expiry_text_never_needs_the_url():
    title, body = p.expiry_text(False, 5, datetime(2026, 5, 6, tzinfo=UTC))
    assert title == "The workflow URL expires in 5 days"
    assert "06 May 2026" in body
    assert p.expiry_text(False, 1)[0] == "The workflow URL expires tomorrow"
    assert p.expiry_text(False, 0)[0] == "The workflow URL expires today"
    assert p.expiry_text(True, -1)[0] == "The workflow URL has expired"


def failed(i: int, kind: str = p.RESET_FAILED) -> dict:
    return {"id": i, "type": kind, "severity": "error", "summary": f"Reset {i} failed",
            "resource_name": f"Account {i}", "details": {}}


def test_a_burst_of_failures_becomes_one_notification():
    window = p.FailureWindow()
    events = [failed(i) for i in range(5)] + [{"id": 9, "type": "password_reset.succeeded"}]
    window = p.add_failures(window, events[:2], NOW)
    window = p.add_failures(window, events[2:], NOW + timedelta(seconds=1))
    due = p.flush_at(window)
    assert due == NOW + p.GATHER  # from the first failure, not the last
    notice, window = p.take_notice(window, due)
    assert notice is not None
    title, body = p.failure_text(notice)
    assert title == "5 password resets failed"
    assert "Account 4" in body and "event monitor" in body
    assert p.flush_at(window) is None


def test_failures_after_a_notification_wait_for_the_gap_and_count_everything_unseen():
    window = p.add_failures(p.FailureWindow(), [failed(1)], NOW)
    notice, window = p.take_notice(window, NOW + p.GATHER)
    assert notice is not None and p.failure_text(notice) == (
        "1 password reset failed", "Account 1: Reset 1 failed")
    sent_at = NOW + p.GATHER
    window = p.add_failures(window, [failed(2, p.TRIGGER_REJECTED), failed(3)],
                            NOW + timedelta(seconds=10))
    assert p.flush_at(window) == sent_at + p.MIN_GAP
    notice, window = p.take_notice(window, sent_at + p.MIN_GAP)
    assert notice is not None
    assert p.failure_text(notice)[0] == ("2 password resets failed, "
                                         "1 workflow trigger was refused")


def test_acknowledged_failures_start_again_from_zero():
    window = p.add_failures(p.FailureWindow(), [failed(1), failed(2)], NOW)
    window = p.acknowledge(window)
    assert window.total == 0 and p.flush_at(window) is None


def test_a_disabled_kind_is_counted_for_the_status_but_not_notified():
    window = p.add_failures(p.FailureWindow(), [failed(1, p.TRIGGER_REJECTED)], NOW)
    notice, window = p.take_notice(window, NOW + p.GATHER, rejected_enabled=False)
    assert notice is None
    assert p.tray_status("active", 200, window).state == p.STATE_ERROR
    window = p.add_failures(window, [failed(2)], NOW + timedelta(seconds=5))
    notice, _ = p.take_notice(window, NOW + timedelta(seconds=9), rejected_enabled=False)
    assert notice is not None and p.failure_text(notice)[0] == "1 password reset failed"


def test_tray_status_states_and_tooltip():
    empty = p.FailureWindow()
    assert p.tray_status(None, None, empty, signed_in=False).state == p.STATE_OK
    ok = p.tray_status("active", 300, empty)
    assert ok.state == p.STATE_OK and "valid for 300 days" in ok.tooltip
    warn = p.tray_status("expiring", 5, empty)
    assert warn.state == p.STATE_WARNING and warn.tooltip.startswith("QP Desktop\n")
    assert "expires in 5 days" in warn.tooltip
    assert p.tray_status("expired", -1, empty).state == p.STATE_ERROR
    burst = p.add_failures(empty, [failed(1), failed(2)], NOW)
    both = p.tray_status("expiring", 5, burst)
    assert both.state == p.STATE_ERROR
    assert both.lines == ("The workflow URL expires in 5 days", "2 password resets failed")
