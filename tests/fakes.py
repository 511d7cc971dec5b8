"""In-memory fakes for unit tests of pure logic; integration tests use the real services instead."""

from __future__ import annotations

from pathlib import Path

from eval_runner.errors import DataError
from eval_runner.hashing import sha256_bytes
from eval_runner.storage import ImmutableStore, KeyTakenError, ObjectInfo


class MemoryObjectStore(ImmutableStore):
    """An ObjectStore in a dict, with the same immutability and publish semantics as S3ObjectStore.

    ``writes`` records every key written, in order, so tests can assert what was (not) published.
    """

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.writes: list[str] = []

    def _write(self, key: str, data: bytes, sha256: str, *, if_absent: bool) -> None:
        if if_absent and key in self.objects:
            raise KeyTakenError(f"put memory://{key}: the key exists already")
        self.objects[key] = data
        self.writes.append(key)

    def _write_file(self, key: str, path: Path, sha256: str, *, if_absent: bool) -> None:
        self._write(key, path.read_bytes(), sha256, if_absent=if_absent)

    def _read(self, key: str) -> bytes:
        if key not in self.objects:
            raise DataError(f"get memory://{key}: no such object")
        return self.objects[key]

    def _read_to_file(self, key: str, path: Path) -> None:
        path.write_bytes(self._read(key))

    def head(self, key: str) -> ObjectInfo | None:
        """Size and hash of a stored object."""
        data = self.objects.get(key)
        return None if data is None else ObjectInfo(key=key, size=len(data), sha256=sha256_bytes(data))

    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted."""
        return sorted(key for key in self.objects if key.startswith(prefix))
