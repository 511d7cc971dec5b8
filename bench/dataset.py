"""Benchmark of `dataset build`: one month of N devices (hourly series), timed per phase.

Sources are real: PostgreSQL, the five simulated shards and an S3 server. Prints figures; it is not
a timed test.

Run: .venv/bin/python -m bench.dataset [--devices 1000 10000]  (issue 16's goal: 10,000 devices in at most 60 s)
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from fieldsim import SimConfig, simulate
from fieldsim.postgres import load_postgres
from fieldsim.serve import start_in_thread
from fieldsim.shards import shard_states

from eval_runner.dataset.build import READ_AHEAD, build_month, publish
from eval_runner.keys import Month
from eval_runner.settings import PostgresSettings, ShardSettings
from eval_runner.sources.analytics import PostgresAnalytics
from eval_runner.sources.extract import MemoryCheckpoint, ShardExtract, fetch_month
from eval_runner.sources.shards import ShardClient
from eval_runner.storage import S3ObjectStore
from tests.services.postgres import start_postgres
from tests.services.s3 import start_s3

MONTH = Month(2026, 4)


async def _fetch(settings: ShardSettings) -> list[ShardExtract]:
    async with ShardClient.from_settings(settings) as client:
        return await fetch_month(client, MONTH, MemoryCheckpoint())


def bench(devices: int, pg_dsn: str, store: S3ObjectStore) -> dict[str, float]:
    """Simulate, load, then time one build of MONTH for ``devices`` devices."""
    started = time.perf_counter()
    fleet = simulate(SimConfig.for_months(seed=7, devices=devices, start=str(MONTH), months=1))
    load_postgres(fleet, pg_dsn)
    running = start_in_thread(shard_states(fleet))
    setup = time.perf_counter() - started
    try:
        shards = ShardSettings(urls=running.urls, max_concurrency_per_shard=8)
        t0 = time.perf_counter()
        extracts = asyncio.run(_fetch(shards))
        fetch = time.perf_counter() - t0
        with PostgresAnalytics.connect(PostgresSettings(dsn=pg_dsn), connections=READ_AHEAD) as analytics:
            built = build_month(MONTH, analytics=analytics, extracts=extracts)
        t1 = time.perf_counter()
        publish(store, built)
        publish_s = time.perf_counter() - t1
    finally:
        running.stop()
    rows = {name: entry.rows for name, entry in built.manifest.files.items()}
    sizes = {name: entry.size for name, entry in built.manifest.files.items()}
    total = fetch + sum(built.seconds.values()) + publish_s
    print(
        f"devices={devices:>5}  samples={rows['dataset']}  series_rows={rows['series']:,}  "
        f"sensor_rows_read={built.manifest.sources['sensor_logs'].rows:,}  "
        f"parquet_MB={sum(sizes.values()) / 1e6:.1f}\n"
        f"  fetch_shards={fetch:.2f}s  read_analytics_waited={built.seconds['read_analytics']:.2f}s  "
        f"shape={built.seconds['shape']:.2f}s  encode+fingerprint={built.seconds['encode']:.2f}s  "
        f"publish_s3={publish_s:.2f}s  TOTAL_BUILD={total:.2f}s  (setup: simulate+load {setup:.1f}s)",
        flush=True,
    )
    return {"total": total}


def main() -> None:
    """Run the benchmark for each fleet size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, nargs="+", default=[1000, 10000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg = start_postgres(Path(tmp) / "pg")
        s3 = start_s3(Path(tmp) / "s3")
        try:
            results = {}
            for n in args.devices:
                store = S3ObjectStore.from_settings(s3.settings(f"bench-{n}"))
                store.ensure_bucket()
                results[n] = bench(n, pg.new_database(), store)["total"]
            if len(results) > 1:
                first, last = min(results), max(results)
                print(
                    f"growth: {last / first:.1f}x devices -> {results[last] / results[first]:.2f}x build time",
                    flush=True,
                )
        finally:
            s3.stop()
            pg.stop()


if __name__ == "__main__":
    main()
