"""The Predictor interface every generation adapter implements, and the checks on what it returns."""

from __future__ import annotations

from typing import Protocol

import polars as pl

from eval_runner.contracts import PREDICTION_SCHEMA
from eval_runner.errors import DataError


class Predictor(Protocol):
    """Predicts remaining capacity and runtime for a batch of samples."""

    @property
    def library_version(self) -> str:
        """The battery-lib version doing the work, e.g. "0.9.0"."""
        ...

    @property
    def generation(self) -> int:
        """The battery-lib API generation the adapter speaks (1 or 2)."""
        ...

    def predict(self, samples: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
        """One row per sample, in the order of ``samples``, with ``PREDICTION_SCHEMA`` columns."""
        ...


def empty_predictions() -> pl.DataFrame:
    """Return a frame with PREDICTION_SCHEMA and no rows."""
    return pl.DataFrame(schema=PREDICTION_SCHEMA)


def normalise_predictions(raw: pl.DataFrame, sample_ids: pl.Series, *, source: str) -> pl.DataFrame:
    """Check a library's output against the contract and cast it to PREDICTION_SCHEMA.

    ``source`` names the library version in errors. The output must have one row per requested sample,
    in the same order: a silent reorder would pair predictions with the wrong truth.
    """
    missing = [name for name in PREDICTION_SCHEMA if name not in raw.columns]
    if missing:
        raise DataError(f"{source}: predictions lack the columns {missing} (got {raw.columns})")
    if raw.height != sample_ids.len():
        raise DataError(f"{source}: returned {raw.height} predictions for {sample_ids.len()} samples")
    try:
        out = raw.select(pl.col(name).cast(dtype) for name, dtype in PREDICTION_SCHEMA.items())
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as error:
        raise DataError(f"{source}: predictions do not cast to the prediction schema ({error})") from error
    returned = out.get_column("sample_id")
    if not returned.equals(sample_ids.cast(pl.String()), check_names=False):
        raise DataError(f"{source}: predictions are not in the order of the samples (sample_id mismatch)")
    return out
