"""The window's reader one batch ahead: same items in the same order, its errors raised to the
consumer, and a consumer that stops early stops the reader (no thread left behind)."""

import threading

import pytest

from patchrisk.monitoring.drift.read_ahead import read_ahead


def test_items_arrive_in_order_and_the_reader_stays_at_most_depth_ahead():
    produced, ahead = [], []

    def items():
        for i in range(50):
            produced.append(i)
            yield i

    consumed = []
    for item in read_ahead(items(), depth=2):
        consumed.append(item)
        ahead.append(len(produced) - len(consumed))
    assert consumed == list(range(50))
    assert max(ahead) <= 3  # the queue's two, plus the one the reader holds while the queue is full


def test_an_error_while_reading_is_raised_in_the_consumer_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise OSError("part-7.parquet: truncated")

    seen = []
    with pytest.raises(OSError, match="truncated"):
        seen.extend(read_ahead(items()))  # what came before the error is kept
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_the_reader():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    batches = read_ahead(endless())
    assert next(batches) == 0
    batches.close()  # as a `for` loop left by break or an exception does
    assert threading.active_count() == before
