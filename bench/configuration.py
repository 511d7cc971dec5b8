"""Benchmark configuration --apply: devices written/s at the simulator's real shards, without and with faults.

For each fleet size: simulate the fleet (fieldsim, 7-day window) and load it into a real local
PostgreSQL once; then, per run, serve a fresh copy of its shard states (five uvicorn shard servers in a
process of their own: real shards do not share the runner's interpreter lock), snapshot and plan mode
configuration --apply into a new bucket of a real local S3 (versitygw), set the run's faults, run the
canary, then the shards, resuming until the merge succeeds, as tests/integration/fleet/
test_configuration_faults.py does. Runs, in that order:
- ``baseline``: no faults;
- ``faults``: the fault test's mix without its stalls (5 % 503s, 2 % truncated bodies, 1 % resets);
- ``faults+stalls``: the whole mix, plus 2 % of requests stalled past the client's timeout (the stalled
  request is still carried out), with the fault test's stall time and client timeout (printed).
Every step is an `eval-runner fleet ...` process, as every step is a pod in fleet-rollout: the canary
alone, then the plan's DEFAULT_SHARD_PODS shards all at once (the workflow's parallelism is above it),
then the merge. In-process ``shard.run`` calls would share one interpreter lock between shards that in
the cluster run in pods of their own, and would hide the start-up cost every pod pays.
The client timeout is the same in every run, so the baseline differs from the faulted runs by the faults
only. Each run counts, at the shards, the PUTs that changed each device: every device the run had to
write must have been written exactly once, and no other; any other count fails the benchmark.

The ratio to the baseline is given on wall time and on CPU time per written device: on a shared 2-core
machine the apply is CPU-bound (8 shard processes), so the wall ratio carries the machine's noise.

Usage: python bench/configuration.py [SIZE ...]  (default 2000 10000: both sizes' three runs take about
4 minutes on 2 cores with a cluster build alongside, 10000 devices ~60 % of it).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
# bench/ itself must not be on the path: a bench module could shadow a package of the same name.
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != REPO / "bench")]

import importlib  # noqa: E402  (imports follow the path set-up above)

import httpx  # noqa: E402

from bench._shard_servers import children_cpu, serve_shards  # noqa: E402
from eval_runner import keys  # noqa: E402
from eval_runner.contracts import FLEET_SERIES_DAYS  # noqa: E402
from eval_runner.errors import TransientError  # noqa: E402
from eval_runner.fleet.local import ENTRY, run_shard_process, run_shards, shard_command  # noqa: E402
from eval_runner.fleet.plan import DEFAULT_TARGETS  # noqa: E402
from eval_runner.fleet.planning import DEFAULT_SHARD_PODS  # noqa: E402
from eval_runner.fleet.run_state import load_run  # noqa: E402
from eval_runner.parquet import parquet_to_frame  # noqa: E402
from eval_runner.settings import ShardSettings  # noqa: E402
from eval_runner.sources.shards import ShardClient  # noqa: E402
from eval_runner.storage import S3ObjectStore  # noqa: E402
from tests.integration.fleet.test_configuration_faults import FAULTS  # noqa: E402  (the mix, in one place)
from tests.services.postgres import start_postgres  # noqa: E402
from tests.services.s3 import S3Server, start_s3  # noqa: E402

AS_OF = datetime(2026, 1, 15, tzinfo=UTC)  # the other fleet benchmarks' moment: mid heating season
SEED = 20260115
SHARD_PODS = DEFAULT_SHARD_PODS
# The fault test's client timeout: below its stall time, so a stalled request times out and is retried.
TIMEOUT_S = 1.0
# The fault test's plan options: its error rate threshold is out of reach, because a halt is final (a
# halted run is rolled back, not resumed) and the point here is to measure the retries and resumes.
PLAN_OPTIONS = ("--max-error-rate", "0.5", "--min-writes", "1000")
MAX_ROUNDS = 8  # the fault test gives up after as many rounds of the shards
RUNS: dict[str, dict[str, float]] = {
    "baseline": {},
    "faults": {k: v for k, v in FAULTS.items() if not k.startswith("stall")},
    "faults+stalls": dict(FAULTS),
}
# fieldsim ships no type information; use it untyped rather than silencing mypy line by line.
fieldsim: Any = importlib.import_module("fieldsim")
fieldsim_shards: Any = importlib.import_module("fieldsim.shards")
fieldsim_postgres: Any = importlib.import_module("fieldsim.postgres")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
T = TypeVar("T")


def _process_cpu(pid: int) -> float:
    """CPU seconds of a running process (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", ENTRY, *args], env=env, capture_output=True, text=True, check=False)


def _checked(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        raise SystemExit(f"{what} failed ({done.returncode}): {done.stderr[-3000:]}")


def _to_change(fleet: Any) -> set[str]:
    """Devices whose parameters differ from the default targets: what every run must write."""
    out = set()
    for row in fleet.battery_parameters.iter_rows(named=True):
        target = DEFAULT_TARGETS[row["chemistry"]]
        if (row["nominal_capacity_mah"], row["cutoff_mv"]) != (target.nominal_capacity_mah, target.cutoff_mv):
            out.add(row["device_id"])
    return out


def _at_target(urls: list[str]) -> set[str]:
    """Devices now at their target per the shards' own listings (read with the faults healed)."""

    async def read() -> list[Any]:
        async with ShardClient.from_settings(ShardSettings(urls=tuple(urls))) as client:
            pages = await asyncio.gather(*(client.battery_parameters(s) for s in range(len(urls))))
        return [p for page in pages for p in page]

    return {
        p.device_id
        for p in asyncio.run(read())
        if (p.nominal_capacity_mah, p.cutoff_mv)
        == (DEFAULT_TARGETS[p.chemistry].nominal_capacity_mah, DEFAULT_TARGETS[p.chemistry].cutoff_mv)
    }


def _apply(run_id: str, store: S3ObjectStore, env: dict[str, str]) -> dict[str, Any]:
    """The canary until it is done, then every shard and the merge, rounds of the shards until it merges.

    Times and CPU (of the processes, reaped by then) are kept apart for the shards and the merges.
    """
    plan, _ = load_run(store, run_id)
    done_key = keys.fleet_batch_done_key(run_id, plan.configuration.canary_batch if plan.configuration else 0)
    figures = {"apply_wall_s": 0.0, "apply_cpu_s": 0.0, "merge_wall_s": 0.0, "merge_cpu_s": 0.0}
    counts = {"canary_runs": 0, "resumes": -1, "shard_process_failures": 0}

    def timed(what: str, step: Callable[[], T]) -> T:
        wall, cpu = time.perf_counter(), children_cpu()
        try:
            return step()
        finally:
            figures[f"{what}_wall_s"] += time.perf_counter() - wall
            figures[f"{what}_cpu_s"] += children_cpu() - cpu

    def pods(command: Callable[[], object]) -> None:
        try:
            command()
        except TransientError as error:  # a shard process failed as a pod would; Argo retries the pod
            counts["shard_process_failures"] += 1
            print(f"# {run_id}: {error}", file=sys.stderr)

    while not store.exists(done_key):  # the canary must be clean before the shards
        counts["canary_runs"] += 1
        if counts["canary_runs"] > MAX_ROUNDS:
            raise SystemExit(f"{run_id}: the canary batch is unresolved after {MAX_ROUNDS} runs")
        timed("apply", lambda: pods(lambda: run_shard_process(shard_command(run_id, None), env=env)))
    shards = sorted(plan.shards)
    while True:
        counts["resumes"] += 1
        timed("apply", lambda: pods(lambda: run_shards(run_id, shards, workers=len(shards), env=env)))
        merged = timed("merge", lambda: _cli(env, "fleet", "merge", "--run-id", run_id))
        if merged.returncode == 0:
            return {"summary": json.loads(merged.stdout), **figures, **counts}
        if "not resolved" not in merged.stderr:
            _checked(merged, f"{run_id}: fleet merge")
        if counts["resumes"] + 1 >= MAX_ROUNDS:
            raise SystemExit(f"{run_id}: still unresolved after {MAX_ROUNDS} rounds: {merged.stderr[-2000:]}")


def measure_run(
    s3: S3Server, dsn: str, fleet: Any, to_change: set[str], name: str, faults: dict[str, float]
) -> dict[str, Any]:
    """One run on fresh shard servers and a new bucket: snapshot, plan, apply (faults on), merge; checked."""
    n = fleet.devices.height
    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    store = S3ObjectStore.from_settings(s3.settings(bucket))
    store.ensure_bucket()
    run_id = f"bench-{n}-{name.replace('+', '-')}"
    # fork: the child inherits fresh shard states instead of pickling the fleet's records through a pipe.
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    server = context.Process(target=serve_shards, args=(fieldsim_shards.shard_states(fleet), send), daemon=True)
    server.start()
    urls: list[str] = receive.recv()
    settings = s3.settings(bucket)
    env = dict(os.environ)
    env.update(
        FLEET_EVAL_S3_ENDPOINT=settings.endpoint,
        FLEET_EVAL_S3_ACCESS_KEY=settings.access_key.get_secret_value(),
        FLEET_EVAL_S3_SECRET_KEY=settings.secret_key.get_secret_value(),
        FLEET_EVAL_S3_BUCKET=bucket,
        FLEET_EVAL_SHARDS_URLS=",".join(urls),
        FLEET_EVAL_SHARDS_TIMEOUT_SECONDS=str(TIMEOUT_S),
        FLEET_EVAL_POSTGRES_DSN=dsn,
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    )
    try:
        tick = time.perf_counter()
        _checked(_cli(env, "fleet", "snapshot", "--run-id", run_id, "--as-of", AS_OF.isoformat()), "fleet snapshot")
        snapshot_s = time.perf_counter() - tick
        tick = time.perf_counter()
        plan_args = ("--mode", "configuration", "--apply", "--shards", str(SHARD_PODS), *PLAN_OPTIONS)
        _checked(_cli(env, "fleet", "plan", "--run-id", run_id, *plan_args), "fleet plan")
        plan_s = time.perf_counter() - tick
        with httpx.Client(timeout=10) as http:
            for index, url in enumerate(urls):  # /_sim/ is exempt from faults and counters
                http.put(f"{url}/_sim/faults", json={**faults, "seed": index}).raise_for_status()
            server_cpu, s3_cpu = _process_cpu(server.pid or 0), _process_cpu(s3.process.pid)
            applied = _apply(run_id, store, env)
            server_cpu, s3_cpu = _process_cpu(server.pid or 0) - server_cpu, _process_cpu(s3.process.pid) - s3_cpu
            stats = [http.get(f"{url}/_sim/stats", params={"per_device": "true"}).json() for url in urls]
            for url in urls:
                http.put(f"{url}/_sim/faults", json={}).raise_for_status()
        at_target = _at_target(urls)
    finally:
        server.terminate()
        server.join()
    per_device: dict[str, int] = {}
    for shard in stats:
        per_device.update(shard["applied_by_device"])
    twice = {d: k for d, k in per_device.items() if k != 1}
    unwritten, extra = sorted(to_change - set(per_device)), sorted(set(per_device) - to_change)
    if twice or unwritten or extra or not to_change <= at_target:
        raise SystemExit(
            f"{run_id}: every device to change must be written exactly once and no other: written more than once "
            f"{dict(list(twice.items())[:5])}, not written {unwritten[:5]}, written but not to change {extra[:5]}, "
            f"not at target {sorted(to_change - at_target)[:5]}"
        )
    summary = applied["summary"]
    rollback_key = keys.fleet_results_sibling_key("configuration", AS_OF.date(), "none", run_id, "rollback.parquet")
    rollback = parquet_to_frame(store.get_bytes(rollback_key), name=rollback_key)
    if summary["devices"] != n or summary["counts"].get("failures", 0) or rollback.height != len(to_change):
        raise SystemExit(f"{run_id}: merge summary {summary['counts']} / rollback {rollback.height} rows")
    written, wall, apply_cpu = len(per_device), applied["apply_wall_s"], applied["apply_cpu_s"]
    return {
        "run": name,
        "devices": n,
        "devices_written": written,
        "puts_applied": sum(per_device.values()),
        "max_puts_per_device": max(per_device.values()),
        "requests_at_shards": sum(s["requests"] for s in stats),
        "faults_given": sum(s["faults_given"] for s in stats),
        "canary_runs": applied["canary_runs"],
        "resumes": applied["resumes"],
        "shard_process_failures": applied["shard_process_failures"],
        "snapshot_s": snapshot_s,
        "plan_s": plan_s,
        "apply_wall_s": wall,
        "apply_cpu_s": apply_cpu,
        "shard_server_cpu_s": server_cpu,
        "s3_cpu_s": s3_cpu,
        "merge_s": applied["merge_wall_s"],
        "merge_cpu_s": applied["merge_cpu_s"],
        "written_per_s": written / wall,
        "written_per_cpu_s": written / apply_cpu,
        "devices_per_s": n / wall,
        "counts": summary["counts"],
        "faults": faults,
    }


def main(argv: list[str]) -> int:
    """Run the sizes given (default 2000 and 10000), each without and with faults; print figures and ratios."""
    sizes = [int(a) for a in argv] or [2_000, 10_000]
    print(f"load average at start: {os.getloadavg()}; cpus={os.cpu_count()}; as_of {AS_OF.isoformat()}")
    print(
        f"batch size 250; {SHARD_PODS} shard processes at once after the canary; 5 API shards, 8 requests in flight "
        f"each per process; client timeout {TIMEOUT_S:g} s, stalls {FAULTS['stall_s']:g} s (a stalled request times "
        "out, is retried after a backoff and still lands later: the shard replays it by its Idempotency-Key)"
    )
    print(f"runs: {json.dumps(RUNS)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-configuration-") as tmp:
        s3 = start_s3(Path(tmp) / "s3")
        pg = start_postgres(Path(tmp) / "pg")
        try:
            for n in sizes:
                tick = time.perf_counter()
                fleet = fieldsim.simulate(
                    fieldsim.SimConfig.for_snapshot(seed=SEED, devices=n, as_of=AS_OF, window_days=FLEET_SERIES_DAYS)
                )
                dsn = pg.new_database()
                fieldsim_postgres.load_postgres(fleet, dsn)
                print(f"# {n} devices simulated and loaded in {time.perf_counter() - tick:.1f} s")
                to_change = _to_change(fleet)
                for name, faults in RUNS.items():
                    figures = measure_run(s3, dsn, fleet, to_change, name, faults)
                    results.append(figures)
                    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))
                    sys.stdout.flush()
                del fleet
        finally:
            pg.stop()
            s3.stop()
    print(
        "\n   size  run            written  written/s  per CPU s  vs baseline (wall / CPU)  PUTs/device  resumes  "
        "snapshot  plan  apply  merge (s)"
    )
    for r in results:
        base = next(b for b in results if b["devices"] == r["devices"] and b["run"] == "baseline")
        print(
            f"{r['devices']:>7}  {r['run']:<13} {r['devices_written']:>8}  {r['written_per_s']:>9.1f}  "
            f"{r['written_per_cpu_s']:>9.1f}  {r['written_per_s'] / base['written_per_s']:>12.2f}x / "
            f"{r['written_per_cpu_s'] / base['written_per_cpu_s']:.2f}x  {r['max_puts_per_device']:>11}  "
            f"{r['resumes']:>7}  {r['snapshot_s']:>8.1f}  {r['plan_s']:>4.1f}  {r['apply_wall_s']:>5.1f}  "
            f"{r['merge_s']:>5.1f}"
        )
    baselines = [r for r in results if r["run"] == "baseline"]
    if len(baselines) >= 2 and baselines[-1]["devices_written"] > baselines[0]["devices_written"]:
        # apply CPU = fixed + per write * writes: fixed is the canary's and the shard processes' start-up.
        small, large = baselines[0], baselines[-1]
        per_write = (large["apply_cpu_s"] - small["apply_cpu_s"]) / (
            large["devices_written"] - small["devices_written"]
        )
        fixed = small["apply_cpu_s"] - per_write * small["devices_written"]
        print(
            f"baseline apply CPU = {fixed:.1f} s fixed + {per_write * 1e3:.1f} ms per written device "
            f"({1 / per_write:.0f} written devices per CPU second at the margin)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
