"""Source fingerprints: equal rows give equal hashes, in any process; any change shows."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import polars as pl

from eval_runner.dataset.build import frame_fingerprint

FRAME = pl.DataFrame(
    {"device_id": ["a", None, "c"], "ts": [datetime(2026, 4, 1, h, tzinfo=UTC) for h in range(3)], "mv": [1, None, 3]}
)
SCRIPT = """
from datetime import UTC, datetime
import polars as pl
from eval_runner.dataset.build import frame_fingerprint
frame = pl.DataFrame(
    {"device_id": ["a", None, "c"], "ts": [datetime(2026, 4, 1, h, tzinfo=UTC) for h in range(3)], "mv": [1, None, 3]}
)
print(frame_fingerprint("x", frame).sha256)
"""


def test_fingerprint_is_the_same_in_another_process() -> None:
    other = subprocess.run([sys.executable, "-c", SCRIPT], check=True, capture_output=True, text=True).stdout.strip()
    assert other == frame_fingerprint("x", FRAME).sha256


def test_fingerprint_changes_with_any_value_or_the_schema() -> None:
    base = frame_fingerprint("x", FRAME)
    assert base.rows == 3
    changed = FRAME.with_columns(pl.when(pl.col("mv") == 3).then(4).otherwise(pl.col("mv")).alias("mv"))
    assert frame_fingerprint("x", changed).sha256 != base.sha256
    assert frame_fingerprint("x", FRAME.with_columns(pl.col("mv").cast(pl.Int32))).sha256 != base.sha256
