"""Object storage: the one place that knows S3, behind the small ObjectStore protocol.

Semantics every implementation shares (see ``ImmutableStore``):
- keys are deterministic and objects immutable: writing different content to an existing key is a
  DataError, writing the same content again is a no-op (so retried work never double-applies); the
  write itself is conditional (``If-None-Match: *``), so of two concurrent writers of one key exactly
  one wins and the other, holding different content, gets a DataError naming the key;
- ``head`` answers None only for an object that does not exist; any other failure raises;
- ``publish`` writes a set of objects, verifies each, and writes the marker (manifest, ``.done``) last,
  so a reader that trusts the marker never sees a half result;
- ``get_bytes(key, expected_sha256=...)`` verifies content against the hash a manifest names.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import logging
import xml.etree.ElementTree as ET
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error, ServerError
from urllib3.exceptions import HTTPError as Urllib3Error

from eval_runner.errors import ConfigError, DataError, TransientError
from eval_runner.hashing import sha256_bytes, sha256_file
from eval_runner.retry import retry_transient
from eval_runner.settings import S3Settings
from eval_runner.stored import StoredRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

SHA256_META = "sha256"  # stored as x-amz-meta-sha256 so a HEAD tells content identity without a GET
MULTIPART_PART_SIZE = 16 * 1024 * 1024


class ObjectNotFoundError(DataError):
    """The key names no object (404 / NoSuchKey): the one failure ``head`` turns into "absent"."""


class KeyTakenError(DataError):
    """A conditional write found the key taken (412 on ``If-None-Match: *``): another writer was first."""


class ContentConflictError(DataError):
    """An immutable key already holds different content: a write that would replace it was refused.

    Its own type so that writers who claim a key (a new review revision) can tell "someone else was
    first" from every other data error and try the next key.
    """


@dataclass(frozen=True)
class ObjectInfo:
    """What a HEAD request tells about an object."""

    key: str
    size: int
    sha256: str | None


class ObjectStore(Protocol):
    """What steps need from object storage."""

    def put_bytes(self, key: str, data: bytes, *, overwrite: bool = False) -> str:
        """Store ``data`` under ``key``; return its sha256."""
        ...

    def put_file(self, key: str, path: Path, *, overwrite: bool = False) -> str:
        """Store a local file (multipart when large); return its sha256."""
        ...

    def get_bytes(self, key: str, *, expected_sha256: str | None = None) -> bytes:
        """Read an object; a missing key or a hash mismatch is a DataError naming the key."""
        ...

    def get_file(self, key: str, path: Path, *, expected_sha256: str | None = None) -> None:
        """Download an object to ``path``."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """Size and stored hash of an object, or None when it does not exist."""
        ...

    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        ...

    def list(self, prefix: str) -> list[str]:
        """All keys under ``prefix``, sorted."""
        ...

    def publish(
        self, objects: Mapping[str, bytes], *, marker_key: str, marker: bytes, overwrite: Collection[str] = ()
    ) -> dict[str, str]:
        """Write ``objects``, verify them, then write ``marker`` last; return each key's sha256.

        Keys in ``overwrite`` (objects or the marker) may replace what is stored; the rest are immutable.
        """
        ...


class ImmutableStore(ABC):
    """The shared semantics (immutability, verification, publish-then-mark) over a few primitives."""

    # ---- primitives an implementation provides -------------------------------------------------
    # With ``if_absent`` the write must be atomic against other writers: it stores nothing and raises
    # KeyTakenError when the key exists at the moment the server commits it.
    @abstractmethod
    def _write(self, key: str, data: bytes, sha256: str, *, if_absent: bool) -> None: ...

    @abstractmethod
    def _write_file(self, key: str, path: Path, sha256: str, *, if_absent: bool) -> None: ...

    @abstractmethod
    def _read(self, key: str) -> bytes: ...

    @abstractmethod
    def _read_to_file(self, key: str, path: Path) -> None: ...

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Size and stored hash of an object, or None when it does not exist; other failures raise."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """All keys under ``prefix``, sorted."""

    # ---- semantics -------------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""
        return self.head(key) is not None

    def _may_write(self, key: str, sha256: str, *, overwrite: bool) -> bool:
        """True when the write is needed; raise when it would replace different content."""
        if overwrite:
            return True
        info = self.head(key)
        if info is None:
            return True
        if info.sha256 == sha256:
            return False
        raise ContentConflictError(
            f"object {key!r} already exists with different content "
            f"(stored sha256 {info.sha256}, new {sha256}); published objects are immutable"
        )

    def _put(self, key: str, sha256: str, write: Callable[[bool], None], *, overwrite: bool) -> None:
        """Write unless the same content is there; an immutable key is written with If-None-Match.

        The HEAD before is only a shortcut; the conditional write decides. A 412 is either another
        writer that published first or our own earlier attempt whose answer was lost: the content
        tells which, so the same bytes are a no-op and different bytes a DataError naming the key.
        """
        if not self._may_write(key, sha256, overwrite=overwrite):
            return
        if overwrite:
            write(False)
            return
        try:
            write(True)
        except KeyTakenError as error:
            info = self.head(key)
            if info is None:
                raise TransientError(f"object {key!r}: a conditional write found it taken, now it is gone") from error
            if info.sha256 != sha256:
                raise ContentConflictError(
                    f"object {key!r} was published by a concurrent writer with different content (stored "
                    f"sha256 {info.sha256}, ours {sha256}); published objects are immutable, ours was not written"
                ) from error

    def put_bytes(self, key: str, data: bytes, *, overwrite: bool = False) -> str:
        """Store ``data`` under ``key``; return its sha256."""
        digest = sha256_bytes(data)
        self._put(key, digest, lambda absent: self._write(key, data, digest, if_absent=absent), overwrite=overwrite)
        return digest

    def put_file(self, key: str, path: Path, *, overwrite: bool = False) -> str:
        """Store a local file (multipart when large); return its sha256."""
        digest = sha256_file(path)
        self._put(
            key, digest, lambda absent: self._write_file(key, path, digest, if_absent=absent), overwrite=overwrite
        )
        return digest

    def get_bytes(self, key: str, *, expected_sha256: str | None = None) -> bytes:
        """Read an object; a missing key or a hash mismatch is a DataError naming the key."""
        data = self._read(key)
        if expected_sha256 is not None:
            _verify(key, sha256_bytes(data), expected_sha256)
        return data

    def get_file(self, key: str, path: Path, *, expected_sha256: str | None = None) -> None:
        """Download an object to ``path``, verified when ``expected_sha256`` is given."""
        self._read_to_file(key, path)
        if expected_sha256 is not None:
            try:
                _verify(key, sha256_file(path), expected_sha256)
            except DataError:
                path.unlink(missing_ok=True)
                raise

    def publish(
        self, objects: Mapping[str, bytes], *, marker_key: str, marker: bytes, overwrite: Collection[str] = ()
    ) -> dict[str, str]:
        """Write ``objects``, verify each by a HEAD, then write ``marker`` last.

        ``overwrite`` exists for a result nothing trusts until its marker is written (a fleet batch:
        a library that is not bit-for-bit deterministic must still finish a batch that crashed before
        its marker) and for a marker that later attempts rewrite (a fleet batch's .pending).
        """
        if marker_key in objects:
            raise ConfigError(f"publish: marker {marker_key!r} must not also be one of the objects")
        hashes = {key: self.put_bytes(key, data, overwrite=key in overwrite) for key, data in objects.items()}
        for key, digest in hashes.items():
            info = self.head(key)
            if info is None or info.sha256 != digest or info.size != len(objects[key]):
                raise TransientError(f"publish: object {key!r} did not verify after writing; marker not written")
        self.put_bytes(marker_key, marker, overwrite=marker_key in overwrite)
        return hashes


def _verify(key: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise DataError(f"object {key!r}: content sha256 {actual} does not match the expected {expected}")


def _map_errors(what: str, call: Callable[[], T]) -> T:
    """Run one S3 call, mapping the SDK's errors to ours in this single place."""
    try:
        return call()
    except S3Error as error:
        if error.code in {"NoSuchKey", "NotFound"}:
            raise ObjectNotFoundError(f"{what}: no such object") from error
        if error.code == "PreconditionFailed":
            raise KeyTakenError(f"{what}: the key exists already (a conditional write lost)") from error
        if error.code == "NoSuchBucket":
            raise ConfigError(f"{what}: bucket does not exist ({error.message})") from error
        if error.code in {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            raise ConfigError(f"{what}: S3 refused the credentials ({error.code})") from error
        if error.code in {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"}:
            raise TransientError(f"{what}: S3 is busy ({error.code})") from error
        raise DataError(f"{what}: S3 error {error.code}: {error.message}") from error
    except ServerError as error:
        raise TransientError(f"{what}: S3 server error {error.status_code}") from error
    except (Urllib3Error, OSError, MinioException) as error:
        raise TransientError(f"{what}: S3 unreachable ({type(error).__name__}: {error})") from error


class S3ObjectStore(ImmutableStore):
    """ObjectStore on any S3-compatible server through the MinIO Python SDK."""

    def __init__(self, client: Minio, bucket: str, *, attempts: int = 4) -> None:
        self._client = client
        self._bucket = bucket
        self._attempts = attempts

    @classmethod
    def from_settings(cls, settings: S3Settings) -> S3ObjectStore:
        """Build the client with short timeouts: blips are retried here, outages by Argo."""
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3.0, read=60.0),
            retries=urllib3.Retry(total=0, connect=0, read=0, redirect=2),
            maxsize=16,
        )
        client = Minio(
            settings.endpoint,
            access_key=settings.access_key.get_secret_value(),
            secret_key=settings.secret_key.get_secret_value(),
            secure=settings.secure,
            region=settings.region,
            http_client=http,
        )
        return cls(client, settings.bucket)

    @property
    def bucket(self) -> str:
        """The bucket every key lives in."""
        return self._bucket

    def _call(self, what: str, call: Callable[[], T]) -> T:
        return retry_transient(lambda: _map_errors(what, call), what=what, attempts=self._attempts)

    def ensure_bucket(self) -> None:
        """Create the bucket when missing (setup and tests; steps never create buckets)."""

        def create() -> None:
            if not self._client.bucket_exists(self._bucket):
                self._client.make_bucket(self._bucket)

        self._call(f"bucket {self._bucket!r}", create)

    def _write(self, key: str, data: bytes, sha256: str, *, if_absent: bool) -> None:
        what = f"put s3://{self._bucket}/{key}"
        if if_absent:
            self._call(what, lambda: self._conditional_upload(key, io.BytesIO(data), len(data), sha256))
            return
        self._call(
            what,
            lambda: self._client.put_object(
                self._bucket,
                key,
                io.BytesIO(data),
                len(data),
                metadata={SHA256_META: sha256},
                part_size=MULTIPART_PART_SIZE,
            ),
        )

    def _write_file(self, key: str, path: Path, sha256: str, *, if_absent: bool) -> None:
        what = f"put s3://{self._bucket}/{key}"
        if if_absent:

            def upload() -> None:
                with path.open("rb") as stream:
                    self._conditional_upload(key, stream, path.stat().st_size, sha256)

            self._call(what, upload)
            return
        self._call(
            what,
            lambda: self._client.fput_object(
                self._bucket,
                key,
                str(path),
                metadata={SHA256_META: sha256},
                part_size=MULTIPART_PART_SIZE,
            ),
        )

    def _conditional_upload(self, key: str, stream: BinaryIO, length: int, sha256: str) -> None:
        """PUT (or multipart upload) with ``If-None-Match: *``: the server refuses it when the key exists.

        The SDK's put_object sends unknown headers as user metadata, so this uses its lower-level
        calls (the SDK version is pinned; tests/integration/core/test_s3_store.py proves both paths
        against versitygw, which checks the condition under its per-key publish lock).
        """
        headers: dict[str, str | list[str] | tuple[str]] = {
            "Content-Type": "application/octet-stream",
            f"x-amz-meta-{SHA256_META}": sha256,
        }
        client = self._client  # private calls below: see the docstring
        if length <= MULTIPART_PART_SIZE:
            client._put_object(self._bucket, key, stream.read(), headers={**headers, "If-None-Match": "*"})
            return
        upload_id = client._create_multipart_upload(self._bucket, key, headers)
        try:
            parts = ET.Element("CompleteMultipartUpload")
            number = 0
            while chunk := stream.read(MULTIPART_PART_SIZE):
                number += 1
                etag = client._upload_part(self._bucket, key, chunk, None, upload_id, number)
                part = ET.SubElement(parts, "Part")
                ET.SubElement(part, "PartNumber").text = str(number)
                ET.SubElement(part, "ETag").text = f'"{etag}"'
            body = ET.tostring(parts)
            client._execute(
                "POST",
                self._bucket,
                key,
                body=body,
                headers={
                    "Content-Type": "application/xml",
                    # S3 requires Content-MD5 on this call; it is an integrity check, not security.
                    "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(),  # noqa: S324
                    "If-None-Match": "*",
                },
                query_params={"uploadId": upload_id},
            )
        except BaseException:
            with contextlib.suppress(Exception):  # the upload's own error is the one worth reporting
                client._abort_multipart_upload(self._bucket, key, upload_id)
            raise

    def _read(self, key: str) -> bytes:
        def read() -> bytes:
            response = self._client.get_object(self._bucket, key)
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

        return self._call(f"get s3://{self._bucket}/{key}", read)

    def _read_to_file(self, key: str, path: Path) -> None:
        self._call(f"get s3://{self._bucket}/{key}", lambda: self._client.fget_object(self._bucket, key, str(path)))

    def head(self, key: str) -> ObjectInfo | None:
        """Size and stored hash of an object, or None when it does not exist; other failures raise.

        Only a 404 means "absent": refused credentials, a missing bucket or an unknown S3 error must
        not read as "absent", or an existence check before a write would fail open.
        """
        try:
            stat = self._call(f"head s3://{self._bucket}/{key}", lambda: self._client.stat_object(self._bucket, key))
        except ObjectNotFoundError:
            return None
        metadata = {name.lower(): value for name, value in (stat.metadata or {}).items()}
        sha = metadata.get(f"x-amz-meta-{SHA256_META}")
        return ObjectInfo(key=key, size=int(stat.size or 0), sha256=sha)

    def list(self, prefix: str) -> list[str]:
        """All keys under ``prefix``, sorted."""

        def collect() -> list[str]:
            found: Iterator[object] = self._client.list_objects(self._bucket, prefix=prefix, recursive=True)
            return sorted(str(getattr(item, "object_name", "")) for item in found)

        return self._call(f"list s3://{self._bucket}/{prefix}", collect)


def put_record(store: ObjectStore, key: str, record: StoredRecord, *, overwrite: bool = False) -> str:
    """Store ``record`` under ``key`` (immutable unless ``overwrite``); return the sha256 of what is stored.

    An immutable key that holds the same record in an older encoding (fleet records, before they were
    canonical, had unsorted keys indented by 1) counts as written: a retried step does nothing.
    """
    try:
        return store.put_bytes(key, record.to_json_bytes(), overwrite=overwrite)
    except ContentConflictError:
        stored = store.get_bytes(key)
        if not _holds(stored, record, key):
            raise
        return sha256_bytes(stored)


def stored_encoding(store: ObjectStore, key: str, record: StoredRecord) -> bytes:
    """The bytes to write ``record`` under the immutable ``key``: an older encoding it holds, or canonical ones.

    Bytes ``key`` holds that parse to the same record are returned, so writing them again is a no-op.
    For writes that go through ``ObjectStore.publish``, where :func:`put_record` cannot be used.
    """
    data = record.to_json_bytes()
    info = store.head(key)
    if info is None or info.sha256 == sha256_bytes(data):
        return data
    stored = store.get_bytes(key)
    return stored if _holds(stored, record, key) else data


def _holds(stored: bytes, record: StoredRecord, key: str) -> bool:
    """Whether ``stored`` parses to ``record`` (False for bytes that are no such record at all)."""
    try:
        return type(record).from_json_bytes(stored, name=key) == record
    except DataError:
        return False
