"""Adapter for battery-lib API generation 2 (0.8.x and later): batches of samples as Arrow tables."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import polars as pl
import pyarrow as pa

from eval_runner.contracts import LIBRARY_SAMPLE_COLUMNS, SERIES_SCHEMA
from eval_runner.errors import DataError
from eval_runner.library.base import empty_predictions, normalise_predictions


def to_plain_arrow(frame: pl.DataFrame) -> pa.Table:
    """Arrow table with classic ``string`` columns.

    polars exports ``large_string``/``string_view``; library versions are built against various pyarrow
    releases and compare schemas, so we hand them the most common physical types.
    """
    table = frame.to_arrow()
    fields = []
    for field in table.schema:
        if pa.types.is_large_string(field.type) or str(field.type) == "string_view":
            fields.append(pa.field(field.name, pa.string(), field.nullable))
        else:
            fields.append(field)
    return table.cast(pa.schema(fields))


def library_inputs(samples: pl.DataFrame, series: pl.DataFrame) -> tuple[pa.Table, pa.Table]:
    """Build the generation 2 inputs: LIBRARY_SAMPLE_COLUMNS, and SERIES_SCHEMA sorted by sample_id, ts."""
    missing = [name for name in LIBRARY_SAMPLE_COLUMNS if name not in samples.columns]
    if missing:
        raise DataError(f"library input: samples lack the columns {missing}")
    missing = [name for name in SERIES_SCHEMA if name not in series.columns]
    if missing:
        raise DataError(f"library input: series lack the columns {missing}")
    # A month's series comes grouped by sample and sorted by time, as the contract orders it: both the
    # pick and the order are checked once per run of equal sample ids (thousands), not per row (millions
    # of string hashes and a two-key sort were most of the adapter's time). Any input gives the same rows.
    ids = series.get_column("sample_id")
    starts = ids.ne_missing(ids.shift(1))  # the first row of each run of equal ids
    run_ids = ids.filter(starts)
    series_in = series.filter(_wanted(samples, run_ids).gather(starts.cast(pl.UInt32).cum_sum() - 1)).select(
        pl.col(name).cast(dtype) for name, dtype in SERIES_SCHEMA.items()
    )
    if not _in_order(run_ids, starts, series.get_column("ts")):  # picking rows keeps their order
        series_in = series_in.sort("sample_id", "ts")
    return to_plain_arrow(samples.select(LIBRARY_SAMPLE_COLUMNS)), to_plain_arrow(series_in)


def _wanted(samples: pl.DataFrame, run_ids: pl.Series) -> pl.Series:
    """Per run, whether its sample is one of ``samples``."""
    # A left join rather than is_in: its semantics are the same across the polars releases images pin.
    wanted = samples.select("sample_id").unique().with_columns(pl.lit(True).alias("wanted"))
    runs = run_ids.to_frame("sample_id").join(wanted, on="sample_id", how="left", maintain_order="left")
    return runs.get_column("wanted").is_not_null()


def _in_order(run_ids: pl.Series, starts: pl.Series, ts: pl.Series) -> bool:
    """Whether the rows are sorted by sample_id, then ts: one run per sample, ids rising, time within."""
    rising = run_ids.len() < 2 or bool((run_ids.slice(1) > run_ids.slice(0, run_ids.len() - 1)).all())
    return rising and bool((starts | (ts >= ts.shift(1))).fill_null(False).all())


class Generation2Predictor:
    """Predictor over ``battery_lib.Predictor().predict(samples, series)``."""

    generation = 2

    def __init__(self, module: ModuleType, version: str) -> None:
        self._version = version
        self._source = f"battery_lib {version} (generation 2)"
        try:
            self._predictor: Any = module.Predictor()
        except Exception as error:
            # Whatever the library raises while loading its fitted constants, the image is unusable.
            raise DataError(f"{self._source}: Predictor() failed: {error!r}") from error

    @property
    def library_version(self) -> str:
        """The battery-lib version doing the work."""
        return self._version

    def predict(self, samples: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
        """One row per sample, in the order of ``samples``, with PREDICTION_SCHEMA columns."""
        if samples.height == 0:
            return empty_predictions()
        sample_table, series_table = library_inputs(samples, series)
        try:
            out = self._predictor.predict(sample_table, series_table)
        except Exception as error:
            # A library bug must fail the evaluation with its name on it, not as a bare traceback.
            raise DataError(f"{self._source}: predict failed: {error!r}") from error
        if not isinstance(out, pa.Table):
            raise DataError(f"{self._source}: predict returned {type(out).__name__}, expected pyarrow.Table")
        raw = pl.DataFrame(pl.from_arrow(out))
        return normalise_predictions(raw, samples.get_column("sample_id"), source=self._source)
