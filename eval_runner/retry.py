"""Bounded retries with exponential backoff for short network blips inside a pod.

Longer outages surface as TransientError (exit 75) and are retried by Argo with its own backoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from eval_runner.errors import TransientError

T = TypeVar("T")
log = logging.getLogger(__name__)


def retry_transient(
    call: Callable[[], T],
    *,
    what: str,
    attempts: int = 4,
    first_delay: float = 0.25,
    max_delay: float = 4.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``; on TransientError wait and try again, at most ``attempts`` times in all."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except TransientError as error:
            if attempt == attempts:
                raise TransientError(f"{what}: gave up after {attempts} attempts: {error}") from error
            log.warning("%s: attempt %d/%d failed (%s); retrying in %.2fs", what, attempt, attempts, error, delay)
            sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable: the loop returns or raises")
