"""Voltage lookup: pack voltage to state of charge by a piecewise-linear table, fixed daily consumption."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Pack voltage (mV) to state of charge; 2.4 V is empty, 3.0 V full.
_TABLE_MV = np.array([2400.0, 2550.0, 2700.0, 2850.0, 3000.0])
_TABLE_SOC = np.array([0.0, 0.25, 0.55, 0.85, 1.0])
FIXED_MAH_PER_DAY = 3.0
SPREAD = 0.30


@dataclass(frozen=True)
class Estimate:
    """Point estimates with a fixed ±30 % band."""

    remaining_mah: float
    runtime_days: float
    remaining_mah_low: float
    remaining_mah_high: float
    runtime_days_low: float
    runtime_days_high: float


def estimate(voltage_mv: float, temperature_c: float, nominal_mah: float = 2600.0) -> Estimate:
    """Estimate remaining charge and runtime from the latest pack voltage.

    ``temperature_c`` is accepted for forward compatibility and not used by this release.
    """
    soc = float(np.interp(voltage_mv, _TABLE_MV, _TABLE_SOC))
    remaining = soc * nominal_mah
    runtime = remaining / FIXED_MAH_PER_DAY
    return Estimate(
        remaining_mah=remaining,
        runtime_days=runtime,
        remaining_mah_low=remaining * (1.0 - SPREAD),
        remaining_mah_high=remaining * (1.0 + SPREAD),
        runtime_days_low=runtime * (1.0 - SPREAD),
        runtime_days_high=runtime * (1.0 + SPREAD),
    )
