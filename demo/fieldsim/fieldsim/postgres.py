"""Load a simulated fleet into the analytics database with COPY (psycopg 3), as the real one is filled."""

from __future__ import annotations

import polars as pl
import psycopg

from fieldsim.contracts import ANALYTICS_DDL
from fieldsim.fleet import Fleet

_BATCH_ROWS = 200_000  # bounded CSV buffers, whatever the fleet size
_TABLES = {
    "sensor_logs": (
        "device_id", "ts", "battery_mv", "temperature_c", "radio_tx", "radio_rx", "rssi_dbm",
        "valve_travel_total",
    ),
    "valve_movements": ("device_id", "ts", "travel_pct", "motor_ms"),
}  # fmt: skip


def _frames(fleet: Fleet) -> dict[str, pl.DataFrame]:
    return {"sensor_logs": fleet.sensor_logs, "valve_movements": fleet.valve_movements}


def load_postgres(fleet: Fleet, dsn: str, *, replace: bool = False) -> dict[str, int]:
    """Create the contract tables if missing and COPY the fleet into them; returns rows per table.

    ``replace`` empties the tables first (a reload of the same fleet would otherwise violate the keys).
    """
    counts: dict[str, int] = {}
    with psycopg.connect(dsn) as conn:
        conn.execute(ANALYTICS_DDL)
        for table, frame in _frames(fleet).items():
            columns = _TABLES[table]
            if replace:
                conn.execute(f"TRUNCATE {table}")
            sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
            with conn.cursor() as cur, cur.copy(sql) as copy:
                for offset in range(0, frame.height, _BATCH_ROWS):
                    part = frame.slice(offset, _BATCH_ROWS).select(columns)
                    copy.write(part.write_csv(include_header=False, datetime_format="%Y-%m-%dT%H:%M:%S%.6fZ"))
            counts[table] = frame.height
        conn.commit()
    return counts
