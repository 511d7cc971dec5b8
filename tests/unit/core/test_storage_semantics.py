import pytest

from eval_runner.errors import ConfigError, DataError
from eval_runner.hashing import sha256_bytes
from eval_runner.storage import ObjectInfo
from tests.fakes import MemoryObjectStore


def test_same_content_again_is_a_no_op() -> None:
    store = MemoryObjectStore()
    first = store.put_bytes("a/b", b"x")
    second = store.put_bytes("a/b", b"x")
    assert first == second == sha256_bytes(b"x")
    assert store.writes == ["a/b"]


def test_different_content_to_a_published_key_is_refused() -> None:
    store = MemoryObjectStore()
    store.put_bytes("a/b", b"x")
    with pytest.raises(DataError, match=r"'a/b' already exists with different content"):
        store.put_bytes("a/b", b"y")
    assert store.get_bytes("a/b") == b"x"


def test_overwrite_is_explicit() -> None:
    store = MemoryObjectStore()
    store.put_bytes("progress", b"1")
    store.put_bytes("progress", b"2", overwrite=True)
    assert store.get_bytes("progress") == b"2"


def test_get_verifies_the_expected_hash() -> None:
    store = MemoryObjectStore()
    store.put_bytes("k", b"payload")
    assert store.get_bytes("k", expected_sha256=sha256_bytes(b"payload")) == b"payload"
    with pytest.raises(DataError, match=r"'k': content sha256 .* does not match"):
        store.get_bytes("k", expected_sha256=sha256_bytes(b"other"))


def test_publish_writes_the_marker_last() -> None:
    store = MemoryObjectStore()
    hashes = store.publish({"d/one": b"1", "d/two": b"2"}, marker_key="d/manifest.json", marker=b"{}")
    assert store.writes[-1] == "d/manifest.json"
    assert hashes == {"d/one": sha256_bytes(b"1"), "d/two": sha256_bytes(b"2")}


def test_publish_writes_no_marker_when_an_object_conflicts() -> None:
    store = MemoryObjectStore()
    store.put_bytes("d/two", b"old")
    with pytest.raises(DataError):
        store.publish({"d/one": b"1", "d/two": b"2"}, marker_key="d/.done", marker=b"")
    assert not store.exists("d/.done")


def test_publish_overwrites_only_the_keys_it_is_told() -> None:
    store = MemoryObjectStore()
    store.publish({"b/result": b"1"}, marker_key="b/.pending", marker=b"p1", overwrite={"b/result", "b/.pending"})
    store.publish({"b/result": b"2"}, marker_key="b/.pending", marker=b"p2", overwrite={"b/result", "b/.pending"})
    store.publish({"b/result": b"3"}, marker_key="b/.done", marker=b"d", overwrite={"b/result"})
    assert (store.get_bytes("b/result"), store.get_bytes("b/.pending")) == (b"3", b"p2")
    with pytest.raises(DataError, match=r"'b/.done' already exists with different content"):
        store.publish({"b/result": b"4"}, marker_key="b/.done", marker=b"other", overwrite={"b/result"})
    assert store.get_bytes("b/.done") == b"d"


def test_marker_cannot_be_one_of_the_objects() -> None:
    with pytest.raises(ConfigError, match="marker"):
        MemoryObjectStore().publish({"m": b"1"}, marker_key="m", marker=b"")


def test_list_is_by_prefix_and_sorted() -> None:
    store = MemoryObjectStore()
    for key in ["b/2", "a/1", "b/1", "bb/1"]:
        store.put_bytes(key, key.encode())
    assert store.list("b/") == ["b/1", "b/2"]


class _WriterSlipsIn(MemoryObjectStore):
    """Another writer publishes ``rival`` right after our HEAD said the key was free."""

    def __init__(self, rival: bytes) -> None:
        super().__init__()
        self.rival = rival

    def head(self, key: str) -> ObjectInfo | None:
        info = super().head(key)
        if info is None and key not in self.objects:
            self.objects[key] = self.rival
        return info


def test_a_writer_that_slips_in_after_the_check_wins_and_ours_is_refused() -> None:
    store = _WriterSlipsIn(rival=b"theirs")
    with pytest.raises(DataError, match=r"'k' was published by a concurrent writer with different content"):
        store.put_bytes("k", b"ours")
    assert store.get_bytes("k") == b"theirs"
    assert store.writes == []


def test_a_writer_that_slipped_in_with_the_same_bytes_is_a_no_op() -> None:
    store = _WriterSlipsIn(rival=b"same")
    assert store.put_bytes("k", b"same") == sha256_bytes(b"same")
    assert store.writes == []
