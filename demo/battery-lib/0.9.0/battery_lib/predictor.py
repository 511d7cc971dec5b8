"""Generation-2 predictor: a Gaussian fusion of coulomb counting and the resting-voltage likelihood.

State per sample: remaining usable charge R (mAh). Two estimates of R are fused by precision:
- coulomb: capacity prior minus the charge counted from valve travel (per gearbox), radio messages,
  the sleep floor and self-discharge since the pack went in;
- voltage: the temperature-compensated resting voltage through the chemistry's OCV curve; its
  variance follows the curve's slope, so the flat middle of life says little and the knee a lot.
The runtime is the day a seasonal consumption forecast, scaled to the device's observed activity,
has used up R; quantiles come from the posterior of R and a consumption spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from battery_lib import constants as c

_US_PER_DAY = 86_400_000_000
_VALID_MV = (1800.0, 3900.0)
OUTPUT_COLUMNS = (
    "capacity_mah_p10", "capacity_mah_p50", "capacity_mah_p90",
    "runtime_days_p10", "runtime_days_p50", "runtime_days_p90",
)  # fmt: skip


@dataclass(frozen=True)
class _Series:
    ts: np.ndarray
    mv: np.ndarray
    temp: np.ndarray
    tx: np.ndarray
    rx: np.ndarray
    travel_total: np.ndarray
    motor_ms: np.ndarray


def _f64(table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name).combine_chunks()
    return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _micros(table: pa.Table, name: str) -> np.ndarray:
    column = pc.cast(table.column(name).combine_chunks(), pa.timestamp("us", "UTC"))
    values = pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float64)  # nulls become NaN


def _slices(samples: pa.Table, series: pa.Table) -> list[slice]:
    """Row range of each sample's series (series is sorted by sample_id, ts)."""
    ids = series.column("sample_id").combine_chunks()
    encoded = pc.dictionary_encode(ids)
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False))
    names = encoded.dictionary.to_pylist()
    bounds: dict[str, slice] = {}
    if len(codes):
        change = np.flatnonzero(np.diff(codes)) + 1
        starts = np.concatenate([[0], change])
        ends = np.concatenate([change, [len(codes)]])
        for s, e in zip(starts, ends, strict=True):
            bounds[names[codes[s]]] = slice(int(s), int(e))
    return [bounds.get(sid, slice(0, 0)) for sid in samples.column("sample_id").to_pylist()]


def _heating(doy: np.ndarray) -> np.ndarray:
    month = np.clip((np.asarray(doy) % 365.25) / 30.44, 0, 11.999).astype(int)
    return np.asarray(c.MONTHLY_HEATING[month], dtype=np.float64)


def _ocv_life(chem: str, mv: float, temp: float) -> tuple[float, float]:
    """Fraction of total charge delivered for a resting voltage, and the curve's slope there (mV/unit)."""
    table = c.OCV[chem]
    v21 = mv - c.OCV_TEMP_MV_PER_C[chem] * (temp - 21.0)
    life = float(np.interp(v21, table[::-1], c.LIFE[::-1]))
    i = int(np.clip(np.searchsorted(c.LIFE, life, side="right") - 1, 0, len(c.LIFE) - 2))
    slope = float((table[i] - table[i + 1]) / (c.LIFE[i + 1] - c.LIFE[i]))
    return life, slope


def _runtime(daily: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    """Days until the cumulative forecast reaches each remaining charge (linear within a day)."""
    cum = np.cumsum(daily)
    idx = np.searchsorted(cum, remaining)
    idx = np.minimum(idx, len(cum) - 1)
    before = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0)
    frac = np.clip((remaining - before) / daily[idx], 0.0, 1.0)
    return np.asarray(idx + frac, dtype=np.float64)


class Predictor:
    """Predict remaining capacity and runtime for a batch of samples (stateless)."""

    def predict(self, samples: pa.Table, series: pa.Table) -> pa.Table:
        """Return one PREDICTION_SCHEMA row per sample, in the samples' order."""
        rows = _slices(samples, series)
        as_of = _micros(samples, "as_of")
        installed = _micros(samples, "battery_installed_at")
        hw = samples.column("hardware_revision").to_pylist()
        chem = samples.column("battery_chemistry").to_pylist()
        cutoff = _f64(samples, "cutoff_mv")
        s = _Series(
            ts=_micros(series, "ts"),
            mv=_f64(series, "battery_mv"),
            temp=_f64(series, "temperature_c"),
            tx=_f64(series, "radio_tx"),
            rx=_f64(series, "radio_rx"),
            travel_total=_f64(series, "valve_travel_total"),
            motor_ms=_f64(series, "motor_ms"),
        )
        out = np.full((samples.num_rows, 6), np.nan)
        for i, part in enumerate(rows):
            out[i] = self._one(
                s, part, as_of[i], installed[i], hw[i] or c.DEFAULT_REVISION, chem[i] or "alkaline", cutoff[i]
            )
        arrays = [samples.column("sample_id").combine_chunks()] + [pa.array(out[:, j]) for j in range(6)]
        return pa.Table.from_arrays(arrays, names=["sample_id", *OUTPUT_COLUMNS])

    def _one(
        self, s: _Series, part: slice, as_of: float, installed: float, hw: str, chem: str, cutoff: float
    ) -> np.ndarray:
        hw = hw if hw in c.FLOOR_UA else c.DEFAULT_REVISION
        chem = chem if chem in c.OCV else "alkaline"
        ts, mv, temp = s.ts[part], s.mv[part], s.temp[part]
        tx, rx, total, motor = s.tx[part], s.rx[part], s.travel_total[part], s.motor_ms[part]
        # Only the current pack: a counter reset marks a swap inside the window.
        resets = np.flatnonzero(np.diff(total) < -50.0)
        if len(resets):
            keep = slice(int(resets[-1]) + 1, None)
            ts, mv, temp, tx, rx, total, motor = (
                ts[keep],
                mv[keep],
                temp[keep],
                tx[keep],
                rx[keep],
                total[keep],
                motor[keep],
            )
        hours = max(len(ts), 1)
        cap_mean, cap_sd = c.CAPACITY_PRIOR[chem]
        cutoff_life, _ = _ocv_life(chem, cutoff if np.isfinite(cutoff) else 2300.0, 21.0)
        usable = cap_mean * cutoff_life

        floor_day = c.FLOOR_UA[hw] * 24.0 / 1000.0
        radio_day = (np.nansum(tx) * c.TX_MAH + np.nansum(rx) * c.RX_MAH) / hours * 24.0
        motor_day = np.nansum(motor) * c.MOTOR_MA[hw] * c.PULSE_PENALTY[hw] / 3.6e6 / hours * 24.0
        self_day = c.SELF_DISCHARGE_PER_DAY[chem] * cap_mean

        # Coulomb estimate: charge counted since the pack went in.
        travel_now = float(total[-1]) if len(total) and np.isfinite(total[-1]) else np.nan
        days_in = (as_of - installed) / _US_PER_DAY if np.isfinite(installed) else np.nan
        estimates: list[tuple[float, float]] = []
        if np.isfinite(travel_now) and np.isfinite(days_in) and days_in >= 0:
            used = travel_now * c.TRAVEL_MAH_PER_PCT[hw] + days_in * (floor_day + radio_day + self_day)
            var = (cap_sd * cutoff_life) ** 2 + (c.COULOMB_REL_SIGMA * used) ** 2
            estimates.append((usable - used, var))

        # Voltage estimate from resting readings of the last three days.
        rested = np.isfinite(mv) & (mv >= _VALID_MV[0]) & (mv <= _VALID_MV[1]) & (motor == 0)
        recent = rested & (ts >= (ts[-1] if len(ts) else 0.0) - 3 * _US_PER_DAY)
        if recent.sum() >= 6:
            life, slope = _ocv_life(chem, float(np.median(mv[recent])), float(np.median(temp[recent])))
            remaining_v = (cutoff_life - life) * cap_mean
            sd_life = c.VOLTAGE_SIGMA_MV / max(slope, 50.0)
            var = (sd_life * cap_mean) ** 2 + ((cutoff_life - life) * cap_sd) ** 2
            estimates.append((remaining_v, var))

        if not estimates:
            estimates.append((usable * 0.5, (usable * 0.3) ** 2))
        precision = sum(1.0 / v for _, v in estimates)
        remaining = max(sum(m / v for m, v in estimates) / precision, 0.0)
        sd = (1.0 / precision) ** 0.5

        # Seasonal forecast scaled to this device's activity over the window.
        start_doy = (as_of / _US_PER_DAY) % 365.25  # the epoch is a 1 January
        window_doy = (start_doy - np.arange(1, 31)) % 365.25
        season_now = float(np.mean(_heating(window_doy)))
        future_doy = (start_doy + np.arange(c.HORIZON_DAYS)) % 365.25
        season = _heating(future_doy)
        if season_now > 0.1:
            activity = motor_day / season_now
        else:  # nothing to learn from a summer window: a typical valve of this revision
            activity = c.TYPICAL_TRAVEL_PCT_PER_DAY * c.TRAVEL_MAH_PER_PCT[hw]
        motor_future = np.where(
            season > 0.0, activity * season, c.EXERCISE_PCT_PER_DAY * c.TRAVEL_MAH_PER_PCT[hw]
        )
        daily = floor_day + radio_day + self_day + motor_future
        bounds = np.array([max(remaining - c.Z90 * sd, 0.0), remaining, remaining + c.Z90 * sd])
        days = _runtime(daily, bounds)
        return np.array([bounds[0], bounds[1], bounds[2], days[0] / 1.12, days[1], days[2] * 1.12])
