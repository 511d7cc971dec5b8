"""Stored records: the bytes each record class writes, pinned (hashes of them are identities), and their parse.

A manifest's bytes feed the dataset's identity, an extract's bytes its source fingerprint, and a record or
decision written again must equal the stored one (the store refuses a different second write). So each
class's bytes are pinned twice: against the encoding each class had before it shared one base (rebuilt
here from ``model_dump``), and against a hash taken from that old implementation. A change to a golden
hash is a change of every stored object of that class: make it on purpose, never to get a test green.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from eval_runner.contracts import BatteryParameters, CapacityTest, DeviceRecord, VersionEvent
from eval_runner.dataset.manifest import DatasetManifest, FileEntry, SourceFingerprint
from eval_runner.engines import EngineVersions
from eval_runner.errors import DataError
from eval_runner.evaluation.decision import (
    BaselineRef,
    CandidateRef,
    DecisionInputs,
    GateDecision,
    MonthEvaluation,
    MonthInputs,
    PolicyRef,
    Promotion,
)
from eval_runner.evaluation.judgement import Finding, GateResult
from eval_runner.evaluation.policy import GatePolicy
from eval_runner.evaluation.records import EvaluationRecord, PredictionsFile
from eval_runner.fleet.models import (
    ConfigurationSettings,
    DoneMarker,
    Halt,
    ParameterTarget,
    Plan,
    SnapshotBatch,
    SnapshotManifest,
    Summary,
)
from eval_runner.hashing import sha256_bytes
from eval_runner.review.manifest import ReviewError, ReviewMeta
from eval_runner.sources.extract import ShardExtract
from eval_runner.storage import ContentConflictError, put_record, stored_encoding
from eval_runner.stored import StoredRecord
from tests.fakes import MemoryObjectStore

ENGINES = EngineVersions(polars="1.31.0", pyarrow="20.0.0")
AT = datetime(2026, 4, 20, 10, 30, tzinfo=UTC)


def _hex(seed: str) -> str:
    return sha256_bytes(seed.encode())


def _manifest() -> DatasetManifest:
    return DatasetManifest(
        month="2026-04",
        schema_version=3,
        eval_runner_version="0.1.0",
        engines=ENGINES,
        content_hash=_hex("content"),
        files={
            "series": FileEntry(
                key="capacity/datasets/year=2026/month=04/series.parquet", sha256=_hex("s"), rows=9, size=4096
            ),
            "dataset": FileEntry(
                key="capacity/datasets/year=2026/month=04/dataset.parquet", sha256=_hex("d"), rows=3, size=512
            ),
        },
        sources={
            "shards": SourceFingerprint(rows=12, sha256=_hex("shards")),
            "analytics": SourceFingerprint(rows=0, sha256=_hex("")),
        },
        suggestion_policy={"max_gap_days": 3.5, "min_share": 1e-07, "min_tests": 1.0},
    )


def _evaluation_record() -> EvaluationRecord:
    # A NaN metric (a NaN prediction) is written as a bare NaN today; None as null; a non-ASCII label escaped.
    overall = {
        "n_samples": 3,
        "runtime_abs_error_mean": float("nan"),
        "runtime_abs_error_median": 0.1,
        "capacity_abs_error_p95": 12345.678,
        "runtime_q10_q90_coverage": None,
    }
    return EvaluationRecord(
        month="2026-04",
        library_version="0.9.0",
        version_label="v0.9.0-größer",
        api_generation=2,
        image_digest="sha256:" + _hex("image"),
        eval_runner_version="0.1.0",
        engines=ENGINES,
        dataset_hash=_hex("content"),
        manifest_sha256=_hex("manifest"),
        review_csv_sha256=_hex("review"),
        n_dataset_samples=4,
        n_approved=3,
        n_approved_without_truth=0,
        n_evaluated=3,
        predictions=PredictionsFile(key="capacity/evaluations/x/predictions.parquet", sha256=_hex("p"), rows=3),
        metrics={"overall": overall, "segments": {"hardware_revision": {"C": {"n_samples": 3}}}},
    )


def _decision() -> GateDecision:
    finding = Finding(
        rule="primary",
        pool="all",
        outcome="pass",
        n_devices=120,
        n_samples=360,
        baseline_value=2.5,
        candidate_value=2.0,
        change=-0.2,
        upper_bound=-0.05,
        confidence=0.95,
        threshold=0.05,
        reason="primary: 20% better",
    )
    result = GateResult(
        verdict="pass",
        reasons=["pass: better"],
        metric="runtime_abs_error",
        statistic="median",
        n_samples=360,
        n_devices=120,
        n_missing_candidate=0,
        n_missing_baseline=1,
        findings=[finding],
    )
    month = MonthEvaluation(
        predictions_sha256=_hex("p"),
        image_digest="sha256:" + _hex("i"),
        version_label="0.9.0",
        metrics={"n_samples": 360, "runtime_abs_error_median": 2.0, "coverage": None},
    )
    return GateDecision(
        release_id="release-0-9-0",
        verdict="pass",
        reasons=result.reasons,
        inputs=DecisionInputs(
            months=["2026-04"],
            candidate=CandidateRef(label="v0.9.0", library_version="0.9.0"),
            baseline=BaselineRef(label="champion", library_version="0.8.0", model_version="3"),
        ),
        hashes={"2026-04": MonthInputs(dataset_hash=_hex("c"), manifest_sha256=_hex("m"), review_csv_sha256=_hex("r"))},
        evaluations={"0.9.0": {"2026-04": month}},
        images={"0.9.0": "sha256:" + _hex("i"), "0.8.0": "sha256:" + _hex("j")},
        policy=PolicyRef(name="default.yaml", sha256=_hex("policy"), rule=GatePolicy()),
        result=result,
        promotion=Promotion(requested=True, model="battery-lib", alias="champion"),
        eval_runner_version="0.1.0",
    )


def _extract() -> ShardExtract:
    # Unsorted on purpose: the bytes are of the canonical (sorted) content.
    return ShardExtract(
        shard=3,
        month="2026-04",
        devices=[
            DeviceRecord(device_id="dev-b", site_id="Zürich", installed_at=AT),
            DeviceRecord(device_id="dev-a", site_id="s", installed_at=AT),
        ],
        capacity_tests=[
            CapacityTest(
                test_id="t1",
                device_id="dev-a",
                tested_at=AT,
                remaining_mah=1000.5,
                remaining_runtime_days=100.0,
                runtime_source="estimated",
                runtime_censored=False,
            )
        ],
        version_events=[
            VersionEvent(device_id="dev-a", effective_at=AT, component="hardware", version="C"),
            VersionEvent(device_id="dev-a", effective_at=AT, component="firmware", version="1.2"),
        ],
        battery_parameters=[
            BatteryParameters(
                device_id="dev-a", chemistry="alkaline", nominal_capacity_mah=2600.0, cutoff_mv=2200, installed_at=AT
            )
        ],
    )


def _review_meta() -> ReviewMeta:
    return ReviewMeta(
        month="2026-04",
        reviewer="Ana Müller",
        reviewed_at=datetime(2026, 5, 2, 9, tzinfo=UTC),
        dataset_hash=_hex("content"),
        review_csv_sha256=_hex("csv"),
        approved=3,
        rejected=1,
    )


def _document(record: StoredRecord) -> bytes:
    """The encoding the manifest, evaluation record, decision and review meta wrote before they shared a base."""
    return (json.dumps(record.model_dump(mode="json"), sort_keys=True, indent=2) + "\n").encode()


def _line(record: StoredRecord) -> bytes:
    """The encoding the extract wrote before: one line (no indent, no newline) of its canonical content."""
    return json.dumps(record.canonical().model_dump(mode="json"), sort_keys=True).encode()


# record_type (what a parse error calls it): a representative record, and the encoding it had before.
RECORDS: dict[str, tuple[Callable[[], StoredRecord], Callable[[StoredRecord], bytes]]] = {
    "dataset manifest": (_manifest, _document),
    "evaluation record": (_evaluation_record, _document),
    "gate decision": (_decision, _document),
    "review meta": (_review_meta, _document),
    "shard extract": (_extract, _line),
}
# review.json's parse names every problem at its line (ReviewError), not "not a valid ...".
NOT_A_VALID = sorted(set(RECORDS) - {"review meta"})

# sha256 of each record's to_json_bytes(), taken from the implementation before the shared base.
GOLDEN = {
    "dataset manifest": "1c20503a038e790550813173d4f8637ad47a490c7d5bb9aba33219db8b6018fe",
    "evaluation record": "3c583ed72f73e3e87f6467498bdafc95aee5847ebeaee9526a9ea6b7b16ad68c",
    # Changed on purpose: the promotion gained replaces_generation (the champion of record's CAS), then
    # the result gained truth and n_excluded_by_truth (which runtime truths the gate judged).
    "gate decision": "fb523178e39554cabdaa8757bfc0be57783a47cc881bb6f2a90e9a8f4c28e395",
    "review meta": "caa845b5ce0d9e9e8a33e6d27f51bf9c1dde9398549739e8a7f97a31e8bead91",
    # Changed on purpose: a capacity test says how its runtime is known (runtime_source, runtime_censored).
    "shard extract": "70e6daf2af98aba7a9299b42838ba11f2431c53b3ab34a1fa2b085f202d6ca9e",
}


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_every_record_class_writes_the_bytes_it_wrote_before(kind: str) -> None:
    build, old_encoding = RECORDS[kind]
    record = build()
    data = record.to_json_bytes()
    assert data == old_encoding(record)
    assert sha256_bytes(data) == GOLDEN[kind]


def test_an_extract_is_one_line_of_sorted_content_with_non_ascii_escaped() -> None:
    data = _extract().to_json_bytes()
    assert b"\n" not in data
    assert data.index(b'"dev-a"') < data.index(b'"dev-b"')
    assert b'"Z\\u00fcrich"' in data


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_a_record_reads_back_and_writes_the_same_bytes_again(kind: str) -> None:
    record = RECORDS[kind][0]()
    data = record.to_json_bytes()
    assert type(record).from_json_bytes(data, name="k").to_json_bytes() == data


@pytest.mark.parametrize("kind", NOT_A_VALID)
@pytest.mark.parametrize("data", [b"{not json", b"", b"[]", b'{"kind": "something else"}'], ids=repr)
def test_bad_json_or_another_schema_is_a_data_error_naming_the_object_and_the_record_type(
    kind: str, data: bytes
) -> None:
    record_class = type(RECORDS[kind][0]())
    assert record_class.record_type == kind
    with pytest.raises(DataError, match=rf"^some/key\.json: not a valid {kind}: \d+ validation error"):
        record_class.from_json_bytes(data, name="some/key.json")


def test_review_meta_reads_through_parse_review_meta_naming_the_line() -> None:
    emptied = _review_meta().to_json_bytes().replace(b'"Ana M\\u00fcller"', b'""')
    with pytest.raises(ReviewError, match=r"^r/review\.json: 1 problem\(s\):\n  r/review\.json line 8: reviewer: "):
        ReviewMeta.from_json_bytes(emptied, name="r/review.json")


def _reject_constant(name: str) -> object:
    raise AssertionError(f"bare {name} in strict JSON")


def test_a_decision_writes_nan_and_infinities_as_strings_and_reads_them_back() -> None:
    # A candidate that predicts NaN has NaN metrics; a baseline with no error gives an infinite change.
    decision = _decision()
    month = decision.evaluations["0.9.0"]["2026-04"]
    month = month.model_copy(update={"metrics": {"runtime_abs_error_p90": float("nan"), "n_samples": 360}})
    finding = decision.result.findings[0].model_copy(update={"change": float("inf"), "upper_bound": float("-inf")})
    decision = decision.model_copy(
        update={
            "evaluations": {"0.9.0": {"2026-04": month}},
            "result": decision.result.model_copy(update={"findings": [finding]}),
        }
    )

    data = decision.to_json_bytes()

    parsed = json.loads(data, parse_constant=_reject_constant)
    assert parsed["evaluations"]["0.9.0"]["2026-04"]["metrics"]["runtime_abs_error_p90"] == "NaN"
    assert parsed["result"]["findings"][0]["change"] == "Infinity"
    assert parsed["result"]["findings"][0]["upper_bound"] == "-Infinity"
    assert json.loads(decision.model_dump_json()) == parsed  # what pydantic itself writes for these values
    again = GateDecision.from_json_bytes(data, name="k")
    assert again.result.findings[0].change == float("inf")
    assert again.to_json_bytes() == data


def _fleet_records() -> list[StoredRecord]:
    """A fleet record of each class, with nested parts and maps whose keys a field order would not sort."""
    batch = SnapshotBatch(
        batch=0, devices=2, first_device="dev-b", last_device="dev-a", samples_sha256=_hex("sa"),
        series_sha256=_hex("se"), series_rows=48,
    )  # fmt: skip
    targets = {"lithium": ParameterTarget(nominal_capacity_mah=2600, cutoff_mv=2900)}
    return [
        SnapshotManifest(
            run_id="r1",
            as_of=AT,
            series_days=30,
            batch_size=100,
            n_devices=2,
            devices_sha256=_hex("d"),
            batches=(batch,),
        ),
        Plan(
            run_id="r1",
            mode="configuration",
            as_of=AT,
            n_devices=2,
            n_batches=1,
            snapshot_sha256=_hex("m"),
            shards={"s001": (), "s000": (0,)},
            configuration=ConfigurationSettings(targets=targets),
        ),
        DoneMarker(batch=0, result_sha256=_hex("r"), devices=2, library_version="0.9.0", failures=1),
        Halt(batch=0, attempted=20, failed=5, error_rate=0.25, max_error_rate=0.05, first_errors=("x",), shard="s000"),
        Summary(
            run_id="r1",
            mode="fleet",
            library_version="0.9.0",
            as_of=AT,
            devices=2,
            batches=1,
            results_sha256=_hex("r"),
            counts={"failures": 0, "devices": 2},
        ),
    ]


def _old_fleet_encoding(record: StoredRecord) -> bytes:
    """What the fleet models wrote before they were stored records: field order, indented by 1."""
    unset = {name for name in record.omit_if_none if getattr(record, name) is None}
    return (record.model_dump_json(indent=1, exclude=unset) + "\n").encode()


@pytest.mark.parametrize("record", _fleet_records(), ids=lambda r: type(r).__name__)
def test_fleet_records_encode_with_sorted_keys_and_read_their_old_encoding(record: StoredRecord) -> None:
    data = record.to_json_bytes()
    assert data == (json.dumps(json.loads(data), sort_keys=True, indent=2) + "\n").encode()  # sorted at every level
    assert list(json.loads(data)) == sorted(json.loads(data))
    assert data != _old_fleet_encoding(record)  # the key order of each class's fields is not sorted
    assert type(record).from_json_bytes(_old_fleet_encoding(record), name="k") == record


def test_an_ungated_plan_leaves_the_gate_fields_out() -> None:
    plan = _fleet_records()[1]
    assert {"gate", "gate_override_reason"}.isdisjoint(json.loads(plan.to_json_bytes()))


def test_a_record_stored_in_an_older_encoding_counts_as_written_and_a_different_one_conflicts() -> None:
    store = MemoryObjectStore()
    marker = _fleet_records()[2]
    assert isinstance(marker, DoneMarker)
    old = _old_fleet_encoding(marker)
    store.objects["done"] = old
    assert put_record(store, "done", marker) == sha256_bytes(old)
    assert stored_encoding(store, "done", marker) == old
    assert store.objects["done"] == old and store.writes == []
    changed = marker.model_copy(update={"failures": 2})
    with pytest.raises(ContentConflictError):
        put_record(store, "done", changed)
    assert stored_encoding(store, "done", changed) == changed.to_json_bytes()  # publish then refuses it
    assert stored_encoding(store, "absent", marker) == marker.to_json_bytes()
