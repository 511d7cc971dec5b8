"""The simulator against the spec files in contracts/: its DDL, shard rule, bodies and frames, never eval_runner's."""

from __future__ import annotations

import asyncio
import io
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import polars as pl
import pyarrow.parquet as pq
import pytest
from fieldsim import Fleet
from fieldsim.contracts import (
    ANALYTICS_DDL,
    DATASET_SCHEMA,
    LIBRARY_SAMPLE_COLUMNS,
    N_SHARDS,
    SERIES_SCHEMA,
    battery_parameters,
    shard_of,
)
from fieldsim.library_input import month_dataset, snapshot_input
from fieldsim.parquet import frame_to_parquet
from fieldsim.shards import Faults, ShardState, build_app, shard_states

from tests import contract_specs as spec


def test_ddl_equals_the_sql_file() -> None:
    assert spec.normalise_sql(ANALYTICS_DDL) == spec.analytics_ddl()


def test_shard_ownership_follows_the_spec() -> None:
    rule = spec.ownership()
    assert (rule["n_shards"], rule["hash"], rule["encoding"]) == (N_SHARDS, "crc32", "utf-8")
    for example in rule["examples"]:
        assert zlib.crc32(example["device_id"].encode("utf-8")) == example["crc32"]
        assert shard_of(example["device_id"]) == example["shard"], example


@pytest.mark.parametrize(("name", "schema"), [("samples", DATASET_SCHEMA), ("series", SERIES_SCHEMA)])
def test_polars_schemas_equal_the_arrow_file(name: str, schema: dict[str, pl.DataType]) -> None:
    assert list(spec.polars_schema(name).items()) == list(schema.items())


def test_library_sample_columns_equal_the_arrow_file() -> None:
    assert tuple(spec.polars_schema("library_samples")) == LIBRARY_SAMPLE_COLUMNS


def _assert_matches(frame: pl.DataFrame, name: str) -> None:
    assert dict(frame.schema) == spec.polars_schema(name)
    nulls = {column: frame[column].null_count() for column in spec.non_nullable(name)}
    assert {column: n for column, n in nulls.items() if n} == {}, f"nulls in non-nullable columns of {name}"
    written = pq.read_schema(io.BytesIO(frame_to_parquet(frame)))
    assert spec.same_arrow_types(written, spec.arrow_schema(name)), written


def test_oracle_frames_and_their_parquet_match_the_arrow_file(fieldsim_fleet: Fleet) -> None:
    dataset, series = month_dataset(fieldsim_fleet, "2026-04")
    assert dataset.height > 0
    assert series.height > 0
    _assert_matches(dataset, "samples")
    _assert_matches(series, "series")
    samples, window = snapshot_input(fieldsim_fleet, datetime(2026, 5, 20, tzinfo=UTC), window_days=7)
    _assert_matches(samples, "library_samples")
    _assert_matches(window, "series")


def test_parquet_bytes_are_deterministic_and_carry_no_metadata(fieldsim_fleet: Fleet) -> None:
    dataset, _ = month_dataset(fieldsim_fleet, "2026-03")
    data = frame_to_parquet(dataset)
    assert data == frame_to_parquet(dataset.clone())
    assert pq.read_schema(io.BytesIO(data)).metadata is None
    assert pq.ParquetFile(io.BytesIO(data)).metadata.row_group(0).column(0).compression == "ZSTD"


# ---- the shard server's bodies ------------------------------------------------------------------------
class ShardClient:
    """Synchronous requests to a shard app in process (starlette's ShardClient warns on this anyio)."""

    def __init__(self, state: ShardState) -> None:
        self._loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=build_app(state))
        self._client = httpx.AsyncClient(transport=transport, base_url="http://shard")

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        """GET ``path``."""
        return self._loop.run_until_complete(self._client.get(path, **kwargs))

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        """PUT ``path``."""
        return self._loop.run_until_complete(self._client.put(path, **kwargs))

    def close(self) -> None:
        """Close the client and its event loop."""
        self._loop.run_until_complete(self._client.aclose())
        self._loop.close()


@pytest.fixture(scope="module")
def shard(fieldsim_fleet: Fleet) -> Iterator[tuple[ShardState, ShardClient]]:
    """Shard 0 of the fleet, in process."""
    state = shard_states(fieldsim_fleet)[0]
    client = ShardClient(state)
    try:
        yield state, client
    finally:
        client.close()


def _assert_body(name: str, body: Any) -> None:
    errors = [error.message for error in spec.validator(name).iter_errors(body)]
    assert errors == [], f"{name}: {body!r}"


def test_health_matches_its_schema(shard: tuple[ShardState, ShardClient]) -> None:
    _assert_body("health", shard[1].get("/healthz").json())


@pytest.mark.parametrize(("path", "name"), sorted(spec.LIST_ENDPOINTS.items()))
def test_every_page_and_item_matches_its_schema(shard: tuple[ShardState, ShardClient], path: str, name: str) -> None:
    state, client = shard
    query = {"from": "2026-01-01", "to": "2026-07-01", "limit": 7}
    items, token = 0, None
    while True:
        response = client.get(path, params={**query, **({"page_token": token} if token else {})})
        assert response.status_code == 200, response.text
        page = response.json()
        _assert_body("page", page)
        for item in page["items"]:
            _assert_body(name, item)
            assert shard_of(item["device_id"]) == state.shard
        items += len(page["items"])
        token = page["next_page_token"]
        if token is None:
            break
    assert items > 7  # more than one page was read


def _device(state: ShardState) -> str:
    return next(iter(state.parameters))


def _put(client: ShardClient, device: str, body: object, key: str) -> httpx.Response:
    etag = client.get(f"/v1/devices/{device}/battery-parameters").headers["ETag"]
    return client.put(
        f"/v1/devices/{device}/battery-parameters", json=body, headers={"If-Match": etag, "Idempotency-Key": key}
    )


def test_get_and_put_bodies_match_the_schema(shard: tuple[ShardState, ShardClient]) -> None:
    state, client = shard
    device = _device(state)
    _assert_body("battery-parameters", client.get(f"/v1/devices/{device}/battery-parameters").json())
    for i, good in enumerate(spec.GOOD_BODIES["battery-parameters"]):
        response = _put(client, device, {**good, "device_id": device}, f"good-{i}")
        assert response.status_code == 200, response.text
        _assert_body("battery-parameters", response.json())
        assert response.json()["installed_at"].endswith("Z")  # servers send UTC


def test_put_refuses_every_body_the_schema_refuses(shard: tuple[ShardState, ShardClient]) -> None:
    state, client = shard
    device = _device(state)
    bad = [
        {**body, "device_id": device} if isinstance(body.get("device_id"), str) else body
        for body in spec.bad_bodies("battery-parameters")
    ]
    for i, body in enumerate(bad):
        assert not spec.is_valid("battery-parameters", body), body
        response = _put(client, device, body, f"bad-{i}")
        assert response.status_code == 422, (body, response.text)
        _assert_body("error", response.json())


@pytest.mark.parametrize(
    "body", [*spec.GOOD_BODIES["battery-parameters"], *spec.bad_bodies("battery-parameters"), None, [], "x"]
)
def test_body_check_accepts_exactly_what_the_schema_accepts(body: object) -> None:
    try:
        stored = battery_parameters(body)
    except ValueError:
        stored = None
    assert (stored is not None) == spec.is_valid("battery-parameters", body)
    if stored is not None:
        _assert_body("battery-parameters", stored)


def test_error_bodies_match_their_schema(shard: tuple[ShardState, ShardClient]) -> None:
    state, client = shard
    device = _device(state)
    other = next(d for d in (f"dev-{i:06d}" for i in range(1000)) if shard_of(d) != state.shard)
    path = f"/v1/devices/{device}/battery-parameters"
    body = client.get(path).json()
    answers = {
        404: client.get(f"/v1/devices/{other}/battery-parameters"),
        400: client.get("/v1/devices", params={"limit": 0}),
        428: client.put(path, json=body, headers={"Idempotency-Key": "no-if-match"}),
        412: client.put(path, json=body, headers={"If-Match": '"stale"', "Idempotency-Key": "stale"}),
    }
    state.set_faults(Faults(error_rate=1.0, budget=1))
    answers[503] = client.get("/v1/devices")
    state.set_faults(Faults(throttle_rate=1.0, budget=1))
    answers[429] = client.get("/v1/devices")
    state.set_faults(Faults())
    for status, response in answers.items():
        assert response.status_code == status, response.text
        _assert_body("error", response.json())
    assert answers[429].headers["Retry-After"] == "1"
    assert answers[412].headers["ETag"] == client.get(path).headers["ETag"]
