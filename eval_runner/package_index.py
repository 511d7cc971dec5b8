"""The private package index (PEP 503 simple API): which battery-lib files it offers, and their metadata.

A release label resolves to one wheel on the index, named by its sha256 (the anchor's ``#sha256=``
fragment, which pypiserver and every mirror publish). The wheel itself is read once, verified against
that hash, so the resolution can say what the library requires before anything is built.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from html.parser import HTMLParser
from typing import Protocol
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from eval_runner.errors import ConfigError, DataError, TransientError
from eval_runner.hashing import sha256_bytes
from eval_runner.retry import retry_transient

# A wheel's METADATA is a few kB; a battery-lib wheel is tens of kB. Anything far larger is not ours.
MAX_WHEEL_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class IndexFile:
    """One file of a project page: its name, where to fetch it, its published sha256, whether yanked."""

    filename: str
    url: str
    sha256: str | None
    yanked: bool

    @property
    def is_wheel(self) -> bool:
        """Whether this is a wheel (the only kind of file runner images install)."""
        return self.filename.endswith(".whl")


class _Anchors(HTMLParser):
    """Collects the anchors of a PEP 503 project page."""

    def __init__(self, page_url: str) -> None:
        super().__init__()
        self._page_url = page_url
        self.files: list[IndexFile] = []
        self._href: str | None = None
        self._yanked = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""
            self._yanked = any(name == "data-yanked" for name, _ in attrs)
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag != "a" or self._href is None:
            return
        href, self._href = self._href, None
        url, _, fragment = href.partition("#")
        sha = fragment.removeprefix("sha256=") if fragment.startswith("sha256=") else None
        name = "".join(self._text).strip() or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
        self.files.append(IndexFile(name, urljoin(self._page_url, url), sha, self._yanked))


def files_in_page(html: str, page_url: str) -> list[IndexFile]:
    """Every file a PEP 503 project page offers."""
    parser = _Anchors(page_url)
    parser.feed(html)
    return parser.files


def version_of(filename: str, project: str) -> Version | None:
    """The version in a wheel or sdist file name of ``project``; None for other files."""
    prefix = canonicalize_name(project).replace("-", "_")
    for suffix in (".whl", ".tar.gz", ".zip"):
        if filename.endswith(suffix):
            stem = filename.removesuffix(suffix)
            break
    else:
        return None
    if not stem.replace("-", "_").lower().startswith(prefix + "_"):
        return None
    rest = stem[len(prefix) + 1 :]
    text = rest.split("-")[0] if suffix == ".whl" else rest
    try:
        return Version(text)
    except InvalidVersion:
        return None


def versions_offered(files: list[IndexFile], project: str) -> dict[Version, bool]:
    """Map every version among ``files`` to whether all its files are yanked."""
    found: dict[Version, bool] = {}
    for file in files:
        version = version_of(file.filename, project)
        if version is not None:
            found[version] = found.get(version, True) and file.yanked
    return found


class PackageIndex(Protocol):
    """What resolution needs from an index."""

    def files(self, project: str) -> list[IndexFile]:
        """Every file the index offers for ``project``."""
        ...

    def read(self, file: IndexFile) -> bytes:
        """The bytes of ``file``, verified against its published sha256."""
        ...


class SimpleIndex:
    """A PEP 503 simple index over HTTP (pypiserver in tests and in the cluster)."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self._client = client
        self.url = url.rstrip("/") + "/"

    def _get(self, url: str) -> httpx.Response:
        def fetch() -> httpx.Response:
            try:
                response = self._client.get(url, follow_redirects=True)
            except httpx.HTTPError as error:
                raise TransientError(f"package index {url}: {error}") from error
            if response.status_code >= 500 or response.status_code == 429:
                raise TransientError(f"package index {url}: HTTP {response.status_code}")
            return response

        return retry_transient(fetch, what=f"GET {url}")

    def files(self, project: str) -> list[IndexFile]:
        """Fetch the project page; network trouble is transient, a missing project a ConfigError."""
        page = f"{self.url}{canonicalize_name(project)}/"
        response = self._get(page)
        if response.status_code == 404:
            raise ConfigError(f"package index {self.url} has no project {project!r} (GET {page} was 404)")
        if response.status_code != 200:
            raise ConfigError(f"package index {page}: expected HTTP 200, got {response.status_code}")
        return files_in_page(response.text, str(response.url))

    def read(self, file: IndexFile) -> bytes:
        """Download ``file``; a hash mismatch or a missing published hash is a DataError naming it."""
        if file.sha256 is None:
            raise DataError(f"package index {self.url}: {file.filename} is listed without a sha256 (#sha256= fragment)")
        response = self._get(file.url)
        if response.status_code != 200:
            raise DataError(f"package index: GET {file.url} for {file.filename} answered HTTP {response.status_code}")
        data = response.content
        if len(data) > MAX_WHEEL_BYTES:
            raise DataError(f"package index: {file.filename} is {len(data)} bytes, over {MAX_WHEEL_BYTES}")
        if sha256_bytes(data) != file.sha256:
            raise DataError(
                f"package index: {file.filename} has sha256 {sha256_bytes(data)}, the index lists {file.sha256}"
            )
        return data


def wheel_requirements(wheel: bytes, filename: str) -> list[Requirement]:
    """The ``Requires-Dist`` of a wheel (from its ``*.dist-info/METADATA``)."""
    try:
        with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise DataError(f"wheel {filename}: expected one .dist-info/METADATA, found {names}")
            metadata = archive.read(names[0]).decode()
    except zipfile.BadZipFile as error:
        raise DataError(f"wheel {filename} is not a zip archive ({error})") from error
    headers = HeaderParser().parsestr(metadata)
    try:
        return [Requirement(value) for value in headers.get_all("Requires-Dist") or []]
    except InvalidRequirement as error:
        raise DataError(f"wheel {filename}: a Requires-Dist line does not parse ({error})") from error
