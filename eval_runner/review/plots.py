"""Per-sample figure for the review UI: voltage curve, valve movements, connectivity gaps, firmware changes."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
from matplotlib.figure import Figure

from eval_runner.dataset.shape import SERIES_WINDOW

_HOUR = timedelta(hours=1)


def offline_spans(series: pl.DataFrame, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Spans of missing hourly rows between ``start`` and ``end`` (the device was offline)."""
    times: list[datetime] = series.sort("ts")["ts"].to_list()
    spans: list[tuple[datetime, datetime]] = []
    previous = start - _HOUR
    for moment in [*times, end]:
        if moment - previous > _HOUR:
            spans.append((previous + _HOUR, moment))
        previous = moment
    return spans


def sample_figure(sample: dict[str, object], series: pl.DataFrame, events: pl.DataFrame) -> Figure:
    """Three stacked panels sharing the time axis: battery voltage, valve travel, radio traffic.

    Offline spans are shaded on every panel and version changes drawn as vertical lines, so a
    reviewer sees at a glance whether a voltage step lines up with a gap or a firmware update.
    """
    as_of = sample["as_of"]
    if not isinstance(as_of, datetime):
        raise TypeError(f"sample {sample.get('sample_id')!r}: as_of is not a datetime")
    start = as_of - SERIES_WINDOW
    figure = Figure(figsize=(10, 7), layout="constrained")
    voltage, valve, radio = figure.subplots(3, 1, sharex=True)
    ts = series["ts"].to_list()
    voltage.plot(ts, series["battery_mv"].to_list(), color="tab:blue", linewidth=1)
    cutoff = sample.get("cutoff_mv")
    if isinstance(cutoff, int):
        voltage.axhline(cutoff, color="tab:red", linestyle=":", linewidth=1, label=f"cut-off {cutoff} mV")
        voltage.legend(loc="upper right")
    voltage.set_ylabel("battery mV")
    valve.bar(ts, series["valve_travel_pct"].to_list(), width=1 / 24, color="tab:green")
    valve.set_ylabel("valve travel %/h")
    radio.plot(ts, series["radio_tx"].to_list(), color="tab:purple", linewidth=0.8, label="tx")
    radio.plot(ts, series["radio_rx"].to_list(), color="tab:gray", linewidth=0.8, label="rx")
    radio.set_ylabel("radio msgs/h")
    radio.legend(loc="upper right")
    for left, right in offline_spans(series, start, as_of):
        for axis in (voltage, valve, radio):
            axis.axvspan(left, right, color="orange", alpha=0.25, linewidth=0)
    for row in events.iter_rows(named=True):
        color = "tab:red" if row["component"] == "firmware" else "tab:brown"
        for axis in (voltage, valve, radio):
            axis.axvline(row["effective_at"], color=color, linestyle="--", linewidth=1)
        voltage.annotate(
            f"{row['component']} {row['version']}",
            (row["effective_at"], 1.0),
            xycoords=("data", "axes fraction"),
            fontsize=8,
            color=color,
            va="bottom",
        )
    radio.set_xlim(start, as_of)
    figure.suptitle(f"{sample['sample_id']}  (as of {as_of:%Y-%m-%d %H:%M} UTC; orange = offline)")
    return figure
