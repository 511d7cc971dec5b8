"""The ``fieldsim`` command: generate a fleet, load it into PostgreSQL, serve it as the five API shards."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from fieldsim.fleet import Fleet, SimConfig
from fieldsim.parquet import frame_to_parquet
from fieldsim.simulate import simulate

F = TypeVar("F", bound=Callable[..., Any])


def _fleet_options(func: F) -> F:
    for option in reversed(
        [
            click.option("--seed", type=int, default=7, show_default=True, help="Random seed."),
            click.option("--devices", type=int, default=1000, show_default=True, help="Fleet size."),
            click.option("--start", default="2026-03", show_default=True, help="First month with tests (YYYY-MM)."),
            click.option("--months", type=int, default=1, show_default=True, help="Months with capacity tests."),
        ]
    ):
        func = option(func)
    return func


def _simulate(seed: int, devices: int, start: str, months: int) -> Fleet:
    return simulate(SimConfig.for_months(seed=seed, devices=devices, start=start, months=months))


@click.group()
def main() -> None:
    """Seeded field simulator of a thermostat fleet, served as the real field sources are."""


@main.command()
@_fleet_options
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder.")
def generate(seed: int, devices: int, start: str, months: int, out: Path) -> None:
    """Write the source frames, the truth and each month's oracle dataset as Parquet files."""
    from fieldsim.library_input import month_dataset

    fleet = _simulate(seed, devices, start, months)
    out.mkdir(parents=True, exist_ok=True)
    frames = {**fleet.source_frames(), "packs": fleet.packs, "device_truth": fleet.device_truth}
    for month in fleet.months:
        dataset, series = month_dataset(fleet, month)
        frames[f"oracle-dataset-{month}"] = dataset
        frames[f"oracle-series-{month}"] = series
    for name, frame in frames.items():
        (out / f"{name}.parquet").write_bytes(frame_to_parquet(frame))
        click.echo(f"{name}: {frame.height} rows")


@main.command("load-postgres")
@_fleet_options
@click.option("--dsn", required=True, envvar="FIELDSIM_DSN", help="PostgreSQL connection string.")
@click.option("--replace", is_flag=True, help="Empty the tables first.")
def load_postgres_command(seed: int, devices: int, start: str, months: int, dsn: str, replace: bool) -> None:
    """Create the analytics tables and COPY the simulated sensor logs and valve movements into them."""
    from fieldsim.postgres import load_postgres

    counts = load_postgres(_simulate(seed, devices, start, months), dsn, replace=replace)
    for table, rows in counts.items():
        click.echo(f"{table}: {rows} rows")


@main.command("serve-shards")
@_fleet_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port-base", type=int, default=8100, show_default=True, help="Shard i listens on port-base + i.")
def serve_shards(seed: int, devices: int, start: str, months: int, host: str, port_base: int) -> None:
    """Serve the five API shards until interrupted (faults settable at PUT /_sim/faults)."""
    from fieldsim.serve import serve_forever
    from fieldsim.shards import shard_states

    states = shard_states(_simulate(seed, devices, start, months))
    for i in range(len(states)):
        click.echo(f"shard {i}: http://{host}:{port_base + i}")
    sys.stdout.flush()
    serve_forever(states, host, port_base)


if __name__ == "__main__":
    main()
