"""Benchmark the fleet snapshot from live sources: devices/s against the in-process snapshot of the same fleet.

For each fleet size: simulate the fleet (fieldsim, 7-day window), load it into a real local PostgreSQL,
serve it as the five API shards from their own process (real shards are remote: they must not share
this process's interpreter lock), then snapshot it twice into a real local S3 (versitygw):
- the baseline: ``snapshot.run`` through the in-memory frame source (what bench/fleet.py measures);
- live: ``snapshot.run`` through ``LiveFleetSource`` over HTTP and SQL, as `eval-runner fleet snapshot` does.
Both must write byte-identical batches (same samples and series hashes), so the figure is for the same work.
Wall and CPU time are printed (CPU of this process, and of the shard process); the machine is shared.

Usage: python bench/snapshot.py [SIZE ...] [--workers=2,3] [--profile]  (default 10000 100000 and the
snapshot's default workers). The live snapshot runs serially (workers=1: how it ran before batches were
read ahead) and with each workers count given; --profile writes a cProfile of the largest count to the
working directory.
"""

from __future__ import annotations

import cProfile
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# bench/ itself must not be on the path: bench/fieldsim.py would shadow the fieldsim package.
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != REPO / "bench")]

import importlib  # noqa: E402  (imports follow the path set-up above)

from bench._shard_servers import children_cpu, serve_shards  # noqa: E402
from eval_runner.contracts import FLEET_SERIES_DAYS  # noqa: E402
from eval_runner.fleet import snapshot  # noqa: E402
from eval_runner.fleet.live_source import LiveFleetSource  # noqa: E402
from eval_runner.fleet.models import SnapshotManifest  # noqa: E402
from eval_runner.fleet.snapshot import SNAPSHOT_WORKERS  # noqa: E402
from eval_runner.settings import PostgresSettings, ShardSettings  # noqa: E402
from eval_runner.sources.analytics import PostgresAnalytics  # noqa: E402
from eval_runner.storage import S3ObjectStore  # noqa: E402
from tests.fixtures.fleet import FleetFrameSource  # noqa: E402
from tests.services.postgres import PostgresServer, start_postgres  # noqa: E402
from tests.services.s3 import S3Server, start_s3  # noqa: E402

AS_OF = datetime(2026, 1, 15, tzinfo=UTC)  # the fleet benchmark's moment: mid heating season
SEED = 20260115
# fieldsim ships no type information; use it untyped rather than silencing mypy line by line.
fieldsim: Any = importlib.import_module("fieldsim")
fieldsim_shards: Any = importlib.import_module("fieldsim.shards")
fieldsim_postgres: Any = importlib.import_module("fieldsim.postgres")


def _same_content(baseline: SnapshotManifest, live: SnapshotManifest) -> bool:
    def hashes(m: SnapshotManifest) -> list[tuple[int, str, str]]:
        return [(b.batch, b.samples_sha256, b.series_sha256) for b in m.batches]

    return baseline.devices_sha256 == live.devices_sha256 and hashes(baseline) == hashes(live)


def measure(
    s3: S3Server, pg: PostgresServer, n: int, *, profile: bool, workers_tried: tuple[int, ...]
) -> dict[str, Any]:
    """Simulate and load one fleet of ``n`` devices, snapshot it in-process and live; return the figures.

    Live runs serially, then with each of ``workers_tried`` batches in flight (one database connection each).
    """
    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    store = S3ObjectStore.from_settings(s3.settings(bucket))
    store.ensure_bucket()

    tick = time.perf_counter()
    fleet = fieldsim.simulate(
        fieldsim.SimConfig.for_snapshot(seed=SEED, devices=n, as_of=AS_OF, window_days=FLEET_SERIES_DAYS)
    )
    simulate_s = time.perf_counter() - tick
    tick = time.perf_counter()
    dsn = pg.new_database()
    fieldsim_postgres.load_postgres(fleet, dsn)
    states = fieldsim_shards.shard_states(fleet)
    load_s = time.perf_counter() - tick

    wall, cpu = time.perf_counter(), time.process_time()
    baseline = snapshot.run(
        snapshot.SnapshotParams(f"baseline-{n}", AS_OF), store=store, source=FleetFrameSource(fleet)
    )
    baseline_wall, baseline_cpu = time.perf_counter() - wall, time.process_time() - cpu
    del fleet

    # fork: the child inherits the shard states instead of pickling 100k devices' records through a pipe.
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    server = context.Process(target=serve_shards, args=(states, send), daemon=True)
    cpu_before = children_cpu()
    server.start()
    urls = receive.recv()
    del states
    live: dict[int, tuple[SnapshotManifest, float, float]] = {}  # workers -> (manifest, wall s, cpu s)
    try:
        for workers in sorted({1, *workers_tried}):
            profiler = cProfile.Profile() if profile and workers == max(workers_tried) else None
            wall, cpu = time.perf_counter(), time.process_time()
            with (
                PostgresAnalytics.connect(PostgresSettings(dsn=dsn), connections=workers) as analytics,
                LiveFleetSource(ShardSettings(urls=tuple(urls)), analytics) as source,
            ):
                if profiler is not None:
                    profiler.enable()
                manifest = snapshot.run(
                    snapshot.SnapshotParams(f"live-{n}-w{workers}", AS_OF), store=store, source=source, workers=workers
                )
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(f"snapshot-{n}.prof")
            live[workers] = (manifest, time.perf_counter() - wall, time.process_time() - cpu)
    finally:
        server.terminate()
        server.join()
    shard_cpu = children_cpu() - cpu_before
    best = min(live, key=lambda w: live[w][1])
    return {
        "devices": n,
        "batches": len(baseline.batches),
        "series_rows": sum(b.series_rows for b in baseline.batches),
        "same_content": all(_same_content(baseline, manifest) for manifest, _, _ in live.values()),
        "simulate_s": simulate_s,
        "load_sources_s": load_s,
        "baseline_wall_s": baseline_wall,
        "baseline_cpu_s": baseline_cpu,
        "baseline_devices_per_s": n / baseline_wall,
        "shard_server_cpu_s": shard_cpu,
        **{f"live_w{w}_wall_s": wall for w, (_, wall, _) in live.items()},
        **{f"live_w{w}_cpu_s": cpu for w, (_, _, cpu) in live.items()},
        **{f"live_w{w}_devices_per_s": n / wall for w, (_, wall, _) in live.items()},
        "best_workers": best,
        "best_vs_serial": live[1][1] / live[best][1],
        "best_vs_in_process": baseline_wall / live[best][1],
    }


def main(argv: list[str]) -> int:
    """Run the sizes given (default 10k and 100k) and print the figures and ratios."""
    profile = "--profile" in argv
    workers_arg = next((a.split("=", 1)[1] for a in argv if a.startswith("--workers=")), str(SNAPSHOT_WORKERS))
    workers_tried = tuple(int(w) for w in workers_arg.split(","))
    sizes = [int(a) for a in argv if not a.startswith("--")] or [10_000, 100_000]
    print(f"load average at start: {os.getloadavg()}; cpus={os.cpu_count()}; as_of {AS_OF.isoformat()}")
    print(f"series window {FLEET_SERIES_DAYS} days hourly; batch size 250; 5 shards, 8 requests in flight each")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-snapshot-") as tmp:
        s3 = start_s3(Path(tmp) / "s3")
        pg = start_postgres(Path(tmp) / "pg")
        try:
            for n in sizes:
                figures = measure(s3, pg, n, profile=profile, workers_tried=workers_tried)
                results.append(figures)
                print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))
                sys.stdout.flush()
        finally:
            pg.stop()
            s3.stop()
    tried = sorted({1, *workers_tried})
    header = "  ".join(f"live w={w}: dev/s (wall s)" for w in tried)
    print(f"\n   size  {header}  in-process dev/s  best/serial  same")
    for r in results:
        cells = "  ".join(f"{r[f'live_w{w}_devices_per_s']:>15.0f} ({r[f'live_w{w}_wall_s']:>5.1f})" for w in tried)
        print(
            f"{r['devices']:>7}  {cells}  {r['baseline_devices_per_s']:>16.0f}  "
            f"{r['best_vs_serial']:>10.2f}x  {r['same_content']}"
        )
    return 0 if all(r["same_content"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
