"""The simulated world's fixed parameters: hardware revisions, firmware versions and chemistries.

Numbers follow shared/notes/battery-domain.md (sections 1-2); the per-revision motor figures encode the
rev C gearbox trap of section 6 (2.5x the run time per % travel at 0.6x the current = 1.5x the charge).
"""

from __future__ import annotations

import numpy as np

HARDWARE = ("A", "B", "C")
HARDWARE_SHARE = np.array([0.25, 0.60, 0.15])
SLEEP_UA = np.array([25.0, 15.0, 15.0])  # whole-device floor current
MOTOR_MA = np.array([210.0, 200.0, 120.0])
MOTOR_MS_PER_PCT = np.array([150.0, 150.0, 375.0])
PULSE_PENALTY = np.array([1.30, 1.15, 1.05])  # motor charge counts more than its coulombs (rate effect)
LOADED_READING_SHARE = np.array([0.9, 0.15, 0.15])  # rev A samples the battery during motor runs
QUANT_MV = np.array([20, 10, 10])
CUTOFF_MV = np.array([2400, 2300, 2300])

FIRMWARE = ("1.4.2", "1.5.0", "1.6.1")
FIRMWARE_SHARE = np.array([0.30, 0.45, 0.25])
TX_PER_HOUR = np.array([12.0, 6.0, 6.0])
RX_PER_HOUR = np.array([3.0, 1.5, 1.5])
MOVE_FACTOR = np.array([1.0, 0.8, 0.8])  # 1.5.0 widened the dead band: fewer valve moves
EXTRA_FLOOR_UA = np.array([0.0, 0.0, 12.0])  # 1.6.1 regression: a peripheral left powered
LATEST_FIRMWARE = len(FIRMWARE) - 1
UPGRADE_PROB_PER_MONTH = 0.25

SOFTWARE = ("ctl-3.1", "ctl-3.2")
SOFTWARE_MOVE_FACTOR = np.array([1.0, 0.92])
SOFTWARE_CHANGE_PROB_PER_MONTH = 0.08

CHEMISTRY = ("alkaline", "lithium")
NOMINAL_MAH = np.array([2600.0, 3000.0])
LITHIUM_SHARE_AT_SWAP = 0.05
MIXED_CELLS_SHARE = 0.10  # user swaps with used or mixed cells: pack = weaker cell

# Pack OCV at 21 °C over the fraction of total charge delivered (alkaline: the 2xAA field curve of
# notes 1.3; lithium Li/FeS2: "almost square").
LIFE_POINTS = np.array([0.0, 0.10, 0.25, 0.50, 0.75, 0.85, 0.90, 0.95, 0.98, 1.00])
OCV_MV = np.array(
    [
        [2990.0, 2920.0, 2840.0, 2700.0, 2600.0, 2530.0, 2490.0, 2420.0, 2370.0, 2230.0],
        [3560.0, 3330.0, 3260.0, 3210.0, 3160.0, 3120.0, 3060.0, 2900.0, 2650.0, 2230.0],
    ]
)
OCV_TEMP_MV_PER_C = np.array([1.2, 0.4])
R0_OHM = np.array([0.30, 0.22])  # fresh pack at 21 °C
R_ARRHENIUS_K = 1960.0  # E91: 0.15 ohm at 21 °C, 0.10 at 40 °C, 0.9 at -40 °C per cell (notes 1.4)
CAP_COLD_PER_C = np.array([0.00625, 0.003])  # -10 % at 5 °C for alkaline
CAP_WARM_PER_C = np.array([0.0015, 0.0008])  # +3 % at 40 °C
SELF_DISCHARGE_PER_YEAR = np.array([0.02, 0.005])  # at 21 °C, doubling every 6 °C above

# Radio: charge per message by LoRa spreading factor SF7..SF12 (notes 2: 2 mC at SF7).
TX_MAH_SF7 = 0.00056
RX_MAH = 0.0003
SEARCH_RADIO_FACTOR = 2.5  # offline devices keep searching for their network

MOVES_PER_HOUR_PEAK = 1.6
MEAN_TRAVEL_PCT = 9.0
CALIBRATION_TRAVEL_PCT = 200.0  # a full open-close run after every battery insertion
EXERCISE_TRAVEL_PCT = 100.0  # weekly anti-lock run outside the heating season
