"""Adapter for battery-lib API generation 1 (0.6.x): one device at a time, from one voltage reading."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import polars as pl

from eval_runner.errors import DataError
from eval_runner.library.base import empty_predictions, normalise_predictions

# Generation 1 needs a temperature; when the hour of the last voltage reading has none we use the
# sample's median temperature, and 20 °C (the reference temperature of its voltage table) when the
# series has no temperature at all.
REFERENCE_TEMPERATURE_C = 20.0


def last_readings(samples: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
    """Per sample: the latest non-null battery_mv, the temperature of that hour, and the nominal mAh.

    Samples without any voltage reading get a null voltage (and thus null predictions).
    """
    with_voltage = series.filter(pl.col("battery_mv").is_not_null()).sort("sample_id", "ts")
    last = with_voltage.group_by("sample_id").agg(
        pl.col("battery_mv").last().cast(pl.Float64()).alias("voltage_mv"),
        pl.col("temperature_c").last().cast(pl.Float64()).alias("temperature_at_reading"),
    )
    median_temp = series.group_by("sample_id").agg(
        pl.col("temperature_c").cast(pl.Float64()).median().alias("temperature_median")
    )
    return (
        samples.select("sample_id", pl.col("nominal_capacity_mah").cast(pl.Float64()))
        .join(last, on="sample_id", how="left", maintain_order="left")
        .join(median_temp, on="sample_id", how="left", maintain_order="left")
        .select(
            "sample_id",
            "voltage_mv",
            pl.coalesce("temperature_at_reading", "temperature_median", pl.lit(REFERENCE_TEMPERATURE_C)).alias(
                "temperature_c"
            ),
            "nominal_capacity_mah",
        )
    )


class Generation1Predictor:
    """Predictor over ``battery_lib.estimate``; its low/high bounds become p10/p90."""

    generation = 1

    def __init__(self, module: ModuleType, version: str) -> None:
        self._estimate: Any = module.estimate
        self._version = version

    @property
    def library_version(self) -> str:
        """The battery-lib version doing the work."""
        return self._version

    def predict(self, samples: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
        """One row per sample, in the order of ``samples``, with PREDICTION_SCHEMA columns."""
        if samples.height == 0:
            return empty_predictions()
        inputs = last_readings(samples, series)
        source = f"battery_lib {self._version} (generation 1)"
        rows: list[dict[str, object]] = []
        for sample_id, voltage, temperature, nominal in inputs.iter_rows():
            if voltage is None or nominal is None:
                rows.append({"sample_id": sample_id})
                continue
            try:
                est = self._estimate(voltage_mv=voltage, temperature_c=temperature, nominal_mah=nominal)
                rows.append(
                    {
                        "sample_id": sample_id,
                        "capacity_mah_p10": float(est.remaining_mah_low),
                        "capacity_mah_p50": float(est.remaining_mah),
                        "capacity_mah_p90": float(est.remaining_mah_high),
                        "runtime_days_p10": float(est.runtime_days_low),
                        "runtime_days_p50": float(est.runtime_days),
                        "runtime_days_p90": float(est.runtime_days_high),
                    }
                )
            except (AttributeError, TypeError, ValueError, ArithmeticError) as error:
                raise DataError(f"{source}: estimate failed for sample {sample_id!r}: {error!r}") from error
        raw = pl.DataFrame(rows, schema=empty_predictions().schema)
        return normalise_predictions(raw, samples.get_column("sample_id"), source=source)
