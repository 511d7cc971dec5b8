"""The hourly fleet simulation: seeded, deterministic, vectorised over devices in fixed-size chunks.

Each chunk of CHUNK devices draws from its own generator seeded with (seed, chunk index), so memory stays
bounded for any fleet size and the same (seed, devices, window) always gives the same fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from fieldsim import constants as k
from fieldsim import daily, physics
from fieldsim.fleet import ChunkResult, Fleet, SimConfig, assemble
from fieldsim.physics import F64, I64

CHUNK = 1024
MAX_PACKS = 4  # the initial pack plus up to three swaps inside the window
_HISTORY_WEEKS = 160  # longest life of a pack in place at the window start


@dataclass(frozen=True)
class _Grid:
    start: datetime
    hours: int
    doy: F64
    hour_of_day: F64
    t_out: F64
    heat: F64
    season_off: np.ndarray  # bool per hour


def _grid(cfg: SimConfig) -> _Grid:
    n_hours = int((cfg.data_end - cfg.data_start).total_seconds() // 3600)
    stamps = np.datetime64(cfg.data_start.replace(tzinfo=None), "h") + np.arange(n_hours)
    year_start = stamps.astype("datetime64[Y]").astype("datetime64[h]")
    hours_in_year = (stamps - year_start).astype(np.int64).astype(np.float64)
    doy = hours_in_year / 24.0
    hod = hours_in_year % 24.0
    # Weather is shared by the whole fleet (one region): an AR(1) anomaly on top of the seasonal mean.
    wrng = np.random.default_rng([cfg.seed, 0xC11A7E])
    shocks = wrng.normal(0.0, 0.55, n_hours)
    anomaly = np.empty(n_hours)
    level = wrng.normal(0.0, 3.0)
    for h in range(n_hours):
        level = 0.985 * level + shocks[h]
        anomaly[h] = level
    t_out = physics.outdoor_temp(doy, hod) + anomaly
    season_off = daily.SEASON_OFF_DAY[np.floor(doy).astype(np.int64) % 366]
    return _Grid(cfg.data_start, n_hours, doy, hod, t_out, physics.heating_demand(t_out), season_off)


def simulate(cfg: SimConfig) -> Fleet:
    """Simulate ``cfg.devices`` devices hourly over the configured window and return all frames."""
    grid = _grid(cfg)
    chunks = [
        _chunk(cfg, grid, index, first, min(CHUNK, cfg.devices - first))
        for index, first in enumerate(range(0, cfg.devices, CHUNK))
    ]
    return assemble(cfg, chunks)


def _pack_draws(rng: np.random.Generator, n: int) -> tuple[I64, F64]:
    chem = (rng.random((n, MAX_PACKS)) < k.LITHIUM_SHARE_AT_SWAP).astype(np.int64)
    alkaline = np.clip(rng.normal(2750.0, 280.0, (n, MAX_PACKS)), 1600.0, 3300.0)
    lithium = np.clip(rng.normal(3000.0, 90.0, (n, MAX_PACKS)), 2700.0, 3300.0)
    total = np.where(chem == 1, lithium, alkaline)
    mixed = rng.random((n, MAX_PACKS)) < k.MIXED_CELLS_SHARE
    mixed[:, 0] = False  # the pack in place at the start was installed by a technician
    total = np.where(mixed, total * rng.uniform(0.45, 0.85, (n, MAX_PACKS)), total)
    return chem, total


def _chunk(cfg: SimConfig, grid: _Grid, index: int, first: int, n: int) -> ChunkResult:
    rng = np.random.default_rng([cfg.seed, index])
    n_hours = grid.hours
    months = n_hours / 730.0
    rows = np.arange(n)
    hours = np.arange(n_hours)

    hw = rng.choice(len(k.HARDWARE), n, p=k.HARDWARE_SHARE)
    fw0 = rng.choice(len(k.FIRMWARE), n, p=k.FIRMWARE_SHARE)
    sw0 = (rng.random(n) < 0.3).astype(np.int64)
    activity = rng.lognormal(0.0, 0.35, n)
    room_off = rng.normal(0.0, 1.5, n)
    mount = np.where(rng.random(n) < 0.8, 0.35, 0.08)  # most valves sense on the radiator, some remotely
    rssi = rng.normal(-100.0, 8.0, n)
    sf = physics.spreading_factor(rssi)
    cutoff = k.CUTOFF_MV[hw].astype(np.float64)

    p_upgrade = 1.0 - (1.0 - k.UPGRADE_PROB_PER_MONTH) ** months
    upgrade_h = np.where((rng.random(n) < p_upgrade) & (fw0 < k.LATEST_FIRMWARE), rng.integers(0, n_hours, n), n_hours)
    p_sw = 1.0 - (1.0 - k.SOFTWARE_CHANGE_PROB_PER_MONTH) ** months
    sw_change_h = np.where(rng.random(n) < p_sw, rng.integers(0, n_hours, n), n_hours)
    fw = np.where(hours[None, :] >= upgrade_h[:, None], k.LATEST_FIRMWARE, fw0[:, None])
    sw = np.where(hours[None, :] >= sw_change_h[:, None], 1 - sw0[:, None], sw0[:, None])

    offline = rng.random((n, n_hours)) < 0.01
    for _ in range(2):
        has_gap = rng.random(n) < min(0.2 * months, 0.9)
        gap_start = rng.integers(0, n_hours, n)
        gap_len = np.clip(rng.lognormal(np.log(60.0), 0.7, n), 6.0, 240.0).astype(np.int64)
        offline |= (
            has_gap[:, None]
            & (hours[None, :] >= gap_start[:, None])
            & (hours[None, :] < (gap_start + gap_len)[:, None])
        )
    early_swap_h = np.where(rng.random(n) < 0.012 * months, rng.integers(0, n_hours, n), -1)
    swap_delay = rng.integers(12, 24 * 12, (n, MAX_PACKS))
    pack_chem, pack_total = _pack_draws(rng, n)
    pack_usable = pack_total * physics.usable_life_fraction(pack_chem, cutoff[:, None] + 0.0 * pack_total)
    used0 = rng.uniform(0.0, 0.92, n)

    # History before the window from the expected daily model: when the first pack went in, and the
    # valve travel it has counted since.
    traits0 = daily.Traits(
        hw, fw0, sw0, pack_chem[:, 0], activity, room_off, mount, sf, pack_total[:, 0], pack_usable[:, 0]
    )
    start_doy = float(grid.doy[0])
    # Weekly steps (the mid-week day stands for its week): the history only places the install date.
    back = start_doy - 3.5 - 7.0 * np.arange(_HISTORY_WEEKS, dtype=np.float64)
    back_rate, back_travel = daily.expected_daily(traits0, np.broadcast_to(back % 365.25, (n, _HISTORY_WEEKS)))
    back_cum = np.cumsum(7.0 * back_rate, axis=1)
    weeks_ago = np.minimum((back_cum < used0[:, None]).sum(axis=1), _HISTORY_WEEKS - 1)
    before = np.where(weeks_ago > 0, back_cum[rows, np.maximum(weeks_ago - 1, 0)], 0.0)
    part = np.clip((used0 - before) / (7.0 * back_rate[rows, weeks_ago]), 0.0, 1.0)
    days_ago = np.maximum(np.round(7.0 * (weeks_ago + part)).astype(np.int64), 1)
    travel0 = np.cumsum(7.0 * back_travel, axis=1)[rows, weeks_ago] - (1.0 - part) * 7.0 * back_travel[rows, weeks_ago]
    installed_h = np.zeros((n, MAX_PACKS))
    installed_h[:, 0] = -24.0 * days_ago + rng.integers(0, 24, n)
    device_installed_h = installed_h[:, 0] - 24.0 * rng.uniform(0.0, 600.0, n)

    # ---- hourly drivers -------------------------------------------------------------------------
    device_factor = k.MOVES_PER_HOUR_PEAK * activity * np.clip(1.0 - 0.04 * room_off, 0.5, 1.5)
    move_rate = (
        device_factor[:, None]
        * k.MOVE_FACTOR[fw]
        * k.SOFTWARE_MOVE_FACTOR[sw]
        * (grid.heat * physics.diurnal_moves(grid.hour_of_day))[None, :]
    )
    move_rate[:, grid.season_off] = 0.0
    moves = rng.poisson(move_rate)
    exercise_slot = rng.integers(0, 7, n) * 24 + 11
    exercise = grid.season_off[None, :] & (((hours[None, :] + 0) % 168) == exercise_slot[:, None])

    n_moves = int(moves.sum())
    move_dev, move_hour = np.nonzero(moves)
    per_cell = moves[move_dev, move_hour]
    move_dev = np.repeat(move_dev, per_cell)
    move_hour = np.repeat(move_hour, per_cell)
    move_travel = np.clip(rng.exponential(k.MEAN_TRAVEL_PCT, n_moves), 0.5, 60.0)
    move_noise = rng.lognormal(0.0, 0.06, n_moves)
    flat = move_dev * n_hours + move_hour
    travel = np.bincount(flat, weights=move_travel, minlength=n * n_hours).reshape(n, n_hours)
    travel = travel + exercise * k.EXERCISE_TRAVEL_PCT
    motor_ms_move = move_travel * k.MOTOR_MS_PER_PCT[hw[move_dev]] * move_noise
    motor_ms = np.bincount(flat, weights=motor_ms_move, minlength=n * n_hours).reshape(n, n_hours)
    motor_ms = motor_ms + exercise * (k.EXERCISE_TRAVEL_PCT * k.MOTOR_MS_PER_PCT[hw])[:, None]
    motor_mah = motor_ms * (k.MOTOR_MA[hw] * k.PULSE_PENALTY[hw] / 3.6e6)[:, None]

    tx = rng.poisson(k.TX_PER_HOUR[fw]) + moves + exercise
    rx = rng.poisson(k.RX_PER_HOUR[fw])
    radio_mah = tx * physics.tx_mah(sf)[:, None] + rx * k.RX_MAH
    radio_mah = np.where(offline, radio_mah * k.SEARCH_RADIO_FACTOR, radio_mah)
    floor_mah = (k.SLEEP_UA[hw][:, None] + k.EXTRA_FLOOR_UA[fw]) / 1000.0
    base_mah = floor_mah + radio_mah + motor_mah

    room = (
        20.0
        + room_off[:, None]
        + 0.8 * np.sin(2 * np.pi * (grid.hour_of_day - 8.0) / 24.0)[None, :]
        + 0.5 * np.maximum(grid.t_out - 18.0, 0.0)[None, :]
    )
    temp = daily.battery_temp(room, mount[:, None], grid.heat[None, :]) + rng.normal(0.0, 0.4, (n, n_hours))
    # Hour-major copies: the loop below reads one hour of every device at a time.
    base_t = np.ascontiguousarray(base_mah.T)
    travel_t = np.ascontiguousarray(travel.T)
    self_t = [np.ascontiguousarray(physics.self_discharge_per_hour(np.int64(c), temp).T) for c in (0, 1)]
    cap_t = [np.ascontiguousarray(physics.capacity_factor(np.int64(c), temp).T) for c in (0, 1)]

    # ---- the sequential part: depletion, deaths and swaps ---------------------------------------
    pack = np.zeros(n, dtype=np.int64)
    used = used0.copy()
    dead = np.zeros(n, dtype=bool)
    swap_at = np.full(n, -1)
    travel_total = travel0.copy()
    used_t = np.empty((n_hours, n))
    pack_t = np.empty((n_hours, n), dtype=np.int8)
    dead_t = np.empty((n_hours, n), dtype=bool)
    travel_total_t = np.empty((n_hours, n))
    calib = np.zeros((n, n_hours), dtype=bool)
    died_h = np.full((n, MAX_PACKS), np.nan)
    removed_h = np.full((n, MAX_PACKS), np.nan)
    used_at_removal = np.full((n, MAX_PACKS), np.nan)
    calib_mah = k.CALIBRATION_TRAVEL_PCT * daily.motor_mah_per_pct(hw) * k.PULSE_PENALTY[hw]
    lithium_now = pack_chem[:, 0] == 1
    total_now = pack_total[:, 0].copy()
    usable_now = pack_usable[:, 0].copy()
    any_lithium = bool(pack_chem.any())
    for h in range(n_hours):
        alive = ~dead
        if any_lithium:
            self_h = np.where(lithium_now, self_t[1][h], self_t[0][h])
            cap_h = np.where(lithium_now, cap_t[1][h], cap_t[0][h])
        else:
            self_h, cap_h = self_t[0][h], cap_t[0][h]
        rate = (base_t[h] + self_h * total_now) / (usable_now * cap_h)
        used = np.where(alive, used + rate, used)
        travel_total = np.where(alive, travel_total + travel_t[h], travel_total)
        died = alive & (used >= 1.0)
        if died.any():
            dead |= died
            died_h[died, pack[died]] = h + 1.0 - (used[died] - 1.0) / rate[died]
            used[died] = 1.0
            swap_at[died] = h + swap_delay[died, pack[died]]
        swap = (dead & (swap_at == h)) | (~dead & (early_swap_h == h))
        if swap.any():
            removed_h[swap, pack[swap]] = h
            used_at_removal[swap, pack[swap]] = used[swap]
            pack[swap] = np.minimum(pack[swap] + 1, MAX_PACKS - 1)
            lithium_now[swap] = pack_chem[swap, pack[swap]] == 1
            total_now[swap] = pack_total[swap, pack[swap]]
            usable_now[swap] = pack_usable[swap, pack[swap]]
            installed_h[swap, pack[swap]] = h
            used[swap] = calib_mah[swap] / usable_now[swap]
            travel_total[swap] = k.CALIBRATION_TRAVEL_PCT
            dead[swap] = False
            calib[swap, h] = True
        used_t[h] = used
        pack_t[h] = pack
        dead_t[h] = dead
        travel_total_t[h] = travel_total
    used_mat, dead_mat, travel_mat = used_t.T, dead_t.T, travel_total_t.T
    pack_mat = pack_t.T

    # ---- what the device reports ----------------------------------------------------------------
    pack_idx = pack_mat.astype(np.int64)
    chem_mat = pack_chem[rows[:, None], pack_idx]
    life = used_mat * physics.usable_life_fraction(chem_mat, np.broadcast_to(cutoff[:, None], used_mat.shape))
    ocv = physics.ocv_mv(chem_mat, life, temp)
    loaded = (motor_ms > 0) & (rng.random((n, n_hours)) < k.LOADED_READING_SHARE[hw][:, None])
    sag = np.where(loaded, k.MOTOR_MA[hw][:, None] * physics.resistance_ohm(chem_mat, life, temp), 0.0)
    volts = ocv - sag + rng.normal(0.0, 6.0, (n, n_hours))
    quant = k.QUANT_MV[hw][:, None]
    mv = (np.round(volts / quant) * quant).astype(np.int64)
    glitch = rng.random((n, n_hours))
    mv = np.where(glitch < 0.0008, mv * 2, np.where(glitch < 0.0015, 655, mv))  # scaling bug, dropout
    failed = rng.random((n, n_hours)) < 0.01
    reported_temp = np.round(temp + rng.normal(0.0, 0.2, (n, n_hours)), 1)
    rssi_h = np.round(rssi[:, None] + rng.normal(0.0, 3.0, (n, n_hours)))
    present = ~offline & ~dead_mat

    # ---- capacity tests (ground truth) ----------------------------------------------------------
    tests: list[tuple[I64, I64, F64]] = []
    for month_start, month_end in cfg.test_month_hours():
        has = rng.random(n) < cfg.test_share
        at = rng.integers(month_start, month_end, n)
        minute = rng.integers(1, 60, n)
        ok = has & ~dead_mat[rows, at] & (month_start >= 0) & (month_end <= n_hours)
        tests.append((rows[ok], at[ok], minute[ok].astype(np.float64)))

    # Packs still in place at the end (or taken out early) run on in the daily model to their cut-off.
    need_dev, need_pack = np.nonzero(np.isnan(died_h) & (pack_idx[:, -1:] >= np.arange(MAX_PACKS)[None, :]))
    leave_h = np.where(np.isnan(removed_h[need_dev, need_pack]), float(n_hours), removed_h[need_dev, need_pack])
    leave_used = np.where(
        np.isnan(removed_h[need_dev, need_pack]), used_mat[need_dev, -1], used_at_removal[need_dev, need_pack]
    )
    fw_end, sw_end = fw[need_dev, -1], sw[need_dev, -1]
    forward = daily.Traits(
        hw[need_dev],
        fw_end,
        sw_end,
        pack_chem[need_dev, need_pack],
        activity[need_dev],
        room_off[need_dev],
        mount[need_dev],
        sf[need_dev],
        pack_total[need_dev, need_pack],
        pack_usable[need_dev, need_pack],
    )
    leave_doy = start_doy + leave_h / 24.0
    # A snapshot has no capacity tests, so nobody needs the (costly) truth of when its packs run out.
    if cfg.test_months and len(need_dev):
        days_left = daily.days_to_empty(forward, leave_doy, leave_used)
    else:
        days_left = np.full(len(need_dev), np.nan)
    died_h[need_dev, need_pack] = leave_h + 24.0 * days_left
    # Their runtime is the model's estimate, not a day anyone saw; at the horizon it is only a lower bound.
    runtime_estimated = np.zeros((n, MAX_PACKS), dtype=bool)
    runtime_estimated[need_dev, need_pack] = True
    runtime_censored = np.zeros((n, MAX_PACKS), dtype=bool)
    runtime_censored[need_dev, need_pack] = days_left >= daily.RUNTIME_HORIZON_DAYS

    return ChunkResult(
        first=first,
        n=n,
        hw=hw,
        fw0=fw0,
        upgrade_h=upgrade_h,
        sw0=sw0,
        sw_change_h=sw_change_h,
        device_installed_h=device_installed_h,
        activity=activity,
        sf=sf,
        mount=mount,
        present=present,
        mv=mv,
        mv_null=failed,
        temp=reported_temp,
        tx=tx,
        rx=rx,
        rssi=rssi_h,
        travel_total=travel_mat,
        move_dev=move_dev,
        move_hour=move_hour,
        move_travel=move_travel,
        motor_ms_move=motor_ms_move,
        exercise=exercise,
        calib=calib,
        hw_ms_per_pct=k.MOTOR_MS_PER_PCT[hw],
        pack_chem=pack_chem,
        pack_total=pack_total,
        pack_usable=pack_usable,
        installed_h=installed_h,
        removed_h=removed_h,
        died_h=died_h,
        runtime_estimated=runtime_estimated,
        runtime_censored=runtime_censored,
        pack_count=pack_idx[:, -1] + 1,
        pack_mat=pack_idx,
        used_mat=used_mat,
        tests=tests,
    )
