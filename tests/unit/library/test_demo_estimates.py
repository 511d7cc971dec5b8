"""The demo library versions carry their own estimates, not the simulator's constants (issue 13).

A version that knew the simulator's figures would win its comparisons by construction, and the demo's
rankings would prove nothing. Each estimate must be off the simulated world by at least ESTIMATE_ERROR
(what a real team's test stand, returned packs and weather record would leave) and by no more than a
plausible fit's error, so the versions still differ for the reasons the demo tells.
"""

from __future__ import annotations

import numpy as np
from fieldsim import constants as world
from fieldsim import daily, physics

from tests.fixtures.demo_library import import_demo_library

ESTIMATE_ERROR = 0.01  # relative: at least 1 % off the simulator's figure
PLAUSIBLE_ERROR = 0.15  # and at most 15 %
REVISIONS = world.HARDWARE


def _relative_errors(estimates: dict[str, float], truth: np.ndarray) -> dict[str, float]:
    return {rev: abs(estimates[rev] / float(truth[i]) - 1.0) for i, rev in enumerate(REVISIONS) if rev in estimates}


def _assert_own_estimate(name: str, errors: dict[str, float]) -> None:
    assert errors, f"{name}: no revision estimated"
    for rev, error in errors.items():
        assert error >= ESTIMATE_ERROR, f"{name}[{rev}] is the simulator's own figure (off by {error:.2%})"
        assert error <= PLAUSIBLE_ERROR, f"{name}[{rev}] is off by {error:.1%}: no fit is that wrong"


def test_0_9_0_fitted_its_per_revision_figures_itself() -> None:
    c = import_demo_library("0.9.0").predictor.c
    travel_truth = world.MOTOR_MS_PER_PCT * world.MOTOR_MA / 3.6e6 * world.PULSE_PENALTY
    _assert_own_estimate("FLOOR_UA", _relative_errors(c.FLOOR_UA, world.SLEEP_UA))
    _assert_own_estimate("MOTOR_MA", _relative_errors(c.MOTOR_MA, world.MOTOR_MA))
    _assert_own_estimate("PULSE_PENALTY", _relative_errors(c.PULSE_PENALTY, world.PULSE_PENALTY))
    _assert_own_estimate("TRAVEL_MAH_PER_PCT", _relative_errors(c.TRAVEL_MAH_PER_PCT, travel_truth))


def test_0_10_0_fitted_its_floors_and_its_firmware_figure_itself() -> None:
    c = import_demo_library("0.10.0").predictor.c
    travel_truth = world.MOTOR_MS_PER_PCT * world.MOTOR_MA / 3.6e6 * world.PULSE_PENALTY
    _assert_own_estimate("FLOOR_UA", _relative_errors(c.FLOOR_UA, world.SLEEP_UA))
    _assert_own_estimate("TRAVEL_MAH_PER_PCT", _relative_errors(c.TRAVEL_MAH_PER_PCT, travel_truth))
    firmware = {f: float(world.EXTRA_FLOOR_UA[i]) for i, f in enumerate(world.FIRMWARE) if world.EXTRA_FLOOR_UA[i]}
    assert set(c.FIRMWARE_EXTRA_UA) == set(firmware)  # it knows which build regressed, not by how much
    for build, truth in firmware.items():
        error = abs(c.FIRMWARE_EXTRA_UA[build] / truth - 1.0)
        assert ESTIMATE_ERROR <= error <= PLAUSIBLE_ERROR, (build, c.FIRMWARE_EXTRA_UA[build], truth)


def test_0_10_0_heating_model_is_its_own_fit_not_the_simulated_climate() -> None:
    predictor = import_demo_library("0.10.0").predictor
    doy = np.arange(365.0)
    hours = np.arange(24.0)
    simulated = physics.heating_demand(physics.outdoor_temp(doy[:, None], hours[None, :])).mean(axis=1)
    simulated = np.where(daily.SEASON_OFF_DAY[doy.astype(np.int64)], 0.0, simulated)
    modelled = predictor._heating(doy)  # the version's own degree-day curve, day by day
    gap = np.abs(modelled - simulated)
    # Off somewhere in the shoulder seasons (where a fit of three winters is weakest) and on average,
    # yet the same winter: full heating in January, none in July.
    assert gap.max() >= 0.05, f"0.10.0 reproduces the simulated heating curve (max gap {gap.max():.3f})"
    assert gap.mean() <= 0.1, f"0.10.0's heating curve is off by {gap.mean():.3f} on average"
    assert modelled[15] > 0.9 and modelled[196] == 0.0
