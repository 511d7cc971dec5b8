"""Seeded paired bootstrap of the relative change of an error statistic (pure numpy, no I/O)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from eval_runner.evaluation.policy import Statistic

FloatArray = npt.NDArray[np.float64]

# Resamples are drawn in chunks so memory stays bounded (chunk x n floats) on multi-month pools.
_CHUNK = 250
_QUANTILE = {"p90": 0.90, "p95": 0.95}


@dataclass(frozen=True)
class Interval:
    """A point estimate of ``candidate / baseline - 1`` with its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float


def statistic(values: FloatArray, name: Statistic) -> FloatArray:
    """``name`` along the last axis; quantiles interpolate linearly (numpy's default, and the metrics')."""
    if name == "mean":
        return np.asarray(values.mean(axis=-1), dtype=np.float64)
    if name == "median":
        return np.asarray(np.median(values, axis=-1), dtype=np.float64)
    return np.asarray(np.quantile(values, _QUANTILE[name], axis=-1), dtype=np.float64)


def relative_change(candidate: FloatArray, baseline: FloatArray) -> FloatArray:
    """``candidate / baseline - 1``, with 0 for 0/0 and +inf for x/0 (any error where there was none)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(baseline > 0, candidate / np.where(baseline > 0, baseline, 1.0) - 1.0, 0.0)
    return np.where((baseline <= 0) & (candidate > 0), np.inf, ratio)


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """Return a generator for one named stream (e.g. a segment), reproducible from the policy seed alone.

    Deriving the stream from its name, not from its position, keeps a segment's interval unchanged when
    another segment appears or disappears.
    """
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def paired_change(
    candidate: FloatArray,
    baseline: FloatArray,
    *,
    name: Statistic,
    resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> Interval:
    """Bootstrap the relative change of ``name`` over paired per-sample errors.

    Each resample draws sample indices with replacement and applies them to both versions, so the
    interval reflects the paired design (the same devices judged by both).
    """
    if candidate.shape != baseline.shape or candidate.ndim != 1:
        raise ValueError(f"paired errors must be two 1-d arrays of one length, got {candidate.shape}, {baseline.shape}")
    n = candidate.shape[0]
    if n == 0:
        raise ValueError("no paired samples to bootstrap")
    point = float(relative_change(statistic(candidate, name), statistic(baseline, name)))
    changes: list[FloatArray] = []
    remaining = resamples
    while remaining:
        size = min(_CHUNK, remaining)
        index = rng.integers(0, n, size=(size, n))
        changes.append(relative_change(statistic(candidate[index], name), statistic(baseline[index], name)))
        remaining -= size
    drawn = np.concatenate(changes)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(drawn, [alpha, 1.0 - alpha])
    return Interval(estimate=point, low=float(low), high=float(high))
