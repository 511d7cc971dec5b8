"""The container registry's HTTP API (v2): whether an image exists, and its digest."""

from __future__ import annotations

import httpx

from eval_runner.errors import DataError, TransientError
from eval_runner.retry import retry_transient

_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def image_digest(client: httpx.Client, registry_url: str, repository: str, reference: str) -> str | None:
    """The digest of ``repository:reference`` (a tag or a digest); None when the registry lacks it."""
    url = f"{registry_url.rstrip('/')}/v2/{repository}/manifests/{reference}"

    def head() -> str | None:
        try:
            response = client.head(url, headers={"Accept": _ACCEPT})
        except httpx.HTTPError as error:
            raise TransientError(f"registry {url}: {error}") from error
        if response.status_code == 200:
            digest = str(response.headers.get("Docker-Content-Digest", ""))
            if not digest.startswith("sha256:"):
                raise DataError(f"registry {url}: answered 200 without a Docker-Content-Digest header")
            return digest
        if response.status_code == 404:
            return None
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"registry {url}: HTTP {response.status_code}")
        raise DataError(f"registry {url}: expected 200 or 404, got HTTP {response.status_code}")

    return retry_transient(head, what=f"HEAD {url}")


def image_exists(client: httpx.Client, registry_url: str, repository: str, reference: str) -> bool:
    """Whether ``repository:reference`` has a manifest in the registry."""
    return image_digest(client, registry_url, repository, reference) is not None
