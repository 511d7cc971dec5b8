"""Compare, gate and the evaluations matrix on an in-memory store with fake predictors and tracker."""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from datetime import UTC, datetime

import polars as pl
import pytest

from eval_runner.contracts import SCHEMA_VERSION
from eval_runner.dataset.manifest import SourceFingerprint
from eval_runner.dataset.publish import encode_dataset, publish_dataset
from eval_runner.dataset.reader import dataset_builds, load_dataset
from eval_runner.dataset.shape import EVENTS_SCHEMA
from eval_runner.errors import ConfigError, DataError
from eval_runner.evaluation import champion, compare, evaluate, gate
from eval_runner.evaluation.decision import GateDecision
from eval_runner.evaluation.lineage import month_lineage
from eval_runner.evaluation.matrix import evaluations_frame, matrix
from eval_runner.evaluation.records import list_records
from eval_runner.keys import Month, decision_key
from eval_runner.review.reader import load_review, save_review
from tests.fakes import FakePredictor, FakeTracker, MemoryObjectStore
from tests.fixtures.evaluation import (
    publish_reviewed_month,
    seed_champion,
    synthetic_month,
    truth_of,
)
from tests.fixtures.gate_world import DEFAULT_POLICY, GATE_BIAS, GATE_SAMPLES, evaluate_all, gate_params, image_of

APRIL, MAY = Month(2026, 4), Month(2026, 5)
N = GATE_SAMPLES
POLICY = DEFAULT_POLICY


def test_compare_ranks_versions_and_logs_one_comparison_run(gate_world: tuple[MemoryObjectStore, FakeTracker]) -> None:
    store, tracker = gate_world
    params = compare.CompareParams((APRIL, MAY), ("0.8.0", "0.9.0", "0.10.0"))
    out = compare.run(params, store=store, tracker=tracker)
    assert out.leaderboard.get_column("version").to_list()[-1] == "0.8.0"
    assert out.leaderboard.get_column("n_samples").to_list() == [2 * (N - N // 50)] * 3
    rev_c = out.segments.filter((pl.col("segment") == "hardware_revision=C") & (pl.col("version") == "0.10.0"))
    assert rev_c.get_column("runtime_change").item() > 0.3
    runs = [r for r in tracker.runs if r[0] == "comparisons"]
    assert len(runs) == 1
    artifacts = runs[0][3].artifacts
    assert {"leaderboard.csv", "segments.csv", "plots/cdf_runtime_abs_error.png"} <= set(artifacts)
    again = compare.run(params, store=store, tracker=tracker)
    assert again.reused and again.run_id == out.run_id


def test_compare_refuses_evaluations_on_different_inputs(
    eval_store: MemoryObjectStore, fake_tracker: FakeTracker
) -> None:
    evaluate_all(eval_store, fake_tracker, months=(APRIL,))
    key = _record_key(eval_store, "year=2026/month=04/version=0.9.0/")
    record = json.loads(eval_store.objects[key])
    record["manifest_sha256"] = "f" * 64
    eval_store.objects[key] = json.dumps(record).encode()
    with pytest.raises(
        DataError, match=r"evaluations of 2026-04 were made on different inputs.*0\.9\.0 on dataset \w+ / manifest ffff"
    ):
        compare.run(compare.CompareParams((APRIL,), ("0.8.0", "0.9.0")), store=eval_store,
                         tracker=fake_tracker)  # fmt: skip


def test_gate_on_two_months_promotes_a_clear_win_and_refuses_the_rev_c_regression(
    gate_world: tuple[MemoryObjectStore, FakeTracker],
) -> None:
    store, tracker = gate_world
    with pytest.raises(ConfigError, match="has no champion of record yet; pass --baseline <version>"):
        gate.run(gate_params("0.9.0"), store=store, tracker=tracker)
    first = gate.run(gate_params("0.9.0", baseline="0.8.0"), store=store, tracker=tracker)
    assert first.decision.verdict == "pass" and first.promoted is not None
    assert first.decision.promotion.replaces_generation == 0 and first.promoted.generation == 1
    assert champion.current(store, "battery-lib") == first.promoted
    assert tracker.alias_version("battery-lib", "champion").library_version == "0.9.0"  # type: ignore[union-attr]
    decision = json.loads(store.get_bytes(first.key))
    assert decision["inputs"]["months"] == ["2026-04", "2026-05"]
    assert set(decision["hashes"]) == {"2026-04", "2026-05"}
    assert decision["evaluations"]["0.9.0"]["2026-05"]["predictions_sha256"]
    assert decision["policy"]["rule"]["primary"]["min_improvement"] == 0.05
    assert decision["images"] == {v: image_of(v) for v in ("0.8.0", "0.9.0")}
    assert first.decision.candidate_image == image_of("0.9.0")

    second = gate.run(gate_params("0.10.0"), store=store, tracker=tracker)
    assert second.decision.verdict == "refuse" and second.promoted is None
    assert second.decision.inputs.baseline.library_version == "0.9.0"
    assert second.decision.promotion.replaces_generation == 1
    assert champion.current(store, "battery-lib") == first.promoted
    assert any(r.startswith("refuse:") and "hardware_revision=C" in r for r in second.decision.reasons)
    assert tracker.alias_version("battery-lib", "champion").library_version == "0.9.0"  # type: ignore[union-attr]
    assert [r for r in tracker.runs if r[0] == "gates"][-1][3].params["verdict"] == "refuse"


def test_a_retried_gate_reuses_its_decision_after_the_champion_moved(
    gate_world: tuple[MemoryObjectStore, FakeTracker],
) -> None:
    store, tracker = gate_world
    seed_champion(store, tracker, "0.8.0")
    params = gate_params("0.9.0", baseline="champion")
    first = gate.run(params, store=store, tracker=tracker)
    assert first.decision.verdict == "pass" and first.promoted is not None and first.promoted.generation == 2
    assert tracker.alias_version("battery-lib", "champion").library_version == "0.9.0"  # type: ignore[union-attr]
    writes = len(store.writes)
    # The champion is the candidate now; a retry must not ask "0.9.0 against 0.9.0".
    again = gate.run(params, store=store, tracker=tracker)
    assert again.reused and again.decision == first.decision and len(store.writes) == writes
    assert again.promoted == first.promoted
    assert len([r for r in tracker.runs if r[0] == "gates"]) == 1


def test_another_baseline_is_another_question(gate_world: tuple[MemoryObjectStore, FakeTracker]) -> None:
    store, tracker = gate_world
    against_08 = gate.run(gate_params("0.10.0", baseline="0.8.0", promote=False), store=store, tracker=tracker)
    against_09 = gate.run(gate_params("0.10.0", baseline="0.9.0", promote=False), store=store, tracker=tracker)
    assert not against_09.reused and against_09.key != against_08.key
    assert against_09.decision.inputs.baseline.library_version == "0.9.0"
    assert "-vs-0.9.0-" in against_09.decision.release_id


def test_an_empty_release_id_is_the_default_one(gate_world: tuple[MemoryObjectStore, FakeTracker]) -> None:
    # The evaluate template passes `--release-id=` when it was given none (release passes its Workflow's name).
    store, tracker = gate_world
    default = gate.run(gate_params("0.10.0", baseline="0.8.0", promote=False), store=store, tracker=tracker)
    empty = dataclasses.replace(gate_params("0.10.0", baseline="0.8.0", promote=False), release_id="")
    again = gate.run(empty, store=store, tracker=tracker)
    assert again.reused and again.key == default.key
    named = dataclasses.replace(empty, release_id="release-battery-lib-0-10-0-e2e-1-0123abcd")
    own = gate.run(named, store=store, tracker=tracker)
    assert not own.reused and own.key == "capacity/decisions/release-battery-lib-0-10-0-e2e-1-0123abcd/decision.json"


def test_a_release_id_with_other_inputs_is_refused(gate_world: tuple[MemoryObjectStore, FakeTracker]) -> None:
    store, tracker = gate_world
    gate.run(gate.GateParams(months=(APRIL,), candidate="0.9.0", baseline="0.8.0", policy_text=POLICY,
                                       policy_name="p", release_id="r1"), store=store, tracker=tracker)  # fmt: skip
    with pytest.raises(DataError, match="already holds a decision for other inputs"):
        gate.run(gate.GateParams(months=(APRIL,), candidate="0.10.0", baseline="0.8.0", policy_text=POLICY,
                                           policy_name="p", release_id="r1"), store=store, tracker=tracker)  # fmt: skip
    assert store.exists(decision_key("r1"))


def test_months_evaluated_in_different_images_are_not_gated(gate_world: tuple[MemoryObjectStore, FakeTracker]) -> None:
    store, tracker = gate_world
    key = _record_key(store, "year=2026/month=05/version=0.9.0/")
    record = json.loads(store.objects[key])
    record["image_digest"] = image_of("rebuilt")
    store.objects[key] = json.dumps(record).encode()
    with pytest.raises(DataError, match=r"evaluations of 0\.9\.0 were made in 2 different images"):
        gate.run(gate_params("0.9.0", baseline="0.8.0"), store=store, tracker=tracker)


class NaNPredictor(FakePredictor):
    """An untrusted library that answers NaN for every fifth sample's runtime."""

    def predict(self, samples: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
        every_fifth = pl.int_range(pl.len()) % 5 == 0
        runtime = pl.when(every_fifth).then(float("nan")).otherwise(pl.col("runtime_days_p50"))
        return super().predict(samples, series).with_columns(runtime.alias("runtime_days_p50"))


def test_a_candidate_that_predicts_nan_gets_a_decision_in_strict_json(
    eval_store: MemoryObjectStore, fake_tracker: FakeTracker
) -> None:
    evaluate_all(eval_store, fake_tracker, months=(APRIL,))
    truth = truth_of(synthetic_month(APRIL, N, seed=0)[0])
    predictor = NaNPredictor("0.11.0", truth, {}, noise=0.15)
    evaluate.run(evaluate.EvaluateParams(APRIL, "0.11.0", image_digest=image_of("0.11.0")), store=eval_store,
                 tracker=fake_tracker, predictor=predictor)  # fmt: skip
    params = gate.GateParams(months=(APRIL,), candidate="0.11.0", baseline="0.8.0", policy_text=POLICY,
                                  policy_name="default.yaml", release_id="r-nan")  # fmt: skip

    out = gate.run(params, store=eval_store, tracker=fake_tracker)

    assert out.decision.verdict != "pass"
    assert any("no prediction (null or NaN)" in r for r in out.decision.reasons)
    headline = out.decision.evaluations["0.11.0"]["2026-04"].metrics
    assert math.isnan(headline["runtime_abs_error_p90"] or 0.0)
    data = eval_store.get_bytes(out.key)
    assert b'"runtime_abs_error_p90": "NaN"' in data and b": NaN" not in data
    assert GateDecision.from_json_bytes(data, name=out.key).to_json_bytes() == data


def test_a_bad_policy_writes_no_decision(gate_world: tuple[MemoryObjectStore, FakeTracker]) -> None:
    store, tracker = gate_world
    bad = gate.GateParams(months=(APRIL,), candidate="0.9.0", baseline="0.8.0", policy_text="primary: {x: 1}",
                               policy_name="bad.yaml", release_id="r2")  # fmt: skip
    with pytest.raises(ConfigError, match=r"gate policy bad\.yaml: primary\.x: Extra inputs"):
        gate.run(bad, store=store, tracker=tracker)
    assert not store.exists(decision_key("r2"))


def test_matrix_shows_every_month_and_version(gate_world: tuple[MemoryObjectStore, FakeTracker]) -> None:
    store, _ = gate_world
    table = matrix(list_records(store), _current(store))
    assert table.columns == ["month", "0.8.0", "0.9.0", "0.10.0"]
    assert table.get_column("month").to_list() == ["2026-04", "2026-05"]
    assert all(" d @" in cell and "stale" not in cell for cell in table.get_column("0.10.0").to_list())


def test_matrix_marks_missing_combinations(eval_store: MemoryObjectStore, fake_tracker: FakeTracker) -> None:
    evaluate_all(eval_store, fake_tracker, months=(APRIL,))
    publish_reviewed_month(eval_store, MAY, 100, seed=5)
    truth = truth_of(synthetic_month(MAY, 100, seed=5)[0])
    evaluate.run(evaluate.EvaluateParams(MAY, "0.9.0"), store=eval_store, tracker=fake_tracker,
                 predictor=FakePredictor("0.9.0", truth, {}))  # fmt: skip
    table = matrix(list_records(eval_store), _current(eval_store))
    may = table.filter(pl.col("month") == "2026-05").row(0, named=True)
    assert may["0.8.0"] == "-" and may["0.10.0"] == "-" and may["0.9.0"] != "-"


def _record_key(store: MemoryObjectStore, folder: str) -> str:
    """The one metrics.json of a (month, version) folder (its key names the dataset and review hashes)."""
    keys = [k for k in store.list(f"capacity/evaluations/{folder}") if k.endswith("/metrics.json")]
    assert len(keys) == 1, keys
    return keys[0]


def _current(store: MemoryObjectStore) -> dict[str, tuple[str, str] | None]:
    months = {record.month for record in list_records(store)}
    lineage = {m: month_lineage(store, Month.parse(m)) for m in months}
    return {m: (item.dataset_hash, item.review_hash) for m, item in lineage.items()}


def _revise(store: MemoryObjectStore, month: Month) -> str:
    """A second review revision of ``month`` that rejects one more sample; return its review hash."""
    lineage = month_lineage(store, month)
    current = load_review(store, month, lineage.dataset_hash)
    decisions = dict.fromkeys(current.approved, True) | dict.fromkeys(current.rejected, False)
    decisions[sorted(current.approved)[0]] = False
    dataset = load_dataset(store, month, with_series=False).dataset
    revised = save_review(store, month, decisions, reviewer="second", reviewed_at=datetime(2026, 6, 1, tzinfo=UTC),
                          dataset_hash=lineage.dataset_hash, sample_ids=dataset["sample_id"].to_list())  # fmt: skip
    return revised.review_hash


def test_the_gate_refuses_evaluations_of_a_stale_review(gate_world: tuple[MemoryObjectStore, FakeTracker]) -> None:
    store, tracker = gate_world
    old = month_lineage(store, MAY).review_hash
    new = _revise(store, MAY)  # every evaluation of May is now of a stale review
    with pytest.raises(DataError, match=rf"no evaluation of version \S+ on 2026-05 with review {new}.*only stale "
                                        rf"evaluations exist, made on review {old}"):  # fmt: skip
        gate.run(gate_params("0.9.0", baseline="0.8.0", promote=False), store=store, tracker=tracker)
    with pytest.raises(DataError, match=rf"review of 2026-05: this step must use review {old}, but the month's "
                                        rf"current review is {new}"):  # fmt: skip
        gate.run(dataclasses.replace(gate_params("0.9.0", baseline="0.8.0", promote=False),
                                          review_hashes={MAY: old}), store=store, tracker=tracker)  # fmt: skip
    assert store.list("capacity/decisions/") == []


def test_after_re_evaluating_the_gate_judges_and_names_the_current_reviews(
    gate_world: tuple[MemoryObjectStore, FakeTracker],
) -> None:
    store, tracker = gate_world
    new = _revise(store, MAY)
    truth = truth_of(synthetic_month(MAY, N, seed=1)[0])
    for version in ("0.8.0", "0.9.0"):
        bias, noise = GATE_BIAS[version]
        predictor = FakePredictor(version, truth, bias, noise=noise, seed=zlib.crc32(version.encode()))
        params = evaluate.EvaluateParams(MAY, version, image_digest=image_of(version))
        evaluate.run(params, store=store, tracker=tracker, predictor=predictor)
    out = gate.run(dataclasses.replace(gate_params("0.9.0", baseline="0.8.0", promote=False),
                                            review_hashes={MAY: new}), store=store, tracker=tracker)  # fmt: skip
    assert out.decision.hashes["2026-05"].review_csv_sha256 == new
    assert out.decision.hashes["2026-04"].review_csv_sha256 == month_lineage(store, APRIL).review_hash


def test_the_matrix_marks_stale_evaluations(gate_world: tuple[MemoryObjectStore, FakeTracker]) -> None:
    store, tracker = gate_world
    _revise(store, MAY)
    truth = truth_of(synthetic_month(MAY, N, seed=1)[0])
    evaluate.run(evaluate.EvaluateParams(MAY, "0.9.0", image_digest=image_of("0.9.0")), store=store, tracker=tracker,
                 predictor=FakePredictor("0.9.0", truth, {}, noise=0.15))  # fmt: skip
    records = list_records(store)
    frame = evaluations_frame(records, _current(store))
    may = frame.filter(pl.col("month") == "2026-05")
    assert sorted(may.filter(pl.col("status") == "stale").get_column("version").to_list()) == [
        "0.10.0",
        "0.8.0",
        "0.9.0",
    ]
    assert may.filter(pl.col("status") == "current").get_column("version").to_list() == ["0.9.0"]
    row = matrix(records, _current(store)).filter(pl.col("month") == "2026-05").row(0, named=True)
    assert row["0.9.0"].endswith(" +1 stale") and not row["0.9.0"].startswith("stale")
    assert row["0.8.0"].startswith("stale: ") and row["0.10.0"].startswith("stale: ")
    april = matrix(records, _current(store)).filter(pl.col("month") == "2026-04").row(0, named=True)
    assert not any("stale" in april[v] for v in ("0.8.0", "0.9.0", "0.10.0"))


NOW, NEXT = SCHEMA_VERSION, SCHEMA_VERSION + 1  # the extractor's version, and a pretended next one


def _publish_may_by_extractor_v2(store: MemoryObjectStore) -> str:
    """May's build by a (pretended) next extractor schema version, other samples; return its content hash."""
    dataset, series = synthetic_month(MAY, N, seed=7)
    objects, manifest = encode_dataset(MAY, dataset, series, pl.DataFrame(schema=EVENTS_SCHEMA),
                                       sources={"analytics": SourceFingerprint(rows=N, sha256="0" * 64)},
                                       suggestion_policy={"max_days_offline": 3.0}, schema_version=NEXT)  # fmt: skip
    publish_dataset(store, objects, manifest)
    return manifest.content_hash


def _dataset_schemas(store: MemoryObjectStore) -> dict[str, int]:
    """What `evaluations list` gives the matrix: each published build's content hash and extractor version."""
    builds = [(v, m) for month in (APRIL, MAY) for v, m in dataset_builds(store, month).items()]
    return {manifest.content_hash: version for version, manifest in builds}


def test_the_matrix_flags_evaluations_of_another_extractor_version_incomparable(
    gate_world: tuple[MemoryObjectStore, FakeTracker],
) -> None:
    store, _ = gate_world
    v1_current = _current(store)
    v2_hash = _publish_may_by_extractor_v2(store)
    schemas = _dataset_schemas(store)
    assert sorted(schemas.values()) == [NOW, NOW, NEXT] and schemas[v2_hash] == NEXT
    records = list_records(store)
    # This extractor still sees every evaluation current: the old build is kept as it was.
    as_v1 = evaluations_frame(records, v1_current, schemas, schema_version=NOW)
    assert set(as_v1.get_column("status")) == {"current"} and set(as_v1.get_column("schema_version")) == {NOW}
    # The next extractor: every evaluation is of this version's build, so none may be compared with its own.
    as_v2 = matrix(records, {"2026-04": None, "2026-05": None}, schemas, schema_version=NEXT)
    cells = [as_v2.get_column(version).to_list() for version in ("0.8.0", "0.9.0", "0.10.0")]
    assert all(cell.startswith(f"incomparable (schema v{NOW}): ") for column in cells for cell in column), cells
    # An evaluation of May's next-version build is current; the old one stays in the cell, counted apart.
    may_090 = next(r for r in records if (r.month, r.library_version) == ("2026-05", "0.9.0"))
    v2_review = "f" * 64
    on_v2 = may_090.model_copy(update={"dataset_hash": v2_hash, "review_csv_sha256": v2_review})
    row = matrix([*records, on_v2], {"2026-05": (v2_hash, v2_review)}, schemas, schema_version=NEXT).row(1, named=True)
    error = on_v2.metrics["overall"]["runtime_abs_error_median"]
    assert row["month"] == "2026-05" and isinstance(error, float)
    assert row["0.9.0"] == f"{round(error, 2)} d @{v2_hash[:8]}/ffffffff +1 incomparable"
