"""The slot a window's traffic goes in holds nothing sent before it (CI: window 1 judged 403 rows,
the 400 of the window plus the 3 calls steps 6-8 had sent earlier in the same grid slot)."""

import datetime as dt

from patchrisk_demo.window_schedule import window_slot

GRID = 18


def at(seconds: float) -> dt.datetime:
    return dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def test_a_slot_that_already_holds_earlier_traffic_is_skipped_for_the_next():
    # earlier calls went out 0.5 s into the slot; 17 s of it are left, more than the margin
    assert window_slot(at(1.0), GRID, not_before=at(0.5), margin=8.0) == (at(18), at(36))


def test_the_current_slot_is_used_when_nothing_was_sent_in_it_and_enough_is_left():
    assert window_slot(at(1.0), GRID, not_before=at(-0.1), margin=8.0) == (at(0), at(18))


def test_a_slot_with_less_than_the_margin_left_is_skipped():
    assert window_slot(at(12.0), GRID, not_before=at(-5), margin=8.0) == (at(18), at(36))
