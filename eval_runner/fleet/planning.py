"""Pure batch and shard planning: which devices form a batch, which batches form a shard. No I/O."""

from __future__ import annotations

import polars as pl

from eval_runner.errors import ConfigError, DataError

DEFAULT_BATCH_SIZE = 250
# Shard pods a rollout fans out to (not contracts.N_SHARDS, the API shards that own the devices).
DEFAULT_SHARD_PODS = 8


def assign_batches(device_ids: pl.Series, batch_size: int = DEFAULT_BATCH_SIZE) -> pl.DataFrame:
    """Sort the devices and cut them into batches of ``batch_size``: columns device_id, batch.

    Sorting makes the batching a function of the device set alone, so a re-snapshot of the same fleet
    gives the same batches (and the same keys). Duplicates or empty ids are a DataError.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    ids = device_ids.cast(pl.String()).rename("device_id")
    if ids.len() == 0:
        raise DataError("fleet snapshot: the sources list no devices")
    if ids.null_count() or (ids.str.len_chars() == 0).any():
        raise DataError("fleet snapshot: the sources list a device with an empty id")
    duplicated = ids.filter(ids.is_duplicated()).unique().sort()
    if duplicated.len():
        raise DataError(f"fleet snapshot: device ids listed more than once: {duplicated.head(5).to_list()}")
    ordered = ids.sort()
    return pl.DataFrame(
        {"device_id": ordered, "batch": pl.int_range(0, ordered.len(), eager=True) // batch_size}
    ).with_columns(pl.col("batch").cast(pl.Int32()))


def shard_ids(n_shards: int) -> list[str]:
    """Shard ids as the workflow fans out over them: "s000", "s001", ..."""
    return [f"s{index:03d}" for index in range(n_shards)]


def assign_shards(n_batches: int, n_shards: int) -> dict[str, tuple[int, ...]]:
    """Split batches 0..n_batches-1 into at most ``n_shards`` contiguous, near-equal runs.

    Contiguous runs keep a shard's inputs together in the key space; never more shards than batches,
    so no pod starts for nothing.
    """
    if n_shards < 1:
        raise ConfigError(f"the number of shards must be at least 1, got {n_shards}")
    if n_batches < 1:
        raise DataError("plan: the snapshot has no batches")
    count = min(n_shards, n_batches)
    base, extra = divmod(n_batches, count)
    shards: dict[str, tuple[int, ...]] = {}
    start = 0
    for index, shard in enumerate(shard_ids(count)):
        size = base + (1 if index < extra else 0)
        shards[shard] = tuple(range(start, start + size))
        start += size
    return shards


def check_exactly_once(expected: pl.DataFrame, results: pl.DataFrame) -> None:
    """Prove every device of the snapshot appears exactly once in ``results``; DataError naming examples.

    ``expected`` has device_id and batch (the snapshot's devices); ``results`` has device_id and batch.
    """
    duplicated = results.filter(pl.col("device_id").is_duplicated()).get_column("device_id").unique().sort()
    if duplicated.len():
        raise DataError(
            f"merge: {duplicated.len()} devices appear more than once in the batch results, "
            f"e.g. {duplicated.head(5).to_list()}"
        )
    missing = expected.join(results, on="device_id", how="anti").get_column("device_id")
    if missing.len():
        raise DataError(
            f"merge: {missing.len()} devices of the snapshot have no result, e.g. {missing.head(5).to_list()}"
        )
    unknown = results.join(expected, on="device_id", how="anti").get_column("device_id")
    if unknown.len():
        raise DataError(
            f"merge: {unknown.len()} results name devices outside the snapshot:  {unknown.head(5).to_list()}"
        )
    moved = expected.join(results, on="device_id").filter(pl.col("batch") != pl.col("batch_right"))
    if moved.height:
        example = moved.row(0, named=True)
        raise DataError(
            f"merge: {moved.height} devices came back in the wrong batch, e.g. {example['device_id']!r} "
            f"planned in batch {example['batch']} but reported by batch {example['batch_right']}"
        )
