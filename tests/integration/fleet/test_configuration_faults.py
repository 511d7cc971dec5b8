"""Configuration --apply under faults: counted at the simulator's real shards, no device is written twice.

The shards answer 5 % 503s, 2 % stalls past the client's timeout, 2 % truncated bodies and 1 % resets;
the real S3 store fails every 7th journal write; a shard process is killed mid-batch and the run resumed.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import time
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from eval_runner import keys
from eval_runner.errors import DataError, TransientError
from eval_runner.fleet import merge, shard
from eval_runner.fleet.apply import ParameterClient
from eval_runner.fleet.plan import DEFAULT_TARGETS
from eval_runner.fleet.run_state import load_run
from eval_runner.parquet import parquet_to_frame
from eval_runner.settings import S3Settings, ShardSettings
from eval_runner.sources.shards import ShardClient
from eval_runner.storage import S3ObjectStore
from tests.integration.fleet.conftest import cli_env, eval_runner_command, run_cli

AS_OF = datetime(2026, 4, 30, tzinfo=UTC)
RUN = "configuration-faults"
fieldsim_shards: Any = importlib.import_module("fieldsim.shards")
FAULTS = {"error_rate": 0.05, "stall_rate": 0.02, "stall_s": 3.0, "truncate_rate": 0.02, "reset_rate": 0.01}
# Where to write the measured figures (PUTs per device, devices/s, times), when asked to.
FIGURES = os.environ.get("FLEET_EVAL_FAULT_FIGURES")


class _FlakyJournalStore(S3ObjectStore):
    """The real S3 store, failing every 7th journal write (after its PUT) as an S3 outage would."""

    journal_writes = 0

    def _write(self, key: str, data: bytes, sha256: str, *, if_absent: bool) -> None:
        if "/journal/" in key:
            type(self).journal_writes += 1
            if type(self).journal_writes % 7 == 0:
                raise TransientError(f"put s3://{self.bucket}/{key}: S3 is busy (SlowDown); gave up after 4 attempts")
        super()._write(key, data, sha256, if_absent=if_absent)


def _targets_reached(sources: Any) -> tuple[set[str], set[str]]:
    """(devices that had to change, devices now at their target) per the shards' own state."""
    to_change, at_target = set(), set()
    for row in sources.fleet.battery_parameters.iter_rows(named=True):
        target = DEFAULT_TARGETS[row["chemistry"]]
        if (row["nominal_capacity_mah"], row["cutoff_mv"]) != (target.nominal_capacity_mah, target.cutoff_mv):
            to_change.add(row["device_id"])
    for state in sources.shards:
        for device, params in state.parameters.items():
            target = DEFAULT_TARGETS[params["chemistry"]]
            if (params["nominal_capacity_mah"], params["cutoff_mv"]) == (target.nominal_capacity_mah, target.cutoff_mv):
                at_target.add(device)
    return to_change, at_target


def _applied_per_device(sources: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in sources.shards:
        counts.update(state.applied_by_device)
    return counts


@pytest.mark.slow
def test_faults_kill_and_resume_write_every_device_once(
    object_store: S3ObjectStore, s3_settings: S3Settings, fieldsim_sources: Any
) -> None:
    started = time.monotonic()
    env = cli_env(
        s3_settings,
        FLEET_EVAL_SHARDS_URLS=",".join(fieldsim_sources.shard_urls),
        FLEET_EVAL_POSTGRES_DSN=fieldsim_sources.postgres_dsn,
        FLEET_EVAL_SHARDS_TIMEOUT_SECONDS="1",
    )
    run_cli(env, "fleet", "snapshot", "--run-id", RUN, "--as-of", AS_OF.isoformat(), "--batch-size", "5")
    run_cli(
        env, "fleet", "plan", "--run-id", RUN, "--mode", "configuration", "--apply", "--shards", "2",
        "--max-error-rate", "0.5", "--min-writes", "1000",
    )  # fmt: skip
    for index in range(5):
        fieldsim_sources.set_faults(index, fieldsim_shards.Faults(**FAULTS, seed=index))
    store = _FlakyJournalStore.from_settings(s3_settings)
    settings = ShardSettings(urls=fieldsim_sources.shard_urls, timeout_seconds=1.0)

    def client() -> AbstractAsyncContextManager[ParameterClient]:
        return ShardClient.from_settings(settings)

    def run_shard(name: str | None) -> None:
        shard.run(
            shard.ShardParams(RUN, name or "canary", canary=name is None),
            store=store,
            predictor_factory=lambda: None,  # type: ignore[arg-type,return-value]  # configuration needs none
            client_factory=client,
        )

    applying = time.monotonic()
    for _ in range(5):  # the canary until it is resolved (it must be clean before the shards)
        run_shard(None)
        if keys.fleet_batch_done_key(RUN, 0) in set(object_store.list(f"fleet/runs/{RUN}/batches/")):
            break
    # Kill a shard process mid-batch: as soon as one journal entry beyond the canary exists.
    process = subprocess.Popen(
        eval_runner_command("fleet", "shard", "--run-id", RUN, "--shard", "s000"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if any(
            "/journal/batch=00001/" in k or "/journal/batch=00002/" in k
            for k in object_store.list(f"fleet/runs/{RUN}/journal/")
        ):
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    killed = process.wait(timeout=30) == -signal.SIGKILL

    plan, _ = load_run(object_store, RUN)
    resumes = 0
    while True:  # resume until every device is resolved: what an operator (or argo retry) does
        resumes += 1
        for name in sorted(plan.shards):
            run_shard(name)
        try:
            summary = merge.run(merge.MergeParams(RUN), store=object_store)
            break
        except DataError as error:
            assert "not resolved" in str(error), error
            assert resumes < 8, f"still unresolved after {resumes} resumes: {error}"
    apply_seconds = time.monotonic() - applying

    to_change, at_target = _targets_reached(fieldsim_sources)
    applied = _applied_per_device(fieldsim_sources)
    assert max(applied.values()) == 1, {d: n for d, n in applied.items() if n > 1}  # zero second PUTs
    assert to_change <= at_target
    assert summary.counts["failures"] == 0
    day = AS_OF.date()
    rollback = parquet_to_frame(
        object_store.get_bytes(keys.fleet_results_sibling_key("configuration", day, "none", RUN, "rollback.parquet")),
        name="rollback",
    )
    assert rollback.height == sum(applied.values()) == len(to_change)
    assert set(rollback.get_column("device_id")) == set(applied)
    faults_given = sum(state.faults_given for state in fieldsim_sources.shards)
    assert faults_given > 0
    figures = (
        json.dumps(
            {
                "devices": summary.devices,
                "devices_written": len(to_change),
                "max_puts_applied_per_device": max(applied.values()),
                "faults_given_at_shards": faults_given,
                "journal_writes_attempted": _FlakyJournalStore.journal_writes,
                "shard_killed_mid_run": killed,
                "resumes": resumes,
                "apply_seconds": round(apply_seconds, 2),
                "devices_per_second_with_faults": round(summary.devices / apply_seconds, 1),
                "test_seconds": round(time.monotonic() - started, 2),
                "faults": FAULTS,
            },
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )
    if FIGURES:
        Path(FIGURES).write_text(figures)
    assert pl.Series(list(applied.values())).sum() == rollback.height
