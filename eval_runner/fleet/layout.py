"""Object keys inside one fleet run, built on eval_runner.keys (which owns the run and result prefixes).

Like every key, these are pure functions of what the object is, so a rerun writes the same keys and
immutability turns a retried write into a no-op.
"""

from __future__ import annotations

import re
from datetime import date

from eval_runner.errors import ConfigError
from eval_runner.keys import fleet_batch_done_key, fleet_batch_key, fleet_results_key, fleet_run_prefix

_DEVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")

__all__ = [
    "batch_done_key",
    "batch_result_key",
    "devices_key",
    "halt_key",
    "journal_key",
    "journal_prefix",
    "plan_key",
    "results_key",
    "results_sibling_key",
    "samples_key",
    "series_key",
    "snapshot_manifest_key",
]

batch_result_key = fleet_batch_key
batch_done_key = fleet_batch_done_key
results_key = fleet_results_key


def _inputs(run_id: str) -> str:
    return f"{fleet_run_prefix(run_id)}inputs/"


def samples_key(run_id: str, batch: int) -> str:
    """Library samples (LIBRARY_SAMPLE_COLUMNS) of one batch of the snapshot."""
    return f"{_inputs(run_id)}batch={batch:05d}/samples.parquet"


def series_key(run_id: str, batch: int) -> str:
    """Hourly series (SERIES_SCHEMA) of one batch of the snapshot."""
    return f"{_inputs(run_id)}batch={batch:05d}/series.parquet"


def devices_key(run_id: str) -> str:
    """Every device of the snapshot with its batch: what the merge proves the results against."""
    return f"{_inputs(run_id)}devices.parquet"


def snapshot_manifest_key(run_id: str) -> str:
    """Key of the snapshot's manifest, written last: its presence means the snapshot is complete."""
    return f"{_inputs(run_id)}manifest.json"


def plan_key(run_id: str) -> str:
    """Key of the plan: mode, shards and their batches, configuration settings."""
    return f"{fleet_run_prefix(run_id)}plan.json"


def halt_key(run_id: str) -> str:
    """Written when a configuration run halts on its error rate; every shard stops when it exists."""
    return f"{fleet_run_prefix(run_id)}halt.json"


def journal_prefix(run_id: str, batch: int) -> str:
    """Folder of the per-device journal entries of one configuration batch (one LIST reads them all)."""
    return f"{fleet_run_prefix(run_id)}journal/batch={batch:05d}/"


def journal_key(run_id: str, batch: int, device_id: str) -> str:
    """Journal entry of one device: written after its PUT succeeded, so a retry never PUTs it again."""
    if not _DEVICE.match(device_id) or ".." in device_id:
        raise ConfigError(f"device id {device_id!r} cannot be used in an object key")
    return f"{journal_prefix(run_id, batch)}device={device_id}.json"


def results_sibling_key(mode: str, day: date, version: str, name: str) -> str:
    """Another object next to a published results.parquet (summary.json, rollback.parquet)."""
    folder = fleet_results_key(mode, day, version).rsplit("/", 1)[0]
    return f"{folder}/{name}"
