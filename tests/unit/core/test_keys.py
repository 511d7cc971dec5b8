from datetime import date

import pytest

from eval_runner.contracts import SCHEMA_VERSION
from eval_runner.errors import ConfigError
from eval_runner.keys import (
    LEGACY_REVISION,
    Month,
    dataset_file_key,
    dataset_manifest_key,
    dataset_of_manifest_key,
    dataset_prefix,
    decision_key,
    evaluation_prefix,
    extract_prefix,
    fleet_batch_done_key,
    fleet_batch_key,
    fleet_results_key,
    month_of_manifest_key,
    review_csv_key,
    review_file_of_key,
    review_json_key,
)


def test_month_parses_and_spells_its_partition() -> None:
    month = Month.parse("2026-04")
    assert (month.year, month.month) == (2026, 4)
    assert str(month) == "2026-04"
    assert dataset_prefix(month, 1) == "capacity/datasets/year=2026/month=04/"


def test_a_month_extract_is_kept_per_extractor_schema_version_like_its_dataset() -> None:
    month = Month(2026, 4)
    assert extract_prefix(month, 1) == "capacity/extracts/year=2026/month=04/"
    assert extract_prefix(month, 2) == "capacity/extracts/year=2026/month=04/schema=2/"
    assert extract_prefix(month) == extract_prefix(month, SCHEMA_VERSION)


def test_each_extractor_schema_version_has_its_own_dataset_build() -> None:
    month = Month(2026, 4)
    assert dataset_prefix(month, 1) == "capacity/datasets/year=2026/month=04/"  # where datasets always were
    assert dataset_manifest_key(month, 2) == "capacity/datasets/year=2026/month=04/schema=2/manifest.json"
    assert dataset_file_key(month, "series", 12) == "capacity/datasets/year=2026/month=04/schema=12/series.parquet"
    for version in (1, 2, 12):
        assert dataset_of_manifest_key(dataset_manifest_key(month, version)) == (month, version)
    # Version 1 has no schema= folder, so a key that spells one is no build's manifest; nor is a file.
    assert dataset_of_manifest_key("capacity/datasets/year=2026/month=04/schema=1/manifest.json") is None
    assert dataset_of_manifest_key("capacity/datasets/year=2026/month=04/schema=02/manifest.json") is None
    assert dataset_of_manifest_key(dataset_file_key(month, "dataset", 2)) is None
    assert month_of_manifest_key(dataset_manifest_key(month, 3)) == month
    with pytest.raises(ConfigError, match="schema version 0 of 2026-04 is out of range"):
        dataset_prefix(month, 0)


def test_month_boundaries_cross_the_year() -> None:
    assert Month.parse("2026-12").end == date(2027, 1, 1)
    assert Month.parse("2026-01").previous() == Month(2025, 12)
    assert Month.parse("2026-03").start == date(2026, 3, 1)


@pytest.mark.parametrize("text", ["2026-4", "2026-13", "26-04", "april", "2026-04-01", ""])
def test_bad_month_is_a_config_error_naming_the_text(text: str) -> None:
    with pytest.raises(ConfigError, match="YYYY-MM") as raised:
        Month.parse(text)
    assert repr(text) in str(raised.value)


def test_layout_keys_match_the_design() -> None:
    month = Month.parse("2026-04")
    dataset, review = "d" * 64, "e" * 64
    assert evaluation_prefix(month, "0.9.0", dataset_hash=dataset, review_hash=review) == (
        f"capacity/evaluations/year=2026/month=04/version=0.9.0/dataset={dataset}/review={review}/"
    )
    assert review_csv_key(month, 3) == "capacity/reviews/year=2026/month=04/revision=000003/review.csv"
    assert review_json_key(month, LEGACY_REVISION) == "capacity/reviews/year=2026/month=04/review.json"
    assert decision_key("rel-0.10.0") == "capacity/decisions/rel-0.10.0/decision.json"
    assert fleet_batch_key("r1", 42) == "fleet/runs/r1/batches/batch=00042.parquet"
    assert fleet_batch_done_key("r1", 42) == "fleet/runs/r1/batches/batch=00042.done"
    assert (
        fleet_results_key("fleet", date(2026, 5, 1), "0.9.0", "rollout-1")
        == "fleet/results/mode=fleet/date=2026-05-01/version=0.9.0/run=rollout-1/results.parquet"
    )


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "x y", "..", "-lead"])
def test_unsafe_key_parts_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="cannot be used in an object key"):
        evaluation_prefix(Month(2026, 4), bad, dataset_hash="d" * 64, review_hash="e" * 64)


def test_review_keys_parse_back_to_their_revision() -> None:
    month = Month(2026, 4)
    assert review_file_of_key(month, review_json_key(month, 12)) == (12, "review.json")
    assert review_file_of_key(month, review_csv_key(month, LEGACY_REVISION)) == (LEGACY_REVISION, "review.csv")
    assert review_file_of_key(month, "capacity/reviews/year=2026/month=04/revision=1/review.csv") is None


def test_evaluation_keys_refuse_what_is_not_a_hash() -> None:
    with pytest.raises(ConfigError, match="review hash 'abc' is not a sha256"):
        evaluation_prefix(Month(2026, 4), "0.9.0", dataset_hash="d" * 64, review_hash="abc")
