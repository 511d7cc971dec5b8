"""Deterministic Parquet encoding of the simulator's frames: the same fleet always gives the same bytes.

The simulator's own writer (it imports nothing from eval_runner), with the settings eval_runner's
datasets use, so an oracle file and a dataset built from the same data are encoded alike.
"""

from __future__ import annotations

import io

import polars as pl
import pyarrow.parquet as pq


def frame_to_parquet(frame: pl.DataFrame) -> bytes:
    """Encode ``frame`` as Parquet with fixed settings (zstd level 3, no schema metadata)."""
    # Drop all schema metadata: equal frames then give equal bytes wherever they came from.
    table = frame.to_arrow().replace_schema_metadata(None)
    sink = io.BytesIO()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
        write_statistics=True,
        row_group_size=256 * 1024,
    )
    return sink.getvalue()
