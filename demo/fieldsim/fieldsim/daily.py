"""Expected daily consumption of a device: the forward model behind the runtime truth and the history.

The hourly simulation draws its events from the same rates, so a day of hourly simulation and a day of
this model agree in expectation; the truth of remaining runtime is the day this model's cumulative
depletion reaches the pack's usable charge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fieldsim import constants as k
from fieldsim import physics
from fieldsim.physics import F64, I64

_DOY = np.arange(367, dtype=np.float64)
_HOURS = np.arange(24, dtype=np.float64)
_TOUT = physics.outdoor_temp(_DOY[:, None], _HOURS[None, :])
_HEAT = physics.heating_demand(_TOUT)
# Per day of year: mean outdoor temperature, mean demand, and demand weighted by the daily move profile.
TOUT_DAY = _TOUT.mean(axis=1)
HEAT_DAY = _HEAT.mean(axis=1)
HEAT_MOVES_DAY = (_HEAT * physics.diurnal_moves(_HOURS)[None, :]).mean(axis=1)
SEASON_OFF_DAY = TOUT_DAY > 14.0  # summer mode: no control moves, weekly anti-lock run instead


@dataclass(frozen=True)
class Traits:
    """Per-device (or per-pack) constants the consumption depends on; all arrays of equal length."""

    hw: I64
    fw: I64
    sw: I64
    chem: I64
    activity: F64
    room_off: F64
    mount: F64
    sf: I64
    total_mah: F64
    usable_mah: F64


def move_rate_factor(t: Traits) -> F64:
    """Device-specific multiplier of the fleet's peak valve-move rate."""
    return np.asarray(
        k.MOVES_PER_HOUR_PEAK
        * t.activity
        * k.MOVE_FACTOR[t.fw]
        * k.SOFTWARE_MOVE_FACTOR[t.sw]
        * np.clip(1.0 - 0.04 * t.room_off, 0.5, 1.5)
    )


def motor_mah_per_pct(hw: I64) -> F64:
    """Charge drawn by the motor per % of valve travel (coulombs only, before the pulse penalty)."""
    return np.asarray(k.MOTOR_MS_PER_PCT[hw] * k.MOTOR_MA[hw] / 3.6e6, dtype=np.float64)


def battery_temp(room_c: F64, mount: F64, heat: F64) -> F64:
    """Battery compartment temperature: room plus a share of the radiator's excess when heating."""
    return room_c + mount * 15.0 * heat


def expected_daily(t: Traits, doy: F64) -> tuple[F64, F64]:
    """Return the expected depletion (fraction of usable charge) and valve travel (%) per day.

    ``doy`` is (n, D): day of year of each forecast day for each of the n traits rows.
    """
    day = np.floor(doy).astype(np.int64) % 366
    heat_moves = HEAT_MOVES_DAY[day]
    off = SEASON_OFF_DAY[day]
    moves = np.where(off, 0.0, move_rate_factor(t)[:, None] * heat_moves * 24.0)
    travel = moves * k.MEAN_TRAVEL_PCT + np.where(off, k.EXERCISE_TRAVEL_PCT / 7.0, 0.0)
    motor = travel * (motor_mah_per_pct(t.hw) * k.PULSE_PENALTY[t.hw])[:, None]
    tx = k.TX_PER_HOUR[t.fw][:, None] * 24.0 + moves + np.where(off, 1.0 / 7.0, 0.0)
    radio = tx * physics.tx_mah(t.sf)[:, None] + k.RX_PER_HOUR[t.fw][:, None] * 24.0 * k.RX_MAH
    floor = ((k.SLEEP_UA[t.hw] + k.EXTRA_FLOOR_UA[t.fw]) * 24.0 / 1000.0)[:, None]
    tout = TOUT_DAY[day]
    room = 20.0 + t.room_off[:, None] + 0.5 * np.maximum(tout - 18.0, 0.0)
    temp = battery_temp(room, t.mount[:, None], HEAT_DAY[day])
    chem = np.broadcast_to(t.chem[:, None], temp.shape)
    self_mah = physics.self_discharge_per_hour(chem, temp) * 24.0 * t.total_mah[:, None]
    cap = t.usable_mah[:, None] * physics.capacity_factor(chem, temp)
    return (floor + radio + motor + self_mah) / cap, travel


# How far the forward model looks: a pack that would last longer is reported at this many days, flagged
# censored (the figure is a lower bound).
RUNTIME_HORIZON_DAYS = 1500


def days_to_empty(t: Traits, doy0: F64, used: F64, horizon_days: int = RUNTIME_HORIZON_DAYS) -> F64:
    """Days from day-of-year ``doy0`` until a pack with ``used`` fraction spent reaches its cut-off.

    A pack that would outlast ``horizon_days`` gets exactly ``horizon_days``.
    """
    doy = doy0[:, None] + np.arange(horizon_days, dtype=np.float64)[None, :]
    rate, _ = expected_daily(t, doy)
    cum = np.cumsum(rate, axis=1)
    need = np.clip(1.0 - used, 0.0, None)
    reached = cum >= need[:, None]
    idx = np.where(reached.any(axis=1), reached.argmax(axis=1), horizon_days - 1)
    rows = np.arange(len(need))
    before = np.where(idx > 0, cum[rows, np.maximum(idx - 1, 0)], 0.0)
    # Linear within the day the threshold is crossed, so runtimes are not rounded to whole days.
    frac = np.clip((need - before) / rate[rows, idx], 0.0, 1.0)
    return idx + frac
