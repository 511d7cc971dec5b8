import pytest

from eval_runner.errors import DataError, TransientError
from eval_runner.retry import retry_transient


def test_retries_transient_errors_with_growing_delays_then_succeeds() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise TransientError("blip")
        return "ok"

    assert retry_transient(flaky, what="x", sleep=sleeps.append) == "ok"
    assert len(calls) == 3
    assert sleeps == [0.25, 0.5]


def test_gives_up_after_the_bound_with_a_transient_error() -> None:
    sleeps: list[float] = []

    def down() -> None:
        raise TransientError("refused")

    with pytest.raises(TransientError, match="gave up after 4 attempts"):
        retry_transient(down, what="get s3://b/k", sleep=sleeps.append)
    assert len(sleeps) == 3


def test_data_errors_are_not_retried() -> None:
    calls: list[int] = []

    def bad() -> None:
        calls.append(1)
        raise DataError("broken")

    with pytest.raises(DataError):
        retry_transient(bad, what="x", sleep=lambda _: None)
    assert calls == [1]
