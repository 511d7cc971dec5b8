"""The S3 adapter against a real versitygw server."""

import os
import threading
import time
from pathlib import Path

import pytest

from eval_runner.errors import DataError, TransientError
from eval_runner.hashing import sha256_file
from eval_runner.storage import S3ObjectStore
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
