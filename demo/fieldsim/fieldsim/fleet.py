"""The simulated fleet as polars frames in the contract shapes, and the configuration that made it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl

from fieldsim import constants as k
from fieldsim.physics import F64, I64

UTC_US = pl.Datetime("us", "UTC")


def _month_start(text: str) -> date:
    year, month = text.split("-")
    return date(int(year), int(month), 1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True)
class SimConfig:
    """What to simulate: the seed, the fleet size, the hourly window and the months with capacity tests."""

    seed: int
    devices: int
    data_start: datetime
    data_end: datetime
    test_months: tuple[str, ...] = ()
    test_share: float = 0.75  # share of device-months with a capacity test

    @classmethod
    def for_months(cls, *, seed: int, devices: int, start: str, months: int, preroll_days: int = 31) -> SimConfig:
        """Months ``start`` .. ``start + months - 1`` with tests, plus ``preroll_days`` of history before.

        The pre-roll exists because a sample's series covers the 30 days before its test, which for a
        test early in the first month reaches into the month before.
        """
        first = _month_start(start)
        labels = tuple(f"{_add_months(first, i):%Y-%m}" for i in range(months))
        return cls(
            seed=seed,
            devices=devices,
            data_start=_utc(first) - timedelta(days=preroll_days),
            data_end=_utc(_add_months(first, months)),
            test_months=labels,
        )

    @classmethod
    def for_snapshot(cls, *, seed: int, devices: int, as_of: datetime, window_days: int) -> SimConfig:
        """Only the ``window_days`` before ``as_of``, no capacity tests: the fleet-rollout input."""
        return cls(seed=seed, devices=devices, data_start=as_of - timedelta(days=window_days), data_end=as_of)

    def hour_of(self, moment: datetime) -> int:
        """Index of the simulation hour containing ``moment`` (may be outside the window)."""
        return int((moment - self.data_start).total_seconds() // 3600)

    def test_month_hours(self) -> list[tuple[int, int]]:
        """[start, end) hour indices of each test month."""
        out = []
        for label in self.test_months:
            first = _month_start(label)
            out.append((self.hour_of(_utc(first)), self.hour_of(_utc(_add_months(first, 1)))))
        return out


@dataclass
class ChunkResult:
    """Raw arrays of one chunk of devices; ``assemble`` turns them into frames."""

    first: int
    n: int
    hw: I64
    fw0: I64
    upgrade_h: I64
    sw0: I64
    sw_change_h: I64
    device_installed_h: F64
    activity: F64
    sf: I64
    mount: F64
    present: np.ndarray
    mv: I64
    mv_null: np.ndarray
    temp: F64
    tx: I64
    rx: I64
    rssi: F64
    travel_total: F64
    move_dev: I64
    move_hour: I64
    move_travel: F64
    motor_ms_move: F64
    exercise: np.ndarray
    calib: np.ndarray
    hw_ms_per_pct: F64
    pack_chem: I64
    pack_total: F64
    pack_usable: F64
    installed_h: F64
    removed_h: F64
    died_h: F64
    runtime_estimated: np.ndarray  # bool per device and pack: died_h is the forward model's, not seen
    runtime_censored: np.ndarray  # bool: that estimate is at the model's horizon (a lower bound)
    pack_count: I64
    pack_mat: I64
    used_mat: F64
    tests: list[tuple[I64, I64, F64]] = field(default_factory=list)


@dataclass(frozen=True)
class Fleet:
    """Every frame the simulator serves, plus the truth tables the oracle and the tests use."""

    config: SimConfig
    devices: pl.DataFrame  # DeviceRecord
    sensor_logs: pl.DataFrame  # analytics table sensor_logs
    valve_movements: pl.DataFrame  # analytics table valve_movements
    capacity_tests: pl.DataFrame  # CapacityTest
    version_events: pl.DataFrame  # VersionEvent
    battery_parameters: pl.DataFrame  # BatteryParameters at the end of the window
    packs: pl.DataFrame  # truth: every pack, when it went in, came out and (would have) reached cut-off
    device_truth: pl.DataFrame  # truth: hidden per-device traits (link quality, activity, mounting)

    @property
    def months(self) -> tuple[str, ...]:
        """The months that carry capacity tests."""
        return self.config.test_months

    def source_frames(self) -> dict[str, pl.DataFrame]:
        """Return the frames the real sources serve, by name (deterministic order)."""
        return {
            "devices": self.devices,
            "sensor_logs": self.sensor_logs,
            "valve_movements": self.valve_movements,
            "capacity_tests": self.capacity_tests,
            "version_events": self.version_events,
            "battery_parameters": self.battery_parameters,
        }


def device_id(index: int) -> str:
    """Return the id of the device with global index ``index``."""
    return f"dev-{index:06d}"


def _ids(index: I64) -> pl.Series:
    # Format each distinct device once, then gather: far cheaper than formatting every row.
    unique, inverse = np.unique(index, return_inverse=True)
    names = pl.Series([device_id(int(i)) for i in unique], dtype=pl.String)
    return names.gather(pl.Series(inverse.reshape(-1), dtype=pl.UInt32))


def _times(start: datetime, hours: F64) -> pl.Series:
    start_us = int(start.timestamp() * 1_000_000)
    micro = np.round(np.asarray(hours, dtype=np.float64) * 3.6e9).astype(np.int64) + start_us
    return pl.Series(micro, dtype=pl.Int64).cast(UTC_US)


def _sensor_logs(cfg: SimConfig, c: ChunkResult) -> pl.DataFrame:
    d, h = np.nonzero(c.present)
    return pl.DataFrame(
        {
            "device_id": _ids(c.first + d),
            "ts": _times(cfg.data_start, h.astype(np.float64)),
            "battery_mv": pl.Series(c.mv[d, h], dtype=pl.Int32).set(pl.Series(c.mv_null[d, h]), None),
            "temperature_c": pl.Series(c.temp[d, h], dtype=pl.Float32),
            "radio_tx": pl.Series(c.tx[d, h], dtype=pl.Int32),
            "radio_rx": pl.Series(c.rx[d, h], dtype=pl.Int32),
            "rssi_dbm": pl.Series(c.rssi[d, h], dtype=pl.Int16),
            "valve_travel_total": pl.Series(np.round(c.travel_total[d, h], 1), dtype=pl.Float32),
        }
    )


def _valve_movements(cfg: SimConfig, c: ChunkResult) -> pl.DataFrame:
    ex_d, ex_h = np.nonzero(c.exercise)
    ca_d, ca_h = np.nonzero(c.calib)
    dev = np.concatenate([c.move_dev, ex_d, ca_d])
    hour = np.concatenate([c.move_hour, ex_h, ca_h])
    travel = np.concatenate(
        [
            c.move_travel,
            np.full(len(ex_d), k.EXERCISE_TRAVEL_PCT),
            np.full(len(ca_d), k.CALIBRATION_TRAVEL_PCT),
        ]
    )
    motor = np.concatenate(
        [
            c.motor_ms_move,
            k.EXERCISE_TRAVEL_PCT * c.hw_ms_per_pct[ex_d],
            k.CALIBRATION_TRAVEL_PCT * c.hw_ms_per_pct[ca_d],
        ]
    )
    # Movements while offline or dead never reach the database (the counter still counts them).
    keep = c.present[dev, hour]
    dev, hour, travel, motor = dev[keep], hour[keep], travel[keep], motor[keep]
    order = np.lexsort((hour, dev))
    dev, hour, travel, motor = dev[order], hour[order], travel[order], motor[order]
    cell = dev * c.present.shape[1] + hour
    new_cell = np.ones(len(cell), dtype=bool)
    new_cell[1:] = cell[1:] != cell[:-1]
    group_start = np.maximum.accumulate(np.where(new_cell, np.arange(len(cell)), 0))
    rank = np.arange(len(cell)) - group_start
    counts = np.bincount(np.cumsum(new_cell) - 1)[np.cumsum(new_cell) - 1]
    slot = 3600 // np.maximum(counts, 1)
    # Distinct seconds within the hour (the primary key is device, ts), jittered deterministically.
    seconds = rank * slot + (dev * 7919 + hour * 104729 + rank * 31) % np.maximum(slot, 1)
    return pl.DataFrame(
        {
            "device_id": _ids(c.first + dev),
            "ts": _times(cfg.data_start, hour + seconds / 3600.0),
            "travel_pct": pl.Series(np.round(travel, 2), dtype=pl.Float32),
            "motor_ms": pl.Series(np.round(motor), dtype=pl.Int32),
        }
    )


def _version_events(cfg: SimConfig, c: ChunkResult) -> pl.DataFrame:
    n_hours = c.present.shape[1]
    dev: list[I64] = []
    at: list[F64] = []
    comp: list[np.ndarray] = []
    ver: list[np.ndarray] = []
    rows = np.arange(c.n)

    def add(sel: np.ndarray, hours: F64, component: str, versions: np.ndarray) -> None:
        dev.append(rows[sel])
        at.append(hours[sel])
        comp.append(np.full(int(sel.sum()), component))
        ver.append(versions[sel])

    everyone = np.ones(c.n, dtype=bool)
    add(everyone, c.device_installed_h, "hardware", np.array(k.HARDWARE)[c.hw])
    span = -c.device_installed_h
    for j in range(len(k.FIRMWARE)):
        # Earlier firmware upgrades are spread evenly between installation and the window start.
        when = c.device_installed_h + span * j / (c.fw0 + 1.0)
        add(c.fw0 >= j, when, "firmware", np.full(c.n, k.FIRMWARE[j]))
    add(c.upgrade_h < n_hours, c.upgrade_h.astype(np.float64) + 0.25, "firmware", np.full(c.n, k.FIRMWARE[-1]))
    add(everyone, c.device_installed_h, "software", np.array(k.SOFTWARE)[c.sw0])
    add(
        c.sw_change_h < n_hours,
        np.asarray(c.sw_change_h + 0.5, dtype=np.float64),
        "software",
        np.array(k.SOFTWARE)[1 - c.sw0],
    )
    return pl.DataFrame(
        {
            "device_id": _ids(c.first + np.concatenate(dev)),
            "effective_at": _times(cfg.data_start, np.concatenate(at)),
            "component": pl.Series(np.concatenate(comp), dtype=pl.String),
            "version": pl.Series(np.concatenate(ver), dtype=pl.String),
        }
    ).sort("device_id", "effective_at", "component")


def _capacity_tests(cfg: SimConfig, c: ChunkResult) -> pl.DataFrame:
    frames = []
    for label, (dev, hour, minute) in zip(cfg.test_months, c.tests, strict=True):
        pack = c.pack_mat[dev, hour]
        remaining = (1.0 - c.used_mat[dev, hour]) * c.pack_usable[dev, pack]
        at = hour + minute / 60.0
        runtime = np.maximum((c.died_h[dev, pack] - at) / 24.0, 0.0)
        ids = _ids(c.first + dev)
        frames.append(
            pl.DataFrame(
                {
                    "test_id": "ct-" + ids + f"-{label.replace('-', '')}",
                    "device_id": ids,
                    "tested_at": _times(cfg.data_start, at),
                    "remaining_mah": np.round(np.maximum(remaining, 0.0), 1),
                    "remaining_runtime_days": np.round(runtime, 3),
                    "runtime_source": np.where(c.runtime_estimated[dev, pack], "estimated", "observed"),
                    "runtime_censored": c.runtime_censored[dev, pack],
                }
            )
        )
    if not frames:
        return pl.DataFrame(
            schema={
                "test_id": pl.String,
                "device_id": pl.String,
                "tested_at": UTC_US,
                "remaining_mah": pl.Float64,
                "remaining_runtime_days": pl.Float64,
                "runtime_source": pl.String,
                "runtime_censored": pl.Boolean,
            }
        )
    return pl.concat(frames).sort("device_id", "tested_at")


def _packs(cfg: SimConfig, c: ChunkResult) -> pl.DataFrame:
    dev, slot = np.nonzero(np.arange(c.pack_total.shape[1])[None, :] < c.pack_count[:, None])
    removed = c.removed_h[dev, slot]
    return pl.DataFrame(
        {
            "device_id": _ids(c.first + dev),
            "pack_no": pl.Series(slot, dtype=pl.Int32),
            "installed_at": _times(cfg.data_start, c.installed_h[dev, slot]),
            "removed_at": _times(cfg.data_start, np.nan_to_num(removed)).set(pl.Series(np.isnan(removed)), None),
            "empty_at": _times(cfg.data_start, np.nan_to_num(c.died_h[dev, slot])).set(
                pl.Series(np.isnan(c.died_h[dev, slot])), None
            ),
            "chemistry": pl.Series(np.array(k.CHEMISTRY)[c.pack_chem[dev, slot]], dtype=pl.String),
            "total_mah": np.round(c.pack_total[dev, slot], 1),
            "usable_mah": np.round(c.pack_usable[dev, slot], 1),
        }
    )


def assemble(cfg: SimConfig, chunks: list[ChunkResult]) -> Fleet:
    """Turn the chunks' arrays into the contract frames (rows sorted by device, then time)."""
    devices, params, truth = [], [], []
    for c in chunks:
        ids = _ids(c.first + np.arange(c.n))
        devices.append(
            pl.DataFrame(
                {
                    "device_id": ids,
                    "site_id": [f"site-{(c.first + i) // 10:05d}" for i in range(c.n)],
                    "installed_at": _times(cfg.data_start, c.device_installed_h),
                }
            )
        )
        last = c.pack_mat[:, -1]
        rows = np.arange(c.n)
        chem = c.pack_chem[rows, last]
        params.append(
            pl.DataFrame(
                {
                    "device_id": ids,
                    "chemistry": pl.Series(np.array(k.CHEMISTRY)[chem], dtype=pl.String),
                    "nominal_capacity_mah": k.NOMINAL_MAH[chem],
                    "cutoff_mv": pl.Series(k.CUTOFF_MV[c.hw], dtype=pl.Int64),
                    "installed_at": _times(cfg.data_start, c.installed_h[rows, last]),
                }
            )
        )
        truth.append(
            pl.DataFrame(
                {
                    "device_id": ids,
                    "hardware_revision": pl.Series(np.array(k.HARDWARE)[c.hw], dtype=pl.String),
                    "activity": c.activity,
                    "spreading_factor": pl.Series(c.sf, dtype=pl.Int32),
                    "mount_factor": c.mount,
                }
            )
        )
    return Fleet(
        config=cfg,
        devices=pl.concat(devices),
        sensor_logs=pl.concat([_sensor_logs(cfg, c) for c in chunks]),
        valve_movements=pl.concat([_valve_movements(cfg, c) for c in chunks]),
        capacity_tests=pl.concat([_capacity_tests(cfg, c) for c in chunks]),
        version_events=pl.concat([_version_events(cfg, c) for c in chunks]),
        battery_parameters=pl.concat(params),
        packs=pl.concat([_packs(cfg, c) for c in chunks]),
        device_truth=pl.concat(truth),
    )
