"""The S3 adapter against a real versitygw server."""

import functools
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from eval_runner.errors import ConfigError, DataError, TransientError
from eval_runner.hashing import sha256_file
from eval_runner.settings import S3Settings
from eval_runner.storage import MULTIPART_PART_SIZE, S3ObjectStore
from tests.services.s3 import S3Server, start_s3


def test_multipart_upload_of_64_mib_round_trips_byte_identical(object_store: S3ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(64 * 1024 * 1024 + 123))  # not a multiple of the part size on purpose
    digest = object_store.put_file("big/blob.bin", source)
    info = object_store.head("big/blob.bin")
    assert info is not None
    assert (info.size, info.sha256) == (source.stat().st_size, digest)
    target = tmp_path / "back.bin"
    object_store.get_file("big/blob.bin", target, expected_sha256=digest)
    assert sha256_file(target) == digest


def test_listing_is_by_prefix(object_store: S3ObjectStore) -> None:
    for key in ["runs/a/1", "runs/a/2", "runs/ab/1", "other/x"]:
        object_store.put_bytes(key, key.encode())
    assert object_store.list("runs/a/") == ["runs/a/1", "runs/a/2"]
    assert object_store.list("runs/") == ["runs/a/1", "runs/a/2", "runs/ab/1"]
    assert object_store.list("nothing/") == []


def test_missing_key_is_a_data_error_naming_the_key(object_store: S3ObjectStore) -> None:
    with pytest.raises(DataError, match=r"capacity/datasets/year=2026/month=04/dataset\.parquet: no such object"):
        object_store.get_bytes("capacity/datasets/year=2026/month=04/dataset.parquet")
    assert object_store.head("nope") is None


def test_published_objects_are_immutable_on_the_real_server(object_store: S3ObjectStore) -> None:
    object_store.publish({"d/data": b"1"}, marker_key="d/manifest.json", marker=b"{}")
    assert object_store.list("d/") == ["d/data", "d/manifest.json"]
    with pytest.raises(DataError, match="already exists with different content"):
        object_store.put_bytes("d/data", b"2")
    assert object_store.get_bytes("d/data") == b"1"


def test_hash_mismatch_on_read_is_a_data_error(object_store: S3ObjectStore) -> None:
    object_store.put_bytes("k", b"abc")
    with pytest.raises(DataError, match="does not match the expected"):
        object_store.get_bytes("k", expected_sha256="0" * 64)


def _kill_once_bytes_arrive(server: S3Server, data: Path, timeout: float = 30) -> None:
    """Kill the server as soon as an upload's first bytes are on its disk: mid-call, whatever the speed.

    A fixed delay raced the upload: on an idle machine 48 MiB reached the server within 0.3 s.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.is_file() and p.stat().st_size for p in data.rglob("*")):
            break
        time.sleep(0.005)
    server.process.kill()


def test_server_stopped_mid_call_gives_a_transient_error_after_bounded_retries(tmp_path: Path) -> None:
    server = start_s3(tmp_path / "dying")
    try:
        store = S3ObjectStore.from_settings(server.settings("dying"))
        store.ensure_bucket()
        payload = os.urandom(48 * 1024 * 1024)
        killer = threading.Thread(target=_kill_once_bytes_arrive, args=(server, tmp_path / "dying" / "data"))
        killer.start()
        started = time.monotonic()
        with pytest.raises(TransientError, match="gave up after 4 attempts") as raised:
            store.put_bytes("big", payload)
        elapsed = time.monotonic() - started
        killer.join()
    finally:
        server.stop()
    assert "S3 unreachable" in str(raised.value)
    # 4 attempts with 0.25 + 0.5 + 1.0 s of backoff and 3 s connect timeouts: bounded, not hanging.
    assert elapsed < 20, f"retries took {elapsed:.1f}s"


def _race(writers: Sequence[Callable[[], object]]) -> list[BaseException | None]:
    """Start every writer at the same instant (a barrier); return each one's error, or None."""
    barrier = threading.Barrier(len(writers))
    outcomes: list[BaseException | None] = [None] * len(writers)

    def run(index: int) -> None:
        barrier.wait()
        try:
            writers[index]()
        except BaseException as error:  # the test inspects whatever a writer raised
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize("size", [1000, 20 * 1024 * 1024], ids=["single-put", "multipart"])
def test_of_concurrent_writers_of_one_key_exactly_one_wins(
    object_store: S3ObjectStore, tmp_path: Path, size: int
) -> None:
    # Every writer passes the HEAD check at the same moment; only the conditional write decides.
    rounds = 10 if size < MULTIPART_PART_SIZE else 2
    for round_ in range(rounds):
        key = f"race/{size}/{round_}"
        payloads = [bytes([i]) * size for i in range(4)]
        writers: list[Callable[[], object]]
        if size < MULTIPART_PART_SIZE:
            writers = [functools.partial(object_store.put_bytes, key, p) for p in payloads]
        else:
            files = []
            for i, payload in enumerate(payloads):
                files.append(tmp_path / f"{round_}-{i}.bin")
                files[-1].write_bytes(payload)
            writers = [functools.partial(object_store.put_file, key, f) for f in files]
        outcomes = _race(writers)
        winners = [i for i, error in enumerate(outcomes) if error is None]
        assert len(winners) == 1, outcomes
        assert object_store.get_bytes(key) == payloads[winners[0]]
        for error in (e for e in outcomes if e is not None):
            assert isinstance(error, DataError)
            assert key in str(error)
            assert "immutable" in str(error)


def test_concurrent_writers_of_the_same_bytes_all_succeed(object_store: S3ObjectStore) -> None:
    # A retried or resubmitted step writes what it wrote before: that is a no-op, never an error.
    outcomes = _race([lambda: object_store.put_bytes("same", b"identical")] * 4)
    assert outcomes == [None] * 4
    assert object_store.get_bytes("same") == b"identical"


def test_two_concurrent_publishes_of_one_month_leave_one_manifest(object_store: S3ObjectStore) -> None:
    key = "capacity/datasets/year=2026/month=04/manifest.json"

    def build(n: int) -> Callable[[], object]:
        objects = {"capacity/datasets/year=2026/month=04/dataset.parquet": f"build {n}".encode()}
        return lambda: object_store.publish(objects, marker_key=key, marker=f'{{"build": {n}}}'.encode())

    outcomes = _race([build(1), build(2)])
    assert sorted(e is None for e in outcomes) == [False, True]
    loser = next(e for e in outcomes if e is not None)
    assert isinstance(loser, DataError)
    assert loser.exit_code == 3
    assert "dataset.parquet" in str(loser) or "manifest.json" in str(loser)
    winner = outcomes.index(None) + 1
    assert object_store.get_bytes(key) == f'{{"build": {winner}}}'.encode()
    assert object_store.list("capacity/datasets/") == [
        "capacity/datasets/year=2026/month=04/dataset.parquet",
        key,
    ]


def test_head_answers_absent_only_for_a_missing_object(s3_server: S3Server, object_store: S3ObjectStore) -> None:
    assert object_store.head("nothing-here") is None
    wrong = S3ObjectStore.from_settings(
        S3Settings(
            endpoint=s3_server.endpoint,
            access_key=s3_server.access_key,
            secret_key="not-the-secret",
            bucket=object_store.bucket,
        )
    )
    with pytest.raises(ConfigError, match="refused the credentials"):
        wrong.head("nothing-here")
    with pytest.raises(ConfigError, match="refused the credentials"):
        wrong.put_bytes("nothing-here", b"x")  # an existence check that fails closed


def test_head_of_a_stopped_server_is_an_error_not_absent(tmp_path: Path) -> None:
    server = start_s3(tmp_path / "stopped")
    store = S3ObjectStore.from_settings(server.settings("stopped"))
    store.ensure_bucket()
    server.stop()
    with pytest.raises(TransientError, match="S3 unreachable"):
        store.head("anything")
