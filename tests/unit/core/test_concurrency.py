"""in_order: results in item order, a bounded number in flight, nothing left running when the block ends."""

from __future__ import annotations

import threading
import time

import pytest

from eval_runner.concurrency import in_order


class Counting:
    """Work that records how many calls run at once and which items started."""

    def __init__(self, delay: float = 0.0, fail_on: int | None = None) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.started: list[int] = []
        self.delay = delay
        self.fail_on = fail_on

    def __call__(self, item: int) -> int:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.started.append(item)
        try:
            time.sleep(self.delay * (1 + item % 3))  # uneven, so completion order differs from item order
            if item == self.fail_on:
                raise RuntimeError(f"item {item} failed")
            return item * 10
        finally:
            with self.lock:
                self.running -= 1


def test_results_come_in_item_order_with_at_most_the_workers_running() -> None:
    work = Counting(delay=0.005)
    with in_order(work, range(12), workers=3, name="t") as results:
        assert list(results) == [i * 10 for i in range(12)]
    assert work.most == 3


def test_no_more_than_ahead_items_are_submitted_before_the_consumer_takes_them() -> None:
    work = Counting()
    with in_order(work, range(10), workers=2, ahead=4, name="t") as results:
        assert next(results) == 0
        time.sleep(0.05)  # let the pool drain what it was given
        assert sorted(work.started) == [0, 1, 2, 3, 4]  # the first 4, and one more once 0 was taken


def test_a_failed_item_raises_in_its_turn_and_the_items_not_started_never_start() -> None:
    work = Counting(delay=0.01, fail_on=1)
    got: list[int] = []
    with pytest.raises(RuntimeError, match="item 1 failed"), in_order(work, range(50), workers=2, name="t") as results:
        got.extend(results)
    assert got == [0]
    assert len(work.started) < 50 and work.running == 0


def test_a_consumer_that_stops_early_leaves_no_work_running() -> None:
    work = Counting(delay=0.01)
    with pytest.raises(KeyError), in_order(work, range(100), workers=2, ahead=3, name="t") as results:
        for value in results:
            if value == 20:
                raise KeyError("the consumer's own failure")
    assert work.running == 0 and len(work.started) <= 3 + 3  # 3 at first, one more per result taken


def test_nothing_to_do_yields_nothing_and_bad_bounds_are_refused() -> None:
    with in_order(Counting(), [], workers=2, name="t") as results:
        assert list(results) == []
    with (
        pytest.raises(ValueError, match="workers and ahead must be at least 1"),
        in_order(Counting(), [1], workers=0, name="t"),
    ):
        pass
