"""Async client for the five API shards (docs/contracts.md): the only module that speaks their HTTP.

Each shard gets its own concurrency bound, so one slow shard cannot starve the others and we never
exceed what a shard tolerates. Timeouts, 5xx and 429 are retried here with backoff (429 honours
Retry-After); what still fails surfaces as TransientError (exit 75) so Argo retries the pod.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from eval_runner.contracts import BatteryParameters, CapacityTest, DeviceRecord, Page, VersionEvent, shard_of
from eval_runner.errors import ConfigError, DataError, TransientError
from eval_runner.settings import ShardSettings

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

PAGE_LIMIT = 1000
# A shard's answer is a page of at most PAGE_LIMIT records or one device's parameters: a few hundred
# KiB. A body past this cap is a broken or hostile server, not data to hold in memory.
MAX_RESPONSE_BYTES = 16 * 1024 * 1024
BATTERY_PARAMETERS_LIST = "/v1/battery-parameters"
MAX_PAGES = 10_000  # 10 million records per listing; past that the shard is paging in circles
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REENCODED = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class NotFoundError(DataError):
    """404: the device (or, on a list path, the endpoint itself) is not on the shard."""


class StaleETagError(DataError):
    """PUT refused with 412: the parameters changed since they were read; re-read, re-diff, retry."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is retried inside the pod."""

    attempts: int = 5
    first_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 60.0  # a shard asking for longer is treated as down: Argo retries later


@dataclass(frozen=True)
class VersionedParameters:
    """Battery parameters with the ETag a PUT must send back as If-Match."""

    parameters: BatteryParameters
    etag: str


class ShardClient:
    """Typed calls on the shards; use as ``async with ShardClient.from_settings(s) as shards: ...``."""

    def __init__(
        self,
        clients: Sequence[httpx.AsyncClient],
        *,
        max_concurrency_per_shard: int = 8,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not clients:
            raise ConfigError("shard client: no shard URLs configured (FLEET_EVAL_SHARDS_URLS)")
        self._clients = tuple(clients)
        self._limits = tuple(asyncio.Semaphore(max_concurrency_per_shard) for _ in clients)
        self._policy = policy or RetryPolicy()
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: ShardSettings, *, policy: RetryPolicy | None = None) -> ShardClient:
        """One HTTP client per shard URL (index = shard id), with the token and timeout of ``settings``."""
        headers = {"Accept": "application/json"}
        if settings.token is not None:
            headers["Authorization"] = f"Bearer {settings.token.get_secret_value()}"
        limits = httpx.Limits(max_connections=settings.max_concurrency_per_shard)
        clients = [
            httpx.AsyncClient(base_url=url, headers=headers, timeout=settings.timeout_seconds, limits=limits)
            for url in settings.urls
        ]
        return cls(clients, max_concurrency_per_shard=settings.max_concurrency_per_shard, policy=policy)

    @property
    def n_shards(self) -> int:
        """How many shards are configured."""
        return len(self._clients)

    async def __aenter__(self) -> ShardClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every shard's connections."""
        await asyncio.gather(*(client.aclose() for client in self._clients))

    def shard_for(self, device_id: str) -> int:
        """Return the shard that owns ``device_id``."""
        return shard_of(device_id, self.n_shards)

    # ---- list endpoints ----------------------------------------------------------------------------
    async def devices(self, shard: int) -> list[DeviceRecord]:
        """Every device record of one shard."""
        return await self._paged(shard, "/v1/devices", {}, DeviceRecord)

    async def capacity_tests(self, shard: int, start: date, end: date) -> list[CapacityTest]:
        """Capacity tests of one shard with ``start <= tested_at < end``."""
        params = {"from": start.isoformat(), "to": end.isoformat()}
        return await self._paged(shard, "/v1/capacity-tests", params, CapacityTest)

    async def version_history(self, shard: int, end: date, start: date | None = None) -> list[VersionEvent]:
        """Version events of one shard effective before ``end`` (and at or after ``start`` when given)."""
        params = {"to": end.isoformat()}
        if start is not None:
            params["from"] = start.isoformat()
        return await self._paged(shard, "/v1/version-history", params, VersionEvent)

    async def battery_parameters(self, shard: int, device_ids: Sequence[str] | None = None) -> list[BatteryParameters]:
        """Current battery parameters of every device of one shard (no ETags: a PUT re-reads its device).

        One request per page of the list endpoint. A shard that predates it (404 on the list path) is
        read one device at a time, as before the endpoint existed: ``device_ids`` when the caller has
        them, else the shard's device listing. Slower by a request per device, never wrong.
        """
        try:
            return await self._paged(shard, BATTERY_PARAMETERS_LIST, {}, BatteryParameters)
        except NotFoundError:
            if device_ids is None:
                device_ids = [record.device_id for record in await self.devices(shard)]
            log.warning(
                "shard %d has no %s (404): reading the parameters of its %d devices one request each",
                shard,
                BATTERY_PARAMETERS_LIST,
                len(device_ids),
            )
            got = await asyncio.gather(*(self.get_battery_parameters(device) for device in device_ids))
            return [versioned.parameters for versioned in got]

    # ---- battery parameters of one device -----------------------------------------------------------
    async def get_battery_parameters(self, device_id: str) -> VersionedParameters:
        """Read the current battery parameters of a device and their ETag."""
        shard = self.shard_for(device_id)
        path = f"/v1/devices/{device_id}/battery-parameters"
        response = await self._request(shard, "GET", path)
        return self._versioned(shard, path, response)

    async def put_battery_parameters(
        self, parameters: BatteryParameters, *, if_match: str, idempotency_key: str
    ) -> VersionedParameters:
        """Replace a device's battery parameters; safe to retry because the key makes the PUT idempotent.

        A stale ``if_match`` raises StaleETagError (412); the shard answers a repeated
        ``idempotency_key`` with the first response, so retries here never write twice.
        """
        if not if_match or not idempotency_key:
            raise ConfigError(f"PUT battery-parameters of {parameters.device_id!r} needs If-Match and Idempotency-Key")
        shard = self.shard_for(parameters.device_id)
        path = f"/v1/devices/{parameters.device_id}/battery-parameters"
        response = await self._request(
            shard,
            "PUT",
            path,
            json=parameters.model_dump(mode="json"),
            headers={"If-Match": if_match, "Idempotency-Key": idempotency_key},
        )
        return self._versioned(shard, path, response)

    # ---- plumbing ---------------------------------------------------------------------------------
    def _versioned(self, shard: int, path: str, response: httpx.Response) -> VersionedParameters:
        etag = response.headers.get("ETag")
        if not etag:
            raise DataError(f"shard {shard} {path}: response has no ETag header")
        return VersionedParameters(self._parse(shard, path, response.json(), BatteryParameters), etag)

    @staticmethod
    def _parse(shard: int, path: str, item: Any, model: type[M]) -> M:
        try:
            return model.model_validate(item)
        except ValidationError as error:
            raise DataError(f"shard {shard} {path}: item does not match {model.__name__}: {error}") from error

    async def _paged(self, shard: int, path: str, params: dict[str, str], model: type[M]) -> list[M]:
        items: list[M] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            if len(seen) >= MAX_PAGES:
                raise DataError(f"shard {shard} {path}: more than {MAX_PAGES} pages; the shard pages without end")
            query: dict[str, str | int] = {**params, "limit": PAGE_LIMIT}
            if token is not None:
                query["page_token"] = token
            response = await self._request(shard, "GET", path, params=query)
            try:
                page = Page.model_validate(response.json())
            except (ValidationError, ValueError) as error:
                raise DataError(f"shard {shard} {path}: response is not a page: {error}") from error
            items.extend(self._parse(shard, path, item, model) for item in page.items)
            if not page.next_page_token:
                return items
            if page.next_page_token in seen:
                raise DataError(
                    f"shard {shard} {path}: next_page_token {page.next_page_token!r} was returned before; "
                    "the shard is paging in a loop"
                )
            seen.add(page.next_page_token)
            token = page.next_page_token

    async def _bounded(self, shard: int, what: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request and read at most MAX_RESPONSE_BYTES of its body (DataError beyond)."""
        client = self._clients[shard]
        response = await client.send(client.build_request(method, path, **kwargs), stream=True)
        try:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
                raise DataError(f"{what}: the response declares {declared} bytes, over the {MAX_RESPONSE_BYTES} cap")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise DataError(f"{what}: the response passed the {MAX_RESPONSE_BYTES}-byte cap")
        finally:
            await response.aclose()
        # The body is decoded already: the new response must neither decode it again nor trust its length.
        headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _REENCODED]
        return httpx.Response(response.status_code, headers=headers, content=bytes(body), request=response.request)

    async def _request(self, shard: int, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One call with retries; every httpx error and status is mapped to ours here."""
        if not 0 <= shard < self.n_shards:
            raise ConfigError(f"shard {shard} is not configured ({self.n_shards} shard URLs)")
        what = f"shard {shard} {method} {path}"
        policy = self._policy
        delay = policy.first_delay
        for attempt in range(1, policy.attempts + 1):
            wait: float | None = None
            try:
                async with self._limits[shard]:
                    response = await self._bounded(shard, what, method, path, **kwargs)
            except httpx.TimeoutException as error:
                problem = f"timed out ({type(error).__name__})"
            except httpx.TransportError as error:
                problem = f"unreachable ({type(error).__name__}: {error})"
            except httpx.DecodingError as error:  # a compressed body cut off or corrupted in transit
                problem = f"sent an undecodable body ({error})"
            else:
                if response.status_code < 400:
                    try:
                        response.json()  # a body cut off mid-way is a network blip, not bad data
                    except ValueError:
                        problem = "sent a truncated or malformed JSON body"
                    else:
                        return response
                elif response.status_code not in _RETRY_STATUSES:
                    _raise_for(what, response)
                else:
                    problem = f"answered {response.status_code}"
                if response.status_code == 429:
                    wait = _retry_after(response)
                    if wait is not None and wait > policy.max_retry_after:
                        raise TransientError(f"{what}: rate limited for {wait:.0f}s; try again later")
            if attempt == policy.attempts:
                raise TransientError(f"{what}: {problem}; gave up after {attempt} attempts")
            # Jitter keeps the concurrent requests of one shard from retrying in lockstep.
            pause = wait if wait is not None else delay * (0.5 + random.random() / 2)  # noqa: S311
            log.warning("%s: %s (attempt %d/%d); retry in %.2fs", what, problem, attempt, policy.attempts, pause)
            await self._sleep(pause)
            delay = min(delay * 2, policy.max_delay)
        raise AssertionError("unreachable: the loop returns or raises")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare for shards; fall back to our own backoff


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return "; ".join(str(body[k]) for k in ("error", "detail") if body.get(k))
    return str(body)[:200]


def _raise_for(what: str, response: httpx.Response) -> None:
    status = response.status_code
    detail = _detail(response)
    if status in {401, 403}:
        raise ConfigError(f"{what}: the shard refused our credentials ({status}: {detail})")
    if status == 412:
        raise StaleETagError(f"{what}: If-Match is stale, the parameters changed since read ({detail})")
    if status == 404:
        raise NotFoundError(f"{what}: not found ({detail})")
    raise DataError(f"{what}: answered {status} ({detail})")
