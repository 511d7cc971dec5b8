"""The gate policy: a YAML file saying how much better a candidate must be, and where it may not be worse.

The burden of proof is on the candidate. Each rule says what the evidence must show for the candidate to
pass; evidence that is too thin holds the release ("insufficient evidence") instead of passing it.
Calibration of the default numbers: bench/gate_calibration.py (figures in bench/results/).
"""

from __future__ import annotations

from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from eval_runner.errors import ConfigError

ErrorMetric = Literal["capacity_abs_error", "capacity_rel_error", "runtime_abs_error", "runtime_rel_error"]
Statistic = Literal["mean", "median", "p90", "p95"]
SegmentColumn = Literal["hardware_revision", "firmware_version"]
CellColumn = Literal["hardware_revision", "firmware_version", "month"]
# Which samples' runtime truth the gate judges on: every one; all but the censored (an estimate at the
# forward model's horizon is a lower bound, so an error against it means little); or only the observed
# (packs that ran out within the record: a clean truth, but few samples and short runtimes only).
TruthSelection = Literal["all", "uncensored", "observed"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PrimaryRule(_Strict):
    """The headline rule, over every paired sample.

    The change (candidate / baseline - 1 of the statistic; negative is better) passes when its one-sided
    upper confidence bound is below zero (the candidate is better, beyond noise) and its point estimate
    is at or below ``-min_improvement`` (better by enough to be worth a fleet rollout).
    """

    min_improvement: float = Field(default=0.05, ge=0.0, lt=1.0)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)


class SegmentRule(_Strict):
    """Non-inferiority in every segment: no hardware revision or firmware version may be worse by ``margin``.

    The candidate must show it: a segment passes when the one-sided upper bound of its change is below
    ``margin``. A segment with fewer than ``min_devices`` devices cannot show anything and holds.
    """

    by: tuple[SegmentColumn, ...] = ("hardware_revision", "firmware_version")
    margin: float = Field(default=0.20, ge=0.0)
    confidence: float = Field(default=0.90, gt=0.5, lt=1.0)
    min_devices: int = Field(default=30, ge=2)


class HarmScreen(_Strict):
    """A screen over finer cells (e.g. hardware x firmware, segment x month) for a clear regression.

    Each cell with at least ``min_devices`` devices is tested for "the change is above zero"; the
    p-values are corrected together (Holm), so the chance that any cell is refused while none truly
    regresses is at most ``family_error``. Finer cells are too small for non-inferiority, so they can
    refuse but never hold.
    """

    cells: tuple[tuple[CellColumn, ...], ...] = (
        ("hardware_revision",),
        ("firmware_version",),
        ("month",),
        ("hardware_revision", "firmware_version"),
        ("hardware_revision", "month"),
        ("firmware_version", "month"),
    )
    family_error: float = Field(default=0.05, gt=0.0, lt=0.5)
    min_devices: int = Field(default=20, ge=2)

    @field_validator("cells")
    @classmethod
    def _distinct_columns(cls, cells: tuple[tuple[CellColumn, ...], ...]) -> tuple[tuple[CellColumn, ...], ...]:
        for cell in cells:
            if not cell or len(set(cell)) != len(cell):
                raise ValueError(f"a cell names one or more distinct columns, got {list(cell)}")
        return cells


class MissingCaps(_Strict):
    """How many samples the candidate may leave unpredicted (null or NaN), overall and in any segment."""

    overall: float = Field(default=0.01, ge=0.0, le=1.0)
    per_segment: float = Field(default=0.05, ge=0.0, le=1.0)


class BootstrapSettings(_Strict):
    """Paired bootstrap over devices (a device's months move together); the seed makes a decision reproducible."""

    resamples: int = Field(default=2000, ge=200, le=100_000)
    seed: int = Field(default=20260401, ge=0)


class GatePolicy(_Strict):
    """A whole gate policy file (version 2: pass, refuse or hold; the burden of proof on the candidate)."""

    version: Literal[2] = 2
    description: str = ""
    metric: ErrorMetric = "runtime_abs_error"
    statistic: Statistic = "median"
    truth: TruthSelection = "uncensored"
    primary: PrimaryRule = PrimaryRule()
    segments: SegmentRule = SegmentRule()
    harm_screen: HarmScreen = HarmScreen()
    missing: MissingCaps = MissingCaps()
    bootstrap: BootstrapSettings = BootstrapSettings()
    min_devices: int = Field(default=100, ge=2)


def parse_policy(text: str, *, name: str) -> GatePolicy:
    """Parse and validate a policy; ``name`` (the file) and each bad field are named in the ConfigError."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"gate policy {name}: not valid YAML ({error})") from error
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"gate policy {name}: expected a mapping at the top level, found {type(raw).__name__}")
    if raw.get("version", 2) == 1:
        raise ConfigError(
            f"gate policy {name}: version 1 policies (pass unless harm is proven) are no longer accepted; "
            "see policies/default.yaml for version 2 (the candidate must show it is better)"
        )
    try:
        return GatePolicy.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '<root>'}: {e['msg']} (got {e.get('input')!r})"
            for e in error.errors()
        )
        raise ConfigError(f"gate policy {name}: {problems}") from error
