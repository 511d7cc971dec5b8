"""Seeded paired bootstrap over devices of the relative change of an error statistic (pure numpy, no I/O).

The unit of resampling is the device, not the sample: a device's months share its hardware, its
installation and its user, so its errors are correlated, and resampling samples would count one
device's luck several times as independent evidence (intervals too narrow). Each resample draws devices
with replacement; every sample of a drawn device comes along, weighted by how often it was drawn, and
the same weights apply to both versions (the pairing).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from eval_runner.evaluation.policy import Statistic

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Resamples are drawn in chunks so memory stays bounded (chunk x samples) on multi-month pools.
_CHUNK = 250
_QUANTILE = {"median": 0.5, "p90": 0.90, "p95": 0.95}


@dataclass(frozen=True)
class Pool:
    """Paired errors of one pool of samples and, per sample, the index of its device (0..n_devices-1)."""

    candidate: FloatArray
    baseline: FloatArray
    device: IntArray
    n_devices: int

    @classmethod
    def of(cls, candidate: FloatArray, baseline: FloatArray, device_ids: npt.ArrayLike) -> Pool:
        """A pool from two aligned error arrays and the device id (any hashable values) of each sample."""
        if candidate.shape != baseline.shape or candidate.ndim != 1:
            raise ValueError(f"paired errors must be two 1-d arrays of one length: {candidate.shape}, {baseline.shape}")
        devices, index = np.unique(np.asarray(device_ids), return_inverse=True)
        if index.shape != candidate.shape:
            raise ValueError(f"one device id per sample: {index.shape[0]} ids for {candidate.shape[0]} samples")
        return cls(candidate, baseline, index.astype(np.int64), int(devices.shape[0]))

    @property
    def n_samples(self) -> int:
        """How many paired samples the pool holds."""
        return int(self.candidate.shape[0])


@dataclass(frozen=True)
class Change:
    """``candidate / baseline - 1`` of a statistic: the point estimate and its bootstrap replicates."""

    baseline_value: float
    candidate_value: float
    estimate: float
    replicates: FloatArray

    def upper(self, confidence: float) -> float:
        """One-sided upper confidence bound (percentile method, rounded up to a replicate: no interpolation)."""
        return float(np.quantile(self.replicates, confidence, method="higher"))

    def p_not_worse(self) -> float:
        """One-sided p-value against "the candidate is worse" (small: the change is clearly above zero).

        A bootstrap z-test on the log ratio, whose bootstrap distribution is close to normal: counting
        replicates at or below zero cannot go under 1 / (resamples + 1), which a Holm correction over
        dozens of cells multiplies past any family error. Falls back to that count when the log ratio is
        not finite (a baseline error of zero) or does not vary.
        """
        logs = np.log1p(self.replicates)
        spread = float(np.std(logs)) if np.all(np.isfinite(logs)) else 0.0
        if spread > 0 and math.isfinite(self.estimate):
            return 0.5 * math.erfc(math.log1p(self.estimate) / spread / math.sqrt(2.0))
        at_or_below = int(np.count_nonzero(self.replicates <= 0.0))
        return (at_or_below + 1) / (int(self.replicates.shape[0]) + 1)


def weighted_statistic(sorted_values: FloatArray, weights: IntArray, name: Statistic) -> FloatArray:
    """``name`` of each row of integer ``weights`` over ``sorted_values`` (ascending).

    Quantiles are the inverted CDF (the smallest value whose cumulative weight reaches q): with unit
    weights this is numpy's ``method="inverted_cdf"``, so the point estimate and the resamples use one
    definition.
    """
    if name == "mean":
        return np.asarray((weights * sorted_values).sum(axis=-1) / weights.sum(axis=-1), dtype=np.float64)
    cumulative = np.cumsum(weights, axis=-1)
    target = _QUANTILE[name] * cumulative[..., -1:]
    first = np.argmax(cumulative >= target, axis=-1)
    return np.asarray(sorted_values[first], dtype=np.float64)


def relative_change(candidate: FloatArray, baseline: FloatArray) -> FloatArray:
    """``candidate / baseline - 1``, with 0 for 0/0 and +inf for x/0 (any error where there was none)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(baseline > 0, candidate / np.where(baseline > 0, baseline, 1.0) - 1.0, 0.0)
    return np.asarray(np.where((baseline <= 0) & (candidate > 0), np.inf, ratio), dtype=np.float64)


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """Return a generator for one named stream (e.g. a segment), reproducible from the policy seed alone.

    Deriving the stream from its name, not from its position, keeps a segment's interval unchanged when
    another segment appears or disappears.
    """
    return np.random.default_rng([seed, zlib.crc32(stream.encode())])


def _device_counts(rng: np.random.Generator, n_devices: int, rows: int) -> IntArray:
    # How often each device is drawn in each of ``rows`` resamples: one bincount over offset indices.
    drawn = rng.integers(0, n_devices, size=(rows, n_devices)) + (np.arange(rows)[:, None] * n_devices)
    return np.bincount(drawn.ravel(), minlength=rows * n_devices).reshape(rows, n_devices).astype(np.int64)


def paired_change(pool: Pool, *, name: Statistic, resamples: int, rng: np.random.Generator) -> Change:
    """Bootstrap the relative change of ``name`` between the pool's candidate and baseline errors."""
    if pool.n_samples == 0:
        raise ValueError("no paired samples to bootstrap")
    order_c, order_b = np.argsort(pool.candidate, kind="stable"), np.argsort(pool.baseline, kind="stable")
    sorted_c, sorted_b = pool.candidate[order_c], pool.baseline[order_b]
    device_c, device_b = pool.device[order_c], pool.device[order_b]
    ones = np.ones((1, pool.n_samples), dtype=np.int64)
    base = float(weighted_statistic(sorted_b, ones, name)[0])
    cand = float(weighted_statistic(sorted_c, ones, name)[0])
    changes: list[FloatArray] = []
    remaining = resamples
    while remaining:
        rows = min(_CHUNK, remaining)
        counts = _device_counts(rng, pool.n_devices, rows)
        changes.append(
            relative_change(
                weighted_statistic(sorted_c, counts[:, device_c], name),
                weighted_statistic(sorted_b, counts[:, device_b], name),
            )
        )
        remaining -= rows
    estimate = float(relative_change(np.array([cand]), np.array([base]))[0])
    return Change(baseline_value=base, candidate_value=cand, estimate=estimate, replicates=np.concatenate(changes))
