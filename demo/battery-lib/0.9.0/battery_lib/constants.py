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

# Per hardware revision: sleep floor (µA), motor current (mA), rate penalty of motor pulses, and
# the motor charge per % of valve travel (mAh), fitted per gearbox on the test stand: a dozen bench units
# per revision at 21 °C, so each figure is a few per cent off the fleet's (the stand's units, its
# temperature and its valve bodies are not the field's).
FLOOR_UA = {"A": 23.6, "B": 15.9, "C": 14.3}
MOTOR_MA = {"A": 217.0, "B": 194.0, "C": 126.0}
PULSE_PENALTY = {"A": 1.25, "B": 1.19, "C": 1.08}
TRAVEL_MAH_PER_PCT = {"A": 0.01096, "B": 0.00986, "C": 0.01268}
DEFAULT_REVISION = "B"

# Radio: mean charge per uplink over the fleet's spreading factors, and per downlink.
TX_MAH = 0.0011
RX_MAH = 0.0003

# Relative heating activity per calendar month (January first): the seasonal forecast's shape, fitted on
# the pilot fleet (a milder region than most of today's fleet).
MONTHLY_HEATING = np.array([0.9, 0.85, 0.6, 0.3, 0.08, 0.0, 0.0, 0.0, 0.0, 0.2, 0.6, 0.85])
TYPICAL_TRAVEL_PCT_PER_DAY = 340.0  # valve travel of a median valve in full heating
EXERCISE_PCT_PER_DAY = 100.0 / 7.0  # weekly anti-lock run when the heating is off

VOLTAGE_SIGMA_MV = 40.0  # reading noise plus temperature and quantisation residue, as a Gaussian
COULOMB_REL_SIGMA = 0.10  # multiplicative error of the event-count charge
HORIZON_DAYS = 2500
Z90 = 1.2816
