"""Deterministic object keys of the storage layout in ARCHITECTURE.md; nothing else spells a key.

Keys are pure functions of what the object is, so a rerun writes the same keys and immutability
(see storage.py) turns a retried write into a no-op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from eval_runner.contracts import SCHEMA_VERSION
from eval_runner.errors import ConfigError

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_DEVICE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month, parsed from "YYYY-MM"."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """Parse "YYYY-MM"; anything else is a ConfigError naming the text."""
        found = _MONTH.match(text.strip())
        if found is None:
            raise ConfigError(f"month {text!r} is not of the form YYYY-MM (e.g. 2026-04)")
        return cls(int(found.group(1)), int(found.group(2)))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> date:
        """First day of the month."""
        return date(self.year, self.month, 1)

    @property
    def end(self) -> date:
        """First day of the next month (exclusive end)."""
        return date(self.year + self.month // 12, self.month % 12 + 1, 1)

    @property
    def partition(self) -> str:
        """The Hive-style partition path used in keys."""
        return f"year={self.year:04d}/month={self.month:02d}"

    def previous(self) -> Month:
        """The month before."""
        return Month(self.year - 1, 12) if self.month == 1 else Month(self.year, self.month - 1)


def _safe(kind: str, value: str) -> str:
    if not _SAFE.match(value) or ".." in value:
        raise ConfigError(f"{kind} {value!r} cannot be used in an object key (letters, digits, . _ + - only)")
    return value


DATASETS_PREFIX = "capacity/datasets/"
# A month has one dataset build per extractor schema version, each immutable. Version 1 lives in the month's
# folder itself (where every dataset was before builds had versions); a later version's build goes to
# ``schema=N/`` inside it, so a new extractor publishes beside the build that old reviews and evaluations name.
FIRST_SCHEMA_VERSION = 1
_MANIFEST_KEY = re.compile(
    r"^capacity/datasets/year=(\d{4})/month=(\d{2})/(?:schema=([2-9]|[1-9]\d+)/)?manifest\.json$"
)


def dataset_prefix(month: Month, schema_version: int = SCHEMA_VERSION) -> str:
    """Folder of one build of a month's dataset: dataset.parquet, series.parquet, events.parquet, manifest.json."""
    if schema_version < FIRST_SCHEMA_VERSION:
        raise ConfigError(f"extractor schema version {schema_version} of {month} is out of range (1 or more)")
    month_folder = f"{DATASETS_PREFIX}{month.partition}/"
    return month_folder if schema_version == FIRST_SCHEMA_VERSION else f"{month_folder}schema={schema_version}/"


DATASET_FILES = {"dataset": "dataset.parquet", "series": "series.parquet", "events": "events.parquet"}


def dataset_file_key(month: Month, name: str, schema_version: int = SCHEMA_VERSION) -> str:
    """Key of one of a build's dataset files ("dataset", "series" or "events")."""
    return f"{dataset_prefix(month, schema_version)}{DATASET_FILES[name]}"


def dataset_manifest_key(month: Month, schema_version: int = SCHEMA_VERSION) -> str:
    """Key of a build's dataset manifest (written last: it is the marker)."""
    return f"{dataset_prefix(month, schema_version)}manifest.json"


def dataset_of_manifest_key(key: str) -> tuple[Month, int] | None:
    """(month, extractor schema version) of the build whose dataset manifest ``key`` is, or None for any other key."""
    found = _MANIFEST_KEY.match(key)
    if found is None:
        return None
    schema_version = int(found.group(3)) if found.group(3) else FIRST_SCHEMA_VERSION
    return Month(int(found.group(1)), int(found.group(2))), schema_version


def month_of_manifest_key(key: str) -> Month | None:
    """The month whose dataset manifest (of any build) ``key`` is, or None for any other key."""
    found = dataset_of_manifest_key(key)
    return None if found is None else found[0]


def extract_prefix(month: Month, schema_version: int = SCHEMA_VERSION) -> str:
    """Folder of the per-shard records of a month's extraction (scratch state for reruns).

    Per schema version like the dataset: records an older extractor kept lack what this one reads.
    """
    folder = f"capacity/extracts/{month.partition}/"
    return folder if schema_version == FIRST_SCHEMA_VERSION else f"{folder}schema={schema_version}/"


def review_prefix(month: Month) -> str:
    """Folder of one month's reviews: one ``revision=NNNNNN/`` folder per save (and the legacy files)."""
    return f"capacity/reviews/{month.partition}/"


# Revision 0 is the review a month had before reviews became revisions: review.csv and review.json
# directly in the month's folder. Saves since then write revision 1, 2, ... and never replace one.
LEGACY_REVISION = 0
_REVISION_DIGITS = 6
_REVISION_FILE = re.compile(r"^(?:revision=(\d{6})/)?(review\.csv|review\.json)$")


def review_revision_prefix(month: Month, revision: int) -> str:
    """Folder of one revision of a month's review (the month's folder itself for the legacy revision 0)."""
    if revision < 0 or revision >= 10**_REVISION_DIGITS:
        raise ConfigError(f"review revision {revision} of {month} is out of range (0 to {10**_REVISION_DIGITS - 1})")
    if revision == LEGACY_REVISION:
        return review_prefix(month)
    return f"{review_prefix(month)}revision={revision:0{_REVISION_DIGITS}d}/"


def review_csv_key(month: Month, revision: int) -> str:
    """Key of one revision's review.csv."""
    return f"{review_revision_prefix(month, revision)}review.csv"


def review_json_key(month: Month, revision: int) -> str:
    """Key of one revision's review.json (written last: it is the marker that the revision is complete)."""
    return f"{review_revision_prefix(month, revision)}review.json"


def review_file_of_key(month: Month, key: str) -> tuple[int, str] | None:
    """(revision, "review.csv" or "review.json") of a key under the month's review folder, else None."""
    prefix = review_prefix(month)
    if not key.startswith(prefix):
        return None
    found = _REVISION_FILE.match(key[len(prefix) :])
    if found is None:
        return None
    return (int(found.group(1)) if found.group(1) else LEGACY_REVISION), found.group(2)


_HASH = re.compile(r"^[0-9a-f]{64}$")


def _hash(kind: str, value: str) -> str:
    if not _HASH.match(value):
        raise ConfigError(f"{kind} {value!r} is not a sha256 (64 lowercase hex digits)")
    return value


def legacy_evaluation_prefix(month: Month, version: str) -> str:
    """Folder of a (month, version) evaluation written before evaluations were keyed by their inputs."""
    return f"capacity/evaluations/{month.partition}/version={_safe('version', version)}/"


def evaluation_prefix(month: Month, version: str, *, dataset_hash: str, review_hash: str) -> str:
    """Folder of one evaluation: predictions.parquet, metrics.json.

    Keyed by the dataset content hash and the review hash (sha256 of review.csv) it used, so a revised
    review or a rebuilt dataset is a new evaluation beside the old one, and a retry finds its own.
    """
    return (
        f"{legacy_evaluation_prefix(month, version)}dataset={_hash('dataset hash', dataset_hash)}/"
        f"review={_hash('review hash', review_hash)}/"
    )


DECISIONS_PREFIX = "capacity/decisions/"


def decision_key(release_id: str) -> str:
    """The decision record of one release."""
    return f"{DECISIONS_PREFIX}{_safe('release id', release_id)}/decision.json"


_GENERATION_DIGITS = 6
_GENERATION_FILE = re.compile(r"^generation=(\d{6})\.json$")


def champion_prefix(model: str) -> str:
    """Folder of one registered model's champion records: one ``generation=NNNNNN.json`` per promotion."""
    return f"capacity/champion/model={_safe('model', model)}/"


def champion_key(model: str, generation: int) -> str:
    """The champion record of one generation (1 is the first champion; each promotion writes the next)."""
    if generation < 1 or generation >= 10**_GENERATION_DIGITS:
        top = 10**_GENERATION_DIGITS - 1
        raise ConfigError(f"champion generation {generation} of {model} is out of range (1 to {top})")
    return f"{champion_prefix(model)}generation={generation:0{_GENERATION_DIGITS}d}.json"


def champion_generation_of_key(model: str, key: str) -> int | None:
    """The generation a key under the model's champion folder names, else None (not a record's key)."""
    prefix = champion_prefix(model)
    found = _GENERATION_FILE.match(key[len(prefix) :]) if key.startswith(prefix) else None
    return int(found.group(1)) if found else None


def fleet_run_prefix(run_id: str) -> str:
    """Folder of one fleet run: plan.json, inputs/, batches/, journal/."""
    return f"fleet/runs/{_safe('run id', run_id)}/"


def fleet_batch_key(run_id: str, batch: int) -> str:
    """Result of one batch."""
    return f"{fleet_run_prefix(run_id)}batches/batch={batch:05d}.parquet"


def fleet_batch_done_key(run_id: str, batch: int) -> str:
    """Marker written after the batch result verified; carries the result's sha256."""
    return f"{fleet_run_prefix(run_id)}batches/batch={batch:05d}.done"


def fleet_batch_pending_key(run_id: str, batch: int) -> str:
    """Marker of a configuration batch whose result is whole but has unresolved devices (rewritten per try)."""
    return f"{fleet_run_prefix(run_id)}batches/batch={batch:05d}.pending"


def fleet_report_key(run_id: str, name: str) -> str:
    """The run's current report (rollback.parquet, failed.parquet): rewritten by every halt and merge."""
    return f"{fleet_run_prefix(run_id)}report/{_safe('report', name)}"


def _fleet_inputs(run_id: str) -> str:
    return f"{fleet_run_prefix(run_id)}inputs/"


def fleet_samples_key(run_id: str, batch: int) -> str:
    """Library samples (LIBRARY_SAMPLE_COLUMNS) of one batch of a fleet snapshot."""
    return f"{_fleet_inputs(run_id)}batch={batch:05d}/samples.parquet"


def fleet_series_key(run_id: str, batch: int) -> str:
    """Hourly series (SERIES_SCHEMA) of one batch of a fleet snapshot."""
    return f"{_fleet_inputs(run_id)}batch={batch:05d}/series.parquet"


def fleet_devices_key(run_id: str) -> str:
    """Every device of the snapshot with its batch: what the merge proves the results against."""
    return f"{_fleet_inputs(run_id)}devices.parquet"


def fleet_snapshot_manifest_key(run_id: str) -> str:
    """The snapshot's manifest, written last: its presence means the snapshot is complete."""
    return f"{_fleet_inputs(run_id)}manifest.json"


def fleet_plan_key(run_id: str) -> str:
    """The plan: mode, shards and their batches, configuration settings."""
    return f"{fleet_run_prefix(run_id)}plan.json"


def fleet_halt_key(run_id: str) -> str:
    """Written when a configuration run halts on its error rate; every shard stops when it exists."""
    return f"{fleet_run_prefix(run_id)}halt.json"


def fleet_journal_prefix(run_id: str, batch: int) -> str:
    """Folder of the per-device journal entries of one configuration batch (one LIST reads them all)."""
    return f"{fleet_run_prefix(run_id)}journal/batch={batch:05d}/"


def _device_file(device_id: str) -> str:
    if not _DEVICE.match(device_id) or ".." in device_id:
        raise ConfigError(f"device id {device_id!r} cannot be used in an object key")
    return f"device={device_id}.json"


def fleet_intent_key(run_id: str, batch: int, device_id: str) -> str:
    """What a device held right before its PUT was sent (the rollback's source if the journal write is lost)."""
    return f"{fleet_run_prefix(run_id)}intent/batch={batch:05d}/{_device_file(device_id)}"


def fleet_journal_key(run_id: str, batch: int, device_id: str) -> str:
    """Journal entry of one device: written after its PUT succeeded, so a retry never PUTs it again."""
    return f"{fleet_journal_prefix(run_id, batch)}{_device_file(device_id)}"


def fleet_results_prefix(mode: str, day: date, version: str, run_id: str) -> str:
    """Folder of one fleet run's published result: results.parquet, summary.json (the marker), extras.

    The run id is part of it: two runs of one version and mode on the same day are two computations (at
    two moments), and a published result is never replaced.
    """
    return (
        f"fleet/results/mode={_safe('mode', mode)}/date={day.isoformat()}/"
        f"version={_safe('version', version)}/run={_safe('run id', run_id)}/"
    )


def fleet_results_key(mode: str, day: date, version: str, run_id: str) -> str:
    """The published result of a fleet run."""
    return f"{fleet_results_prefix(mode, day, version, run_id)}results.parquet"


def fleet_results_sibling_key(mode: str, day: date, version: str, run_id: str, name: str) -> str:
    """Another object next to a published results.parquet (summary.json, rollback.parquet)."""
    return f"{fleet_results_prefix(mode, day, version, run_id)}{name}"
