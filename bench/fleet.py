"""Benchmark `eval-runner fleet run --local`: devices/s, harness share vs pure library time, linearity.

For each fleet size: simulate the fleet (fieldsim, 7-day window), snapshot it into a real local S3
(versitygw) through the in-memory frame source, then measure
- the baseline: battery-lib 0.9.0 predicting every batch in one process from inputs already in memory
  (pure library time, through the same generation-2 adapter the shards use);
- `eval-runner fleet run --local --workers 1`: the same batches through shard processes with S3 reads,
  Parquet, result + .done checkpoints and the merge (one worker, so it compares with the one-process
  baseline; more workers only divide the wall time on more cores).
The harness share is 1 - baseline / run, on wall time and on CPU time (the machine is shared, so CPU
time is the steadier of the two). Usage: python bench/fleet.py [SIZE ...]  (default 10000 100000).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "demo" / "battery-lib" / "0.9.0"
# bench/ itself must not be on the path: bench/fieldsim.py would shadow the fieldsim package.
sys.path[:] = [str(REPO), str(LIBRARY), *(p for p in sys.path if Path(p or ".").resolve() != REPO / "bench")]

import importlib  # noqa: E402  (imports follow the path set-up above)

from eval_runner.contracts import FLEET_SERIES_DAYS, LIBRARY_SAMPLE_COLUMNS  # noqa: E402
from eval_runner.fleet import snapshot  # noqa: E402
from eval_runner.fleet.local import ENTRY  # noqa: E402
from eval_runner.fleet.shard import read_inputs  # noqa: E402
from eval_runner.library import load_predictor  # noqa: E402
from eval_runner.storage import S3ObjectStore  # noqa: E402
from tests.fixtures.fleet import FleetFrameSource  # noqa: E402
from tests.services.s3 import S3Server, start_s3  # noqa: E402

AS_OF = datetime(2026, 1, 15, tzinfo=UTC)  # mid heating season: valves move, consumption varies
SEED = 20260115
WORKERS = 1
# fieldsim ships no type information; use it untyped rather than silencing mypy line by line.
fieldsim: Any = importlib.import_module("fieldsim")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _env(s3: S3Server, bucket: str) -> dict[str, str]:
    env = dict(os.environ)
    settings = s3.settings(bucket)
    env.update(
        FLEET_EVAL_S3_ENDPOINT=settings.endpoint,
        FLEET_EVAL_S3_ACCESS_KEY=settings.access_key.get_secret_value(),
        FLEET_EVAL_S3_SECRET_KEY=settings.secret_key.get_secret_value(),
        FLEET_EVAL_S3_BUCKET=bucket,
        PYTHONPATH=os.pathsep.join([str(LIBRARY), str(REPO), env.get("PYTHONPATH", "")]),
    )
    return env


def measure(s3: S3Server, n: int) -> dict[str, Any]:
    """Simulate, snapshot, baseline and run one fleet of ``n`` devices; return the figures."""
    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    store = S3ObjectStore.from_settings(s3.settings(bucket))
    store.ensure_bucket()
    run_id = f"bench-{n}"

    tick = time.perf_counter()
    fleet = fieldsim.simulate(
        fieldsim.SimConfig.for_snapshot(seed=SEED, devices=n, as_of=AS_OF, window_days=FLEET_SERIES_DAYS)
    )
    simulate_s = time.perf_counter() - tick
    tick = time.perf_counter()
    manifest = snapshot.run(snapshot.SnapshotParams(run_id, AS_OF), store=store, source=FleetFrameSource(fleet))
    snapshot_s = time.perf_counter() - tick
    del fleet

    inputs = [read_inputs(store, manifest, b.batch) for b in manifest.batches]
    predictor = load_predictor()
    wall, cpu = time.perf_counter(), time.process_time()
    for samples, series in inputs:
        predictor.predict(samples.select(LIBRARY_SAMPLE_COLUMNS), series)
    baseline_wall, baseline_cpu = time.perf_counter() - wall, time.process_time() - cpu
    del inputs

    command = [sys.executable, "-c", ENTRY, "fleet", "run", "--local", "--workers", str(WORKERS)]
    command += ["--run-id", run_id, "--mode", "fleet", "--as-of", AS_OF.isoformat()]
    cpu_before, wall = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, env=_env(s3, bucket), capture_output=True, text=True, check=False)
    run_wall, run_cpu = time.perf_counter() - wall, _children_cpu() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"fleet run failed ({done.returncode}): {done.stderr[-3000:]}")
    out = json.loads(done.stdout)
    shards = out["shards"]
    in_shard_library = sum(s["library_seconds"] for s in shards)
    in_shard_total = sum(s["total_seconds"] for s in shards)
    return {
        "devices": n,
        "batches": len(manifest.batches),
        "series_rows": sum(b.series_rows for b in manifest.batches),
        "published_devices": out["summary"]["devices"],
        "simulate_s": simulate_s,
        "snapshot_s": snapshot_s,
        "baseline_wall_s": baseline_wall,
        "baseline_cpu_s": baseline_cpu,
        "run_wall_s": run_wall,
        "run_cpu_s": run_cpu,
        "run_steps": out["timings"],
        "devices_per_s": n / run_wall,
        "library_devices_per_s": n / baseline_wall,
        "harness_share_wall": 1 - baseline_wall / run_wall,
        "harness_share_cpu": 1 - baseline_cpu / run_cpu,
        "in_shard_library_s": in_shard_library,
        "in_shard_total_s": in_shard_total,
        "in_shard_harness_share": 1 - in_shard_library / in_shard_total,
    }


def main(argv: list[str]) -> int:
    """Run the sizes given (default 10k and 100k) and print the figures and ratios."""
    sizes = [int(a) for a in argv] or [10_000, 100_000]
    print(f"load average at start: {os.getloadavg()}; workers={WORKERS}; library=battery-lib 0.9.0")
    print(f"series window {FLEET_SERIES_DAYS} days hourly; batch size 250; as_of {AS_OF.isoformat()}")
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        s3 = start_s3(Path(tmp) / "s3")
        try:
            results = []
            for n in sizes:
                figures = measure(s3, n)
                results.append(figures)
                print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}))
                sys.stdout.flush()
        finally:
            s3.stop()
    print("\nsize      devices/s  library-only devices/s  harness share (wall / cpu / in-shard)")
    for r in results:
        print(
            f"{r['devices']:>7}  {r['devices_per_s']:>9.0f}  {r['library_devices_per_s']:>22.0f}  "
            f"{r['harness_share_wall']:>6.1%} / {r['harness_share_cpu']:>6.1%} / {r['in_shard_harness_share']:>6.1%}"
        )
    if len(results) >= 2:
        small, large = results[0], results[-1]
        ratio = large["devices_per_s"] / small["devices_per_s"]
        cpu_ratio = (small["run_cpu_s"] / small["devices"]) / (large["run_cpu_s"] / large["devices"])
        in_shard = (large["devices"] / large["in_shard_total_s"]) / (small["devices"] / small["in_shard_total_s"])
        print(
            f"devices/s at {large['devices']} vs {small['devices']}: {ratio:.2f}x wall, {cpu_ratio:.2f}x by CPU "
            f"per device, {in_shard:.2f}x inside the shards (within 0.85..1.15 = linear)"
        )
        # run CPU = fixed + per_device * n, from the two sizes: fixed is process start-up (imports), per
        # device is what grows with the fleet; compare the latter with the library's own CPU per device.
        per_device = (large["run_cpu_s"] - small["run_cpu_s"]) / (large["devices"] - small["devices"])
        fixed = small["run_cpu_s"] - per_device * small["devices"]
        library = large["baseline_cpu_s"] / large["devices"]
        print(
            f"run CPU = {fixed:.1f} s fixed + {per_device * 1e3:.3f} ms/device; library alone "
            f"{library * 1e3:.3f} ms/device, so the marginal harness share by CPU is {1 - library / per_device:.1%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
