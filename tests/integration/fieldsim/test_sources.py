from __future__ import annotations

import httpx
import polars as pl
import psycopg
import pytest
from fieldsim.shards import Faults

from eval_runner.contracts import BatteryParameters, CapacityTest, DeviceRecord, VersionEvent, shard_of
from tests import contract_specs as spec
from tests.fixtures.fieldsim import FieldSources


def test_postgres_holds_every_row(fieldsim_sources: FieldSources) -> None:
    fleet = fieldsim_sources.fleet
    with psycopg.connect(fieldsim_sources.postgres_dsn) as conn:
        logs = conn.execute("SELECT count(*), count(battery_mv), min(ts), max(ts) FROM sensor_logs").fetchone()
        moves = conn.execute("SELECT count(*), sum(motor_ms) FROM valve_movements").fetchone()
    assert logs is not None and moves is not None
    assert logs[0] == fleet.sensor_logs.height
    assert logs[1] == fleet.sensor_logs["battery_mv"].count()
    assert logs[2] == fleet.sensor_logs["ts"].min()
    assert logs[3] == fleet.sensor_logs["ts"].max()
    assert moves[0] == fleet.valve_movements.height
    assert moves[1] == fleet.valve_movements["motor_ms"].sum()


def _all(client: httpx.Client, url: str, params: dict[str, str] | None = None) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    query = dict(params or {}, limit="7")
    while True:
        page = client.get(url, params=query)
        page.raise_for_status()
        body = page.json()
        # Over real HTTP too, each page and each item is what contracts/shard-api says.
        assert spec.is_valid("page", body), body
        name = spec.LIST_ENDPOINTS[httpx.URL(url).path]
        assert all(spec.is_valid(name, item) for item in body["items"]), body
        items.extend(body["items"])
        if body["next_page_token"] is None:
            return items
        query["page_token"] = body["next_page_token"]


def test_shards_serve_their_devices_and_records(fieldsim_sources: FieldSources) -> None:
    fleet = fieldsim_sources.fleet
    seen_devices, seen_tests, seen_events = [], [], []
    with httpx.Client() as client:
        for shard, url in enumerate(fieldsim_sources.shard_urls):
            assert client.get(f"{url}/healthz").json() == {"status": "ok", "shard": shard}
            devices = [DeviceRecord.model_validate(d) for d in _all(client, f"{url}/v1/devices")]
            assert all(shard_of(d.device_id) == shard for d in devices)
            seen_devices += devices
            seen_tests += [
                CapacityTest.model_validate(t)
                for t in _all(client, f"{url}/v1/capacity-tests", {"from": "2026-04-01", "to": "2026-05-01"})
            ]
            seen_events += [
                VersionEvent.model_validate(e)
                for e in _all(client, f"{url}/v1/version-history", {"to": "2026-04-01", "from": "2026-03-01"})
            ]
    assert sorted(d.device_id for d in seen_devices) == fleet.devices["device_id"].to_list()
    april = fleet.capacity_tests.filter(pl.col("tested_at").dt.strftime("%Y-%m") == "2026-04")
    assert sorted(t.test_id for t in seen_tests) == sorted(april["test_id"].to_list())
    march = fleet.version_events.filter(pl.col("effective_at").dt.strftime("%Y-%m") == "2026-03")
    assert len(seen_events) == march.height


def test_battery_parameters_put_with_etag_and_idempotency(fieldsim_sources: FieldSources) -> None:
    device = fieldsim_sources.fleet.devices["device_id"][0]
    shard = shard_of(device)
    url = f"{fieldsim_sources.shard_urls[shard]}/v1/devices/{device}/battery-parameters"
    with httpx.Client() as client:
        first = client.get(url)
        current = BatteryParameters.model_validate(first.json())
        etag = first.headers["ETag"]
        body = current.model_copy(update={"nominal_capacity_mah": 2450.0}).model_dump(mode="json")
        assert client.put(url, json=body, headers={"Idempotency-Key": "a"}).status_code == 428
        applied = client.put(url, json=body, headers={"If-Match": etag, "Idempotency-Key": "a"})
        assert applied.status_code == 200
        assert applied.headers["ETag"] != etag
        replay = client.put(url, json=body, headers={"If-Match": etag, "Idempotency-Key": "a"})
        assert (replay.status_code, replay.content, replay.headers["ETag"]) == (
            200, applied.content, applied.headers["ETag"],
        )  # fmt: skip
        stale = client.put(url, json=body, headers={"If-Match": etag, "Idempotency-Key": "b"})
        assert stale.status_code == 412
        assert client.get(url).json()["nominal_capacity_mah"] == 2450.0
        other = fieldsim_sources.shard_urls[(shard + 1) % 5]
        wrong = client.get(f"{other}/v1/devices/{device}/battery-parameters")
        assert wrong.status_code == 404
        assert f"shard {shard}" in wrong.json()["detail"]
    assert fieldsim_sources.puts_applied(shard) == 1


def test_each_fault_is_observable(fieldsim_sources: FieldSources) -> None:
    url = f"{fieldsim_sources.shard_urls[2]}/v1/devices"
    with httpx.Client(timeout=5.0) as client:
        fieldsim_sources.set_faults(2, Faults(error_rate=1.0))
        assert client.get(url).status_code == 503
        fieldsim_sources.set_faults(2, Faults(throttle_rate=1.0, retry_after_s=3))
        throttled = client.get(url)
        assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "3")
        assert throttled.json()["error"] == "too_many_requests"
        fieldsim_sources.set_faults(2, Faults(truncate_rate=1.0))
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(url)
        fieldsim_sources.set_faults(2, Faults(reset_rate=1.0))
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.get(url)
        fieldsim_sources.set_faults(2, Faults(latency_s=0.5))
        assert client.get(url).elapsed.total_seconds() >= 0.5
        fieldsim_sources.set_faults(2, Faults(error_rate=1.0, budget=2))
        assert [client.get(url).status_code for _ in range(3)] == [503, 503, 200]
        fieldsim_sources.clear_faults()
        assert client.get(url).status_code == 200
        # Other shards are unaffected by a shard's faults.
        fieldsim_sources.set_faults(2, Faults(error_rate=1.0))
        assert client.get(f"{fieldsim_sources.shard_urls[3]}/v1/devices").status_code == 200
    assert fieldsim_sources.requests(2) == 9


def test_faults_are_settable_over_http(fieldsim_sources: FieldSources) -> None:
    url = fieldsim_sources.shard_urls[0]
    with httpx.Client() as client:
        client.put(f"{url}/_sim/faults", json={"error_rate": 1.0}).raise_for_status()
        assert client.get(f"{url}/v1/devices").status_code == 503
        stats = client.get(f"{url}/_sim/stats").json()
    assert stats["faults"]["error_rate"] == 1.0
    assert stats["requests"] == 1
    assert "applied_by_device" not in stats


def test_stats_count_the_puts_applied_to_each_device(fieldsim_sources: FieldSources) -> None:
    url = fieldsim_sources.shard_urls[1]
    with httpx.Client() as client:
        device = client.get(f"{url}/v1/devices").json()["items"][0]["device_id"]
        path = f"{url}/v1/devices/{device}/battery-parameters"
        current = client.get(path)
        changed = {**current.json(), "cutoff_mv": current.json()["cutoff_mv"] + 1}
        headers = {"If-Match": current.headers["ETag"], "Idempotency-Key": "stats-test"}
        assert client.put(path, json=changed, headers=headers).status_code == 200
        stats = client.get(f"{url}/_sim/stats", params={"per_device": "true"}).json()
    assert stats["applied_by_device"] == {device: 1} and stats["puts_applied"] == 1
