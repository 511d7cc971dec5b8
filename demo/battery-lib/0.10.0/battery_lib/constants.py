"""Constants fitted offline on returned packs and lab runs (no training happens at import)."""

from __future__ import annotations

import numpy as np

# Pack OCV (mV) at 21 °C over the fraction of total charge delivered, per chemistry.
LIFE = np.array([0.0, 0.10, 0.25, 0.50, 0.75, 0.85, 0.90, 0.95, 0.98, 1.00])
OCV = {
    "alkaline": np.array([2990.0, 2920.0, 2840.0, 2700.0, 2600.0, 2530.0, 2490.0, 2420.0, 2370.0, 2230.0]),
    "lithium": np.array([3560.0, 3330.0, 3260.0, 3210.0, 3160.0, 3120.0, 3060.0, 2900.0, 2650.0, 2230.0]),
}
OCV_TEMP_MV_PER_C = {"alkaline": 1.2, "lithium": 0.4}
# Capacity prior of a pack to 2.2 V: mean and spread across brands and batches.
CAPACITY_PRIOR = {"alkaline": (2750.0, 290.0), "lithium": (3000.0, 100.0)}
SELF_DISCHARGE_PER_DAY = {"alkaline": 0.02 / 365.0, "lithium": 0.005 / 365.0}

# Per hardware revision: sleep floor (µA). Motor charge per % of valve travel (mAh, pulse penalty
# included) was refitted on the 2025 test stand, which had revisions A and B; any other revision uses
# the fleet's majority revision B.
FLOOR_UA = {"A": 24.1, "B": 15.6, "C": 14.6}
TRAVEL_MAH_PER_PCT = {"A": 0.01112, "B": 0.00971}
DEFAULT_REVISION = "B"
# Firmware builds with a known change of the sleep floor (µA): 1.6.1 leaves a peripheral powered
# (measured on six returned 1.6.1 devices).
FIRMWARE_EXTRA_UA = {"1.6.1": 10.7}

# Radio: mean charge per uplink over the fleet's spreading factors, and per downlink.
TX_MAH = 0.0011
RX_MAH = 0.0003

# Degree-day model of heating activity, fitted on three winters of valve activity against one weather
# station's record: outdoor mean temperature by day of year, daily swing, and the linear demand ramp
# between two temperatures. Three winters are few, and the station is not where every valve is.
OUTDOOR_MEAN_C, OUTDOOR_AMPLITUDE_C, OUTDOOR_COLDEST_DOY, OUTDOOR_SWING_C = 9.3, 9.8, 22.0, 2.8
HEATING_FULL_BELOW_C, HEATING_OFF_ABOVE_C = 3.9, 15.9
SUMMER_MODE_ABOVE_C = 13.8  # daily mean outdoor temperature that switches valves to summer mode
TYPICAL_TRAVEL_PCT_PER_DAY = 340.0  # valve travel of a median valve in full heating
EXERCISE_PCT_PER_DAY = 100.0 / 7.0  # weekly anti-lock run when the heating is off

VOLTAGE_SIGMA_MV = 10.0  # interval likelihood of quantised readings: less residue than 0.9 assumed
COULOMB_REL_SIGMA = 0.10  # multiplicative error of the event-count charge
HORIZON_DAYS = 2500
Z90 = 1.2816
