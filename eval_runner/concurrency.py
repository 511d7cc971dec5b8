"""Work on a sequence ahead of its consumer: a bounded number of items in flight, results in item order.

The steps' loops are I/O next to compute: read the next chunk while shaping this one, download the next
batch while the library predicts this one, write several snapshot batches at once. One shape serves
them all, so the bounds, the ordering and what happens on failure are decided in one place.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def in_order(
    work: Callable[[T], R], items: Iterable[T], *, workers: int, ahead: int | None = None, name: str
) -> Iterator[Iterator[R]]:
    """Yield an iterator of ``work(item)`` for each item, in item order, computed by ``workers`` threads.

    At most ``ahead`` items (default: ``workers``) are submitted and not yet taken, so memory is bounded
    by what the consumer has not consumed; while the consumer handles one result, the next ``ahead`` are
    being worked on. A failed item raises from the iterator when its turn comes. On leaving the block,
    however it is left (the end, a break, an exception), items not started are cancelled and the block
    waits for those running: no thread outlives it.
    """
    if workers < 1 or (ahead is not None and ahead < 1):
        raise ValueError(f"in_order {name}: workers and ahead must be at least 1 (got {workers}, {ahead})")
    depth = workers if ahead is None else ahead
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name) as pool:
        pending: deque[Future[R]] = deque()
        upcoming = iter(items)

        def results() -> Iterator[R]:
            pending.extend(pool.submit(work, item) for item in itertools.islice(upcoming, depth))
            while pending:
                result = pending.popleft().result()
                pending.extend(pool.submit(work, item) for item in itertools.islice(upcoming, 1))
                yield result

        try:
            yield results()
        finally:
            for future in pending:
                future.cancel()
