"""Plan step: fix the run's mode and settings, split the snapshot's batches into shards, write plan.json."""

from __future__ import annotations

import json
from dataclasses import dataclass

from eval_runner import keys
from eval_runner.errors import ConfigError, DataError
from eval_runner.fleet.models import (
    ConfigurationSettings,
    GateBinding,
    Mode,
    ParameterTarget,
    Plan,
    SnapshotManifest,
)
from eval_runner.fleet.planning import assign_shards
from eval_runner.hashing import sha256_bytes
from eval_runner.storage import ContentConflictError, ObjectStore, put_record

# Reset targets when no --targets file is given: the rated capacity of a 2xAA pack of the chemistry, and
# the 2.3 V cut-off of the current firmware (a 2.4 V cut-off strands ~5 % of an alkaline pack).
DEFAULT_TARGETS: dict[str, ParameterTarget] = {
    "alkaline": ParameterTarget(nominal_capacity_mah=2600.0, cutoff_mv=2300),
    "lithium": ParameterTarget(nominal_capacity_mah=3000.0, cutoff_mv=2300),
}


def configuration_settings(
    mode: str,
    *,
    apply: bool,
    max_error_rate: float,
    min_writes: int,
    canary_batch: int,
    targets_json: str | None = None,
    targets_name: str = "targets",
) -> ConfigurationSettings | None:
    """The configuration settings of a run's options (None for the prediction modes).

    Checked before any source is read, so a typo in --apply or --targets costs no snapshot.
    ``targets_json`` is the --targets file's text, {chemistry: {nominal_capacity_mah, cutoff_mv}}.
    """
    if mode != "configuration":
        if apply or targets_json is not None:
            raise ConfigError(f"--apply and --targets only apply to mode configuration, not {mode!r}")
        return None
    chosen: dict[str, ParameterTarget] = dict(DEFAULT_TARGETS)
    if targets_json is not None:
        try:
            raw = json.loads(targets_json)
            chosen = {str(k): ParameterTarget.model_validate(v) for k, v in raw.items()}
        except (ValueError, AttributeError) as error:
            raise ConfigError(
                f"--targets {targets_name!r}: expected JSON "
                f"{{chemistry: {{nominal_capacity_mah, cutoff_mv}}}} ({error})"
            ) from error
    try:
        return ConfigurationSettings.model_validate(
            {
                "apply": apply,
                "max_error_rate": max_error_rate,
                "min_writes": min_writes,
                "canary_batch": canary_batch,
                "targets": chosen,
            }
        )
    except ValueError as error:
        raise ConfigError(f"configuration settings are invalid: {error}") from error


def check_canary(configuration: ConfigurationSettings, n_batches: int) -> None:
    """The canary batch must exist; checked as soon as the device list is known, before the snapshot reads."""
    if configuration.canary_batch >= n_batches:
        raise ConfigError(
            f"fleet plan: canary batch {configuration.canary_batch} does not exist "
            f"(the snapshot has {n_batches} batches)"
        )


@dataclass(frozen=True)
class PlanParams:
    """What `fleet plan` is asked: the run, its mode and shard count, and what let the version roll out."""

    run_id: str
    mode: Mode
    n_shards: int
    configuration: ConfigurationSettings | None = None
    gate: GateBinding | None = None
    gate_override_reason: str | None = None


def run(params: PlanParams, *, store: ObjectStore) -> Plan:
    """Write plan.json for a snapshotted run and return it.

    The plan is immutable like every object: planning the same run again with the same arguments is a
    no-op, with different ones a DataError, so shards of one run never disagree on what they do.
    ``gate`` or ``gate_override_reason`` record what let the version roll out (`fleet prepare` sets one).
    """
    run_id, mode, configuration = params.run_id, params.mode, params.configuration
    gate, gate_override_reason = params.gate, params.gate_override_reason
    if gate is not None and gate_override_reason is not None:
        raise ConfigError("fleet plan: a plan records a gate decision or an override reason, not both")
    manifest_key = keys.fleet_snapshot_manifest_key(run_id)
    if not store.exists(manifest_key):
        raise DataError(f"fleet run {run_id!r}: no snapshot at {manifest_key!r}; run `eval-runner fleet snapshot`")
    data = store.get_bytes(manifest_key)
    manifest = SnapshotManifest.from_json_bytes(data, name=manifest_key)
    if mode == "configuration" and configuration is None:
        configuration = ConfigurationSettings(targets=DEFAULT_TARGETS)
    if mode != "configuration" and configuration is not None:
        raise ConfigError(f"fleet plan: configuration settings given for mode {mode!r}")
    if configuration is not None:
        check_canary(configuration, len(manifest.batches))
    plan = Plan(
        run_id=run_id,
        mode=mode,
        as_of=manifest.as_of,
        n_devices=manifest.n_devices,
        n_batches=len(manifest.batches),
        snapshot_sha256=sha256_bytes(data),
        shards=assign_shards(len(manifest.batches), params.n_shards),
        configuration=configuration,
        gate=gate,
        gate_override_reason=gate_override_reason,
    )
    key = keys.fleet_plan_key(run_id)
    try:
        put_record(store, key, plan)
    except ContentConflictError as error:
        raise DataError(
            f"fleet run {run_id!r} is already planned differently ({key!r}); a run's mode, shards, "
            "settings and gate decision are fixed once planned: use a new run id"
        ) from error
    return plan
