"""The expiry threshold policy as pure functions: no database, no clock."""

from __future__ import annotations

import pytest

from qp_tenant.domain.alerts import EXPIRED_MARK, due_threshold, expiry_decision

DEFAULT = [30, 7, 1]


def walk(days: list[int], thresholds: list[int] = DEFAULT) -> list[tuple[int, int | None]]:
    """Feed days_left values in order; return (days_left, threshold warned) per warning."""
    warned: set[int] = set()
    out = []
    for left in days:
        d = expiry_decision(left, left == 0, thresholds, warned)
        if d.event is not None:
            out.append((left, d.threshold))
            warned |= d.mark
    return out


def test_nothing_is_due_before_the_largest_threshold() -> None:
    assert due_threshold(31, DEFAULT, set()) == (None, frozenset())
    assert expiry_decision(365, False, DEFAULT, set()).event is None


def test_a_year_long_token_warns_once_per_threshold_then_expires() -> None:
    assert walk(list(range(365, -1, -1))) == [(30, 30), (7, 7), (1, 1), (0, EXPIRED_MARK)]


def test_a_token_created_with_ten_days_warns_at_once_for_30_then_at_7_and_1() -> None:
    first = expiry_decision(10, False, DEFAULT, set())
    assert (first.event, first.threshold, first.mark) == ("token.expiring", 30, {30})
    assert walk(list(range(10, -1, -1))) == [(10, 30), (7, 7), (1, 1), (0, EXPIRED_MARK)]


def test_after_downtime_only_the_smallest_reached_threshold_warns_and_larger_ones_are_marked(
) -> None:
    d = expiry_decision(5, False, DEFAULT, set())
    assert (d.event, d.threshold, d.mark) == ("token.expiring", 7, {30, 7})
    assert expiry_decision(5, False, DEFAULT, d.mark).event is None


def test_a_threshold_already_warned_is_never_warned_again() -> None:
    assert expiry_decision(7, False, DEFAULT, {30, 7}).event is None
    assert expiry_decision(3, False, DEFAULT, {30, 7}).event is None


def test_expiry_is_logged_once_and_marks_every_threshold_not_yet_warned() -> None:
    d = expiry_decision(0, True, DEFAULT, {30})
    assert (d.event, d.threshold) == ("token.expired", EXPIRED_MARK)
    assert d.mark == {7, 1, EXPIRED_MARK}
    assert expiry_decision(0, True, DEFAULT, {30, 7, 1, EXPIRED_MARK}).event is None


@pytest.mark.parametrize("thresholds", [[], [0]])
def test_thresholds_that_never_fire_before_expiry_leave_only_the_expired_event(
        thresholds: list[int]) -> None:
    assert walk([400, 10, 1, 0], thresholds) == [(0, EXPIRED_MARK)]


def test_custom_thresholds_are_honoured_whatever_their_order() -> None:
    assert walk(list(range(100, -1, -1)), [3, 60, 14]) == [
        (60, 60), (14, 14), (3, 3), (0, EXPIRED_MARK)]
