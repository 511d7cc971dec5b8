"""Generation-2 predictor: temperature-compensated voltage blended with event-count consumption.

Per sample: keep the current pack (a counter reset or a voltage step up marks a swap), normalise the
voltage to 20 °C, correct readings taken in motor hours by I*R, take the median of the last day and read
the state of charge off the alkaline curve; count consumption from radio messages, motor seconds and the
sleep floor; blend the voltage state of charge with the coulomb one by fixed weights; forecast with a
monthly heating profile. Intervals are fixed ratios from the residuals of the 0.7 release.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_US_PER_DAY = 86_400_000_000
_VALID_MV = (1800.0, 3900.0)
OUTPUT_COLUMNS = (
    "capacity_mah_p10", "capacity_mah_p50", "capacity_mah_p90",
    "runtime_days_p10", "runtime_days_p50", "runtime_days_p90",
)  # fmt: skip

# Fitted constants.
LIFE = np.array([0.0, 0.10, 0.25, 0.50, 0.75, 0.85, 0.90, 0.95, 0.98, 1.00])
OCV_ALKALINE = np.array([2990.0, 2920.0, 2840.0, 2700.0, 2600.0, 2530.0, 2490.0, 2420.0, 2370.0, 2230.0])
TEMP_COEFF_MV_PER_C = 1.2
LOAD_OHM_AT_20C = 0.45  # pack resistance at mid-life, for readings taken while the motor runs
RATED_MOTOR_MA = 200.0
# Per hardware revision (A and B; later revisions are treated as B): sleep floor, and the effective
# motor current per second of motor time including the rate penalty of its pulses.
FLOOR_MAH_PER_DAY = {"A": 0.60, "B": 0.36}
EFFECTIVE_MOTOR_MA = {"A": 273.0, "B": 230.0}
DEFAULT_REVISION = "B"
USABLE_SHARE = 0.90  # of the nominal capacity: fresh packs beat the label at thermostat drains
TX_MAH = 0.0011
RX_MAH = 0.0003
TRAVEL_MAH_PER_PCT = 0.0096
VOLTAGE_WEIGHT = 0.5
MONTHLY_HEATING = np.array([1.0, 0.95, 0.75, 0.45, 0.15, 0.0, 0.0, 0.0, 0.03, 0.35, 0.75, 0.95])
SUMMER_MAH_PER_DAY = 0.14  # weekly anti-lock runs
TYPICAL_MOTOR_MAH_PER_DAY = 3.3
INTERVAL = (0.7, 1.35)
HORIZON_DAYS = 2500


def _col(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name).combine_chunks()
    if pa.types.is_timestamp(column.type):
        column = pc.cast(pc.cast(column, pa.timestamp("us", "UTC")), pa.int64())
    return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _slices(samples: pa.Table, series: pa.Table) -> list[slice]:
    ids = series.column("sample_id").to_pylist()
    bounds: dict[str, list[int]] = {}
    for i, sid in enumerate(ids):
        if sid in bounds:
            bounds[sid][1] = i + 1
        else:
            bounds[sid] = [i, i + 1]
    return [slice(*bounds.get(sid, [0, 0])) for sid in samples.column("sample_id").to_pylist()]


def _heating(doy: np.ndarray) -> np.ndarray:
    month = np.clip((np.asarray(doy) % 365.25) / 30.44, 0, 11.999).astype(int)
    return np.asarray(MONTHLY_HEATING[month], dtype=np.float64)


class Predictor:
    """Predict remaining capacity and runtime for a batch of samples (stateless)."""

    def predict(self, samples: pa.Table, series: pa.Table) -> pa.Table:
        """Return one PREDICTION_SCHEMA row per sample, in the samples' order."""
        rows = _slices(samples, series)
        as_of = _col(samples, "as_of")
        installed = _col(samples, "battery_installed_at")
        nominal = _col(samples, "nominal_capacity_mah")
        revision = samples.column("hardware_revision").to_pylist()
        cols = {
            n: _col(series, n)
            for n in (
                "ts",
                "battery_mv",
                "temperature_c",
                "radio_tx",
                "radio_rx",
                "valve_travel_total",
                "motor_ms",
            )
        }
        out = np.full((samples.num_rows, 6), np.nan)
        for i, part in enumerate(rows):
            hw = revision[i] if revision[i] in FLOOR_MAH_PER_DAY else DEFAULT_REVISION
            out[i] = self._one({n: v[part] for n, v in cols.items()}, as_of[i], installed[i], nominal[i], hw)
        arrays = [samples.column("sample_id").combine_chunks()] + [pa.array(out[:, j]) for j in range(6)]
        return pa.Table.from_arrays(arrays, names=["sample_id", *OUTPUT_COLUMNS])

    def _one(
        self, s: dict[str, np.ndarray], as_of: float, installed: float, nominal: float, hw: str
    ) -> np.ndarray:
        ts, mv, temp, total, motor = (
            s["ts"],
            s["battery_mv"],
            s["temperature_c"],
            s["valve_travel_total"],
            s["motor_ms"],
        )
        valid = np.isfinite(mv) & (mv >= _VALID_MV[0]) & (mv <= _VALID_MV[1])
        # Swap: the travel counter resets, or the voltage steps up by more than 0.2 V.
        step_up = np.zeros(len(mv), dtype=bool)
        vi = np.flatnonzero(valid)
        if len(vi) > 1:
            step_up[vi[1:]] = np.diff(mv[vi]) > 200.0
        swaps = np.flatnonzero(np.concatenate([[False], np.diff(total) < -50.0]) | step_up)
        first = int(swaps[-1]) if len(swaps) else 0
        ts, mv, temp, total, motor, valid = (
            ts[first:],
            mv[first:],
            temp[first:],
            total[first:],
            motor[first:],
            valid[first:],
        )
        tx, rx = s["radio_tx"][first:], s["radio_rx"][first:]
        hours = max(len(ts), 1)
        usable = (nominal if np.isfinite(nominal) else 2600.0) * USABLE_SHARE

        soc_v = np.nan
        if valid.any():
            v20 = mv - TEMP_COEFF_MV_PER_C * (temp - 20.0)
            v20 = np.where(motor > 0, v20 + RATED_MOTOR_MA * LOAD_OHM_AT_20C, v20)
            last_day = valid & (ts >= ts[valid][-1] - _US_PER_DAY)
            life = float(np.interp(np.median(v20[last_day]), OCV_ALKALINE[::-1], LIFE[::-1]))
            soc_v = float(np.clip(1.0 - life / LIFE[-2], 0.0, 1.0))

        radio_day = (np.nansum(tx) * TX_MAH + np.nansum(rx) * RX_MAH) / hours * 24.0
        motor_day = np.nansum(motor) * EFFECTIVE_MOTOR_MA[hw] / 3.6e6 / hours * 24.0
        floor_day = FLOOR_MAH_PER_DAY[hw]
        soc_c = np.nan
        if np.isfinite(installed) and len(total) and np.isfinite(total[-1]):
            days_in = max((as_of - installed) / _US_PER_DAY, 0.0)
            used = total[-1] * TRAVEL_MAH_PER_PCT + days_in * (floor_day + radio_day)
            soc_c = float(np.clip(1.0 - used / usable, 0.0, 1.0))
        if np.isfinite(soc_v) and np.isfinite(soc_c):
            soc = VOLTAGE_WEIGHT * soc_v + (1.0 - VOLTAGE_WEIGHT) * soc_c
        else:
            soc = soc_v if np.isfinite(soc_v) else (soc_c if np.isfinite(soc_c) else 0.5)
        remaining = soc * usable

        today = (as_of / _US_PER_DAY) % 365.25  # the epoch is a 1 January
        season_now = float(np.mean(_heating(today - np.arange(1, 31))))
        activity = motor_day / season_now if season_now > 0.1 else TYPICAL_MOTOR_MAH_PER_DAY
        season = _heating(today + np.arange(HORIZON_DAYS))
        daily = floor_day + radio_day + np.where(season > 0, activity * season, SUMMER_MAH_PER_DAY)
        cum = np.cumsum(daily)
        days = float(min(np.searchsorted(cum, remaining), HORIZON_DAYS))
        low, high = INTERVAL
        return np.array([remaining * low, remaining, remaining * high, days * low, days, days * high])
