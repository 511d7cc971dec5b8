"""ShardClient against an in-process fake shard (httpx.MockTransport): paging, retries, error mapping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, date, datetime

import httpx
import pytest

from eval_runner.contracts import BatteryParameters, shard_of
from eval_runner.errors import ConfigError, DataError, TransientError
from eval_runner.sources.shards import RetryPolicy, ShardClient, StaleETagError

Handler = Callable[[httpx.Request], httpx.Response]


def _client(handlers: list[Handler], sleeps: list[float], **kwargs: object) -> ShardClient:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    clients = [
        httpx.AsyncClient(base_url=f"http://shard{i}", transport=httpx.MockTransport(handler))
        for i, handler in enumerate(handlers)
    ]
    policy = RetryPolicy(attempts=3, first_delay=0.1)
    return ShardClient(clients, policy=policy, sleep=sleep, **kwargs)  # type: ignore[arg-type]


def _event(device: str, when: str) -> dict[str, object]:
    return {"device_id": device, "effective_at": when, "component": "firmware", "version": "2.1"}


def test_paging_follows_tokens_and_sends_the_query() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.url.params.get("page_token") is None:
            return httpx.Response(200, json={"items": [_event("a", "2026-03-01T00:00:00Z")], "next_page_token": "p2"})
        return httpx.Response(200, json={"items": [_event("b", "2026-03-02T00:00:00Z")], "next_page_token": None})

    async def run() -> list[str]:
        async with _client([handler], []) as shards:
            events = await shards.version_history(0, date(2026, 5, 1), date(2026, 4, 1))
        return [event.device_id for event in events]

    assert asyncio.run(run()) == ["a", "b"]
    assert seen[0].params["to"] == "2026-05-01" and seen[0].params["from"] == "2026-04-01"
    assert seen[1].params["page_token"] == "p2"


def test_battery_parameters_of_a_shard_are_listed_page_by_page() -> None:
    seen: list[httpx.URL] = []

    def params(device: str) -> dict[str, object]:
        return {
            "device_id": device,
            "chemistry": "alkaline",
            "nominal_capacity_mah": 2600.0,
            "cutoff_mv": 2200,
            "installed_at": "2025-10-01T00:00:00Z",
        }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.url.params.get("page_token") is None:
            return httpx.Response(200, json={"items": [params("a"), params("b")], "next_page_token": "2"})
        return httpx.Response(200, json={"items": [params("c")], "next_page_token": None})

    async def run() -> list[str]:
        async with _client([handler], []) as shards:
            return [p.device_id for p in await shards.battery_parameters(0)]

    assert asyncio.run(run()) == ["a", "b", "c"]
    assert [url.path for url in seen] == ["/v1/battery-parameters"] * 2
    assert seen[0].params["limit"] == "1000" and seen[1].params["page_token"] == "2"


def test_429_honours_retry_after_and_5xx_backs_off() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "slow down"}),
            httpx.Response(503, json={"error": "busy"}),
            httpx.Response(200, json={"items": [], "next_page_token": None}),
        ]
    )
    sleeps: list[float] = []

    async def run() -> int:
        async with _client([lambda _: next(answers)], sleeps) as shards:
            return len(await shards.devices(0))

    assert asyncio.run(run()) == 0
    assert sleeps[0] == 3.0
    assert 0.1 <= sleeps[1] <= 0.2  # the backoff doubled after the first failure


def test_timeouts_give_up_as_transient_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    sleeps: list[float] = []

    async def run() -> None:
        async with _client([handler], sleeps) as shards:
            await shards.devices(0)

    with pytest.raises(TransientError, match=r"shard 0 GET /v1/devices: timed out .* after 3 attempts"):
        asyncio.run(run())
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [(404, DataError, "not found"), (401, ConfigError, "credentials"), (400, DataError, "answered 400")],
)
def test_client_errors_are_not_retried(status: int, error: type[Exception], message: str) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, json={"error": "nope", "detail": "device x is on shard 3"})

    async def run() -> None:
        async with _client([handler], []) as shards:
            await shards.devices(0)

    with pytest.raises(error, match=message):
        asyncio.run(run())
    assert calls == [1]


def test_malformed_items_are_data_errors_naming_the_shard() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [{"device_id": "a"}], "next_page_token": None})

    async def run() -> None:
        async with _client([handler], []) as shards:
            await shards.devices(0)

    with pytest.raises(DataError, match=r"shard 0 /v1/devices: item does not match DeviceRecord"):
        asyncio.run(run())


def _params(device: str) -> BatteryParameters:
    return BatteryParameters(
        device_id=device,
        chemistry="alkaline",
        nominal_capacity_mah=2600.0,
        cutoff_mv=2200,
        installed_at=datetime(2026, 1, 5, tzinfo=UTC),
    )


def test_battery_parameters_route_to_the_owning_shard_with_etag_headers() -> None:
    device = "dev-0001"
    owner = shard_of(device)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = _params(device).model_dump(mode="json")
        if request.method == "PUT":
            body = json.loads(request.content)
            return httpx.Response(200, json=body, headers={"ETag": '"v2"'})
        return httpx.Response(200, json=body, headers={"ETag": '"v1"'})

    def wrong_shard(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"request went to the wrong shard: {request.url}")

    handlers: list[Handler] = [handler if i == owner else wrong_shard for i in range(5)]

    async def run() -> tuple[str, str, float]:
        async with _client(handlers, []) as shards:
            got = await shards.get_battery_parameters(device)
            new = got.parameters.model_copy(update={"nominal_capacity_mah": 2400.0})
            put = await shards.put_battery_parameters(new, if_match=got.etag, idempotency_key="run1/dev-0001")
        return got.etag, put.etag, put.parameters.nominal_capacity_mah

    assert asyncio.run(run()) == ('"v1"', '"v2"', 2400.0)
    assert seen[1].headers["If-Match"] == '"v1"'
    assert seen[1].headers["Idempotency-Key"] == "run1/dev-0001"


def test_a_shard_without_the_parameters_list_is_read_one_device_at_a_time() -> None:
    """A shard that predates GET /v1/battery-parameters (404) still gives every device's parameters."""
    devices = [d for d in (f"dev-{i:04d}" for i in range(40)) if shard_of(d) == 0][:3]
    seen: list[str] = []

    def old_shard(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/v1/battery-parameters":
            return httpx.Response(404, json={"error": "not found", "detail": "no such route"})
        if request.url.path == "/v1/devices":
            items = [{"device_id": d, "site_id": "site-1", "installed_at": "2025-10-01T00:00:00Z"} for d in devices]
            return httpx.Response(200, json={"items": items, "next_page_token": None})
        device = request.url.path.split("/")[3]
        return httpx.Response(200, json=_params(device).model_dump(mode="json"), headers={"ETag": '"v1"'})

    async def run(device_ids: list[str] | None) -> list[str]:
        async with _client([old_shard], []) as shards:
            return sorted(p.device_id for p in await shards.battery_parameters(0, device_ids))

    assert asyncio.run(run(None)) == sorted(devices)
    assert seen[:2] == ["/v1/battery-parameters", "/v1/devices"]
    assert sorted(seen[2:]) == sorted(f"/v1/devices/{d}/battery-parameters" for d in devices)
    seen.clear()
    assert asyncio.run(run(devices[:1])) == devices[:1]
    assert seen == ["/v1/battery-parameters", f"/v1/devices/{devices[0]}/battery-parameters"]


def test_stale_etag_is_its_own_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(412, json={"error": "precondition failed"})

    async def run() -> None:
        async with _client([handler] * 5, []) as shards:
            await shards.put_battery_parameters(_params("d"), if_match='"old"', idempotency_key="k")

    with pytest.raises(StaleETagError, match="If-Match is stale"):
        asyncio.run(run())


def test_concurrency_per_shard_is_bounded() -> None:
    active = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        return httpx.Response(200, json={"items": [], "next_page_token": None})

    async def run() -> None:
        async with _client([handler], [], max_concurrency_per_shard=2) as shards:  # type: ignore[list-item]
            await asyncio.gather(*(shards.devices(0) for _ in range(8)))

    asyncio.run(run())
    assert peak == 2


def test_a_truncated_body_is_retried() -> None:
    answers = iter(
        [
            httpx.Response(200, content=b'{"items": [', headers={"Content-Type": "application/json"}),
            httpx.Response(200, json={"items": [], "next_page_token": None}),
        ]
    )
    sleeps: list[float] = []

    async def run() -> int:
        async with _client([lambda _: next(answers)], sleeps) as shards:
            return len(await shards.devices(0))

    assert asyncio.run(run()) == 0
    assert len(sleeps) == 1


def test_a_repeated_page_token_is_a_data_error_not_an_endless_loop() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        token = "p2" if request.url.params.get("page_token") is None else "p3" if len(calls) == 2 else "p2"
        return httpx.Response(200, json={"items": [_event("a", "2026-03-01T00:00:00Z")], "next_page_token": token})

    async def run() -> None:
        async with _client([handler], []) as shards:
            await shards.version_history(0, date(2026, 5, 1))

    with pytest.raises(DataError, match=r"next_page_token 'p2' was returned before"):
        asyncio.run(run())
    assert len(calls) == 3


def test_a_body_past_the_size_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("eval_runner.sources.shards.MAX_RESPONSE_BYTES", 1000)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [_event("a", "x" * 2000)], "next_page_token": None})

    async def run() -> None:
        async with _client([handler], []) as shards:
            await shards.devices(0)

    with pytest.raises(DataError, match=r"over the 1000 cap|passed the 1000-byte cap"):
        asyncio.run(run())


def test_an_undecodable_body_is_retried_then_transient() -> None:
    # A gzip body cut off in transit: httpx raises DecodingError, which once aborted a whole apply batch.
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip"))

    sleeps: list[float] = []

    async def run() -> None:
        async with _client([handler], sleeps) as shards:
            await shards.devices(0)

    with pytest.raises(
        TransientError, match=r"undecodable body \(.*incorrect header check\); gave up after 3 attempts"
    ):
        asyncio.run(run())
    assert len(sleeps) == 2
