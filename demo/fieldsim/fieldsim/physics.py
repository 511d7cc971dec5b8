"""Vectorised battery and climate physics of the simulated fleet (pure numpy, no state)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from fieldsim import constants as k

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Chem = NDArray[np.int64] | np.int64  # per element, or one chemistry for a whole matrix


def outdoor_temp(doy: F64, hour: F64) -> F64:
    """Mean outdoor temperature (°C) by day of year and hour: central-European seasons, daily swing."""
    seasonal = 9.5 - 9.5 * np.cos(2 * np.pi * (doy - 20.0) / 365.25)
    return seasonal + 3.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)


def heating_demand(t_out: F64) -> F64:
    """Heating demand 0..1: full below about 3 °C outside, none above 15.5 °C."""
    return np.clip((15.5 - t_out) / 12.0, 0.0, 1.0)


def _diurnal_raw(hour: F64) -> F64:
    return 0.4 + 2.2 * np.exp(-0.5 * ((hour - 6.5) / 1.5) ** 2) + 1.6 * np.exp(-0.5 * ((hour - 18.0) / 2.0) ** 2)


_DIURNAL_MEAN = float(np.mean(_diurnal_raw(np.arange(24, dtype=np.float64))))


def diurnal_moves(hour: F64) -> F64:
    """Relative valve activity over the day (morning and evening set-point changes); mean 1."""
    return _diurnal_raw(hour) / _DIURNAL_MEAN


def usable_life_fraction(chem: I64, cutoff_mv: F64) -> F64:
    """Fraction of the pack's total charge delivered when the resting voltage at 21 °C reaches cut-off."""
    out = np.empty(chem.shape, dtype=np.float64)
    for c in range(len(k.CHEMISTRY)):
        sel = chem == c
        # OCV falls with life: interpolate on the reversed (rising) axis.
        out[sel] = np.interp(cutoff_mv[sel], k.OCV_MV[c][::-1], k.LIFE_POINTS[::-1])
    return out


def ocv_mv(chem: I64, life: F64, temp_c: F64) -> F64:
    """Resting pack voltage (mV) at fraction ``life`` of total charge delivered and temperature."""
    out = np.empty(life.shape, dtype=np.float64)
    for c in range(len(k.CHEMISTRY)):
        sel = chem == c
        out[sel] = np.interp(life[sel], k.LIFE_POINTS, k.OCV_MV[c]) + k.OCV_TEMP_MV_PER_C[c] * (temp_c[sel] - 21.0)
    return out


def resistance_ohm(chem: I64, life: F64, temp_c: F64) -> F64:
    """Pack internal resistance: Arrhenius in temperature, rising steeply towards end of life."""
    arrhenius = np.exp(k.R_ARRHENIUS_K * (1.0 / (temp_c + 273.15) - 1.0 / 294.15))
    return k.R0_OHM[chem] * arrhenius * (1.0 + 6.0 * np.clip(life, 0.0, 1.2) ** 4)


def capacity_factor(chem: Chem, temp_c: F64) -> F64:
    """Deliverable capacity relative to 21 °C (cold costs more than warmth gives)."""
    delta = temp_c - 21.0
    return np.where(delta < 0, 1.0 + k.CAP_COLD_PER_C[chem] * delta, 1.0 + k.CAP_WARM_PER_C[chem] * delta)


def self_discharge_per_hour(chem: Chem, temp_c: F64) -> F64:
    """Fraction of total capacity lost per hour to self-discharge (doubles every 6 °C above 21 °C)."""
    return k.SELF_DISCHARGE_PER_YEAR[chem] / 8766.0 * np.exp2((temp_c - 21.0) / 6.0)


def spreading_factor(rssi_dbm: F64) -> I64:
    """LoRa spreading factor the network assigns for a link budget (weaker link, slower and costlier)."""
    return np.asarray(np.clip(np.round(7.0 + (-rssi_dbm - 98.0) / 5.0), 7, 12), dtype=np.int64)


def tx_mah(sf: I64) -> F64:
    """Charge of one uplink including receive windows: airtime doubles per spreading-factor step."""
    return np.asarray(k.TX_MAH_SF7 * np.exp2(sf - 7.0), dtype=np.float64)
