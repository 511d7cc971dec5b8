"""A tiny deterministic generation-2 battery_lib for the fleet's process tests (not a real algorithm).

The fleet tests need *a* library inside the shard processes they kill and restart; this one is put on
PYTHONPATH so those tests do not depend on building library environments.
"""

from __future__ import annotations

import polars as pl
import pyarrow as pa

__version__ = "0.0.1+fleetstub"
API_GENERATION = 2


class Predictor:
    """Capacity from the last voltage between cut-off and 3.0 V; runtime at 3 mAh/day."""

    def predict(self, samples: pa.Table, series: pa.Table) -> pa.Table:
        """One row per sample, in order."""
        frame = pl.DataFrame(pl.from_arrow(samples))
        readings = pl.DataFrame(pl.from_arrow(series))
        last = readings.group_by("sample_id").agg(pl.col("battery_mv").drop_nulls().last().alias("mv"))
        soc = ((pl.col("mv") - pl.col("cutoff_mv")) / (3000 - pl.col("cutoff_mv"))).clip(0, 1).fill_null(0.5)
        p50 = soc * pl.col("nominal_capacity_mah")
        out = frame.join(last, on="sample_id", how="left", maintain_order="left").select(
            "sample_id",
            (p50 * 0.8).alias("capacity_mah_p10"),
            p50.alias("capacity_mah_p50"),
            (p50 * 1.2).alias("capacity_mah_p90"),
            (p50 * 0.8 / 3).alias("runtime_days_p10"),
            (p50 / 3).alias("runtime_days_p50"),
            (p50 * 1.2 / 3).alias("runtime_days_p90"),
        )
        return out.to_arrow()
