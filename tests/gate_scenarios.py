"""Synthetic paired error frames for the gate: the unit tests and bench/gate_calibration.py use them.

A sample's absolute runtime error is log-normal around ``MEDIAN_DAYS`` with four parts: the device (its
battery, its user: shared by all its months and by both versions), the version on that device (a model's
lasting misreading of one device, shared by its months), the sample (this month's conditions, shared by
both versions) and the version on that sample. The candidate's error is scaled by its segment's factor,
so a factor of 0.9 is a true 10% lower median in that segment. The spreads are in the range of the
demo's real errors (log-scale variances of 0.9.0 against 0.8.0 on fieldsim: device 0.9, version on device
0.3-0.5, sample 0.1, version on sample 0.6); the error rates themselves are measured on replicates of
real errors in bench/gate_calibration.py, not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

MEDIAN_DAYS = 100.0
DEVICE_SIGMA = 0.94
VERSION_DEVICE_SIGMA = 0.60
SAMPLE_SIGMA = 0.35
VERSION_SAMPLE_SIGMA = 0.80
HARDWARE = ("A", "B", "C")
HARDWARE_SHARE = (0.30, 0.60, 0.10)  # rev C is the 10% segment the calibration targets name
FIRMWARE = ("1.4.2", "1.5.0", "1.6.1")
FIRMWARE_SHARE = (0.30, 0.45, 0.25)
TEST_SHARE = 0.75  # share of device-months with a capacity test (fieldsim's)
# How a sample's runtime truth was obtained, as on fieldsim's demo fleet (2,000 x 3 months): 3 % of the
# packs ran out within the record (observed), 0.8 % of the estimates sit at the model's horizon (censored).
OBSERVED_SHARE = 0.03
CENSORED_SHARE = 0.008


def months_from(start: int, count: int) -> list[str]:
    """``count`` consecutive month names of 2026 from month ``start``."""
    return [f"2026-{m:02d}" for m in range(start, start + count)]


def paired_errors(
    *,
    devices: int,
    months: Sequence[str],
    factor: float = 1.0,
    factors: Mapping[tuple[str, str], float] | None = None,
    seed: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(candidate, baseline) error frames in ``metrics.with_errors``' columns that the gate reads.

    ``factor`` scales the candidate everywhere; ``factors`` overrides it where a column has a value,
    e.g. ``{("hardware_revision", "C"): 1.24}``, ``{("month", "2026-04"): 1.3}`` or
    ``{("true_runtime_source", "observed"): 0.5}``.
    """
    rng = np.random.default_rng(seed)
    hardware = rng.choice(np.array(HARDWARE), size=devices, p=HARDWARE_SHARE)
    firmware = rng.choice(np.array(FIRMWARE), size=devices, p=FIRMWARE_SHARE)
    device_effect = rng.normal(0.0, DEVICE_SIGMA, devices)
    lasting = {version: rng.normal(0.0, VERSION_DEVICE_SIGMA, devices) for version in ("candidate", "baseline")}
    rows: dict[str, list[object]] = {k: [] for k in ("sample_id", "device_id", "month", "hardware_revision",
                                                     "firmware_version")}  # fmt: skip
    tested_devices: list[npt.NDArray[np.int64]] = []
    for month in months:
        tested = np.flatnonzero(rng.random(devices) < TEST_SHARE)
        rows["sample_id"] += [f"dev-{i:06d}/{month}" for i in tested]
        rows["device_id"] += [f"dev-{i:06d}" for i in tested]
        rows["month"] += [month] * tested.size
        rows["hardware_revision"] += hardware[tested].tolist()
        rows["firmware_version"] += firmware[tested].tolist()
        tested_devices.append(tested)
    segments = _with_truth_basis(pl.DataFrame(rows, schema=dict.fromkeys(rows, pl.String)), seed)
    n = segments.height
    device = np.concatenate(tested_devices)
    shared = device_effect[device] + rng.normal(0.0, SAMPLE_SIGMA, n)

    def error(version: str) -> npt.NDArray[np.float64]:
        return MEDIAN_DAYS * np.exp(shared + lasting[version][device] + rng.normal(0.0, VERSION_SAMPLE_SIGMA, n))

    baseline, candidate = error("baseline"), error("candidate")
    scale = np.full(n, factor)
    for (column, value), override in (factors or {}).items():
        scale[(segments.get_column(column) == value).to_numpy()] = override
    return _errors(segments, candidate * scale), _errors(segments, baseline)


def _with_truth_basis(segments: pl.DataFrame, seed: int) -> pl.DataFrame:
    # A stream of its own, so the errors drawn for a seed are the same as before truth bases existed.
    draw = np.random.default_rng([seed, 1]).random(segments.height)
    observed = draw < OBSERVED_SHARE
    censored = draw > 1.0 - CENSORED_SHARE
    return segments.with_columns(
        pl.Series("true_runtime_source", np.where(observed, "observed", "estimated")),
        pl.Series("true_runtime_censored", censored),
    )


def _errors(segments: pl.DataFrame, runtime_abs: npt.NDArray[np.float64]) -> pl.DataFrame:
    return segments.with_columns(
        pl.Series("runtime_abs_error", runtime_abs),
        pl.Series("runtime_rel_error", runtime_abs / 400.0),
        pl.Series("capacity_abs_error", runtime_abs * 4.0),
        pl.Series("capacity_rel_error", runtime_abs / 400.0),
    )
