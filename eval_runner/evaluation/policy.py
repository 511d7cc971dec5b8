"""The gate policy: a YAML file saying which metric must improve by how much and what segments may lose."""

from __future__ import annotations

from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from eval_runner.errors import ConfigError

ErrorMetric = Literal["capacity_abs_error", "capacity_rel_error", "runtime_abs_error", "runtime_rel_error"]
Statistic = Literal["mean", "median", "p90", "p95"]
SegmentColumn = Literal["hardware_revision", "firmware_version"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PrimaryRule(_Strict):
    """The headline rule: ``statistic`` of ``metric`` must shrink by at least ``min_improvement``.

    Improvement is relative (0.05 = the candidate's statistic is at least 5% below the baseline's) and
    must hold at the lower end of the bootstrap confidence interval, so a noisy tie does not pass.
    """

    metric: ErrorMetric = "runtime_abs_error"
    statistic: Statistic = "median"
    min_improvement: float = Field(default=0.05, ge=-1.0, lt=1.0)


class SegmentRule(_Strict):
    """No segment may regress by more than ``max_regression`` (relative) on ``metric``.

    A segment fails when its estimated regression exceeds the allowance and the bootstrap interval
    of the change lies entirely above zero (the regression is real, not noise). Segments with fewer
    than ``min_samples`` paired samples are reported but not judged.
    """

    by: tuple[SegmentColumn, ...] = ("hardware_revision", "firmware_version")
    metric: ErrorMetric | None = None  # None: the primary rule's metric
    statistic: Statistic | None = None  # None: the primary rule's statistic
    max_regression: float = Field(default=0.02, ge=0.0)
    min_samples: int = Field(default=30, ge=2)


class BootstrapSettings(_Strict):
    """Paired bootstrap over samples; the seed makes a decision reproducible."""

    resamples: int = Field(default=2000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    seed: int = Field(default=20260401, ge=0)


class GatePolicy(_Strict):
    """A whole gate policy file."""

    version: Literal[1] = 1
    description: str = ""
    primary: PrimaryRule = PrimaryRule()
    segments: SegmentRule = SegmentRule()
    bootstrap: BootstrapSettings = BootstrapSettings()
    min_paired_samples: int = Field(default=100, ge=2)
    max_missing_fraction: float = Field(default=0.01, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _segments_inherit(cls, data: object) -> object:
        # Resolve the defaults here so the decision record states the rule that was actually applied.
        if not isinstance(data, dict):
            return data
        primary, segments = data.get("primary", {}), data.get("segments", {})
        if isinstance(primary, BaseModel):
            primary = primary.model_dump()
        if isinstance(segments, BaseModel):
            segments = segments.model_dump()
        if not isinstance(primary, dict) or not isinstance(segments, dict):
            return data  # field validation reports the wrong type
        defaults = PrimaryRule()
        filled = dict(segments)
        if filled.get("metric") is None:
            filled["metric"] = primary.get("metric", defaults.metric)
        if filled.get("statistic") is None:
            filled["statistic"] = primary.get("statistic", defaults.statistic)
        return {**data, "segments": filled}


def parse_policy(text: str, *, name: str) -> GatePolicy:
    """Parse and validate a policy; ``name`` (the file) and each bad field are named in the ConfigError."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"gate policy {name}: not valid YAML ({error})") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"gate policy {name}: expected a mapping at the top level, found {type(raw).__name__}")
    try:
        return GatePolicy.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '<root>'}: {e['msg']} (got {e.get('input')!r})"
            for e in error.errors()
        )
        raise ConfigError(f"gate policy {name}: {problems}") from error
