"""`evaluations labels`: a release evaluates its candidate beside the champion, so compare and gate have both."""

from __future__ import annotations

import json

from click.testing import CliRunner

from eval_runner.cli import cli
from tests.fakes import FakeRuntime, FakeTracker, MemoryObjectStore
from tests.fixtures.evaluation import seed_champion


def _labels(tracker: FakeTracker, store: MemoryObjectStore, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["evaluations", "labels", *args], obj=FakeRuntime(tracker, store))
    return result.exit_code, result.output


def test_candidate_then_champion(fake_tracker: FakeTracker, eval_store: MemoryObjectStore) -> None:
    seed_champion(eval_store, fake_tracker, "0.9.0")
    code, out = _labels(fake_tracker, eval_store, "--candidate", "0.10.0")
    assert code == 0
    assert json.loads(out) == ["0.10.0", "0.9.0"]


def test_the_champion_is_the_record_not_the_alias(fake_tracker: FakeTracker, eval_store: MemoryObjectStore) -> None:
    seed_champion(eval_store, fake_tracker, "0.9.0")
    fake_tracker.promote("battery-lib", library_version="0.6.0", run_id="r0", alias="champion")  # moved by hand
    assert json.loads(_labels(fake_tracker, eval_store, "--candidate", "0.10.0")[1]) == ["0.10.0", "0.9.0"]


def test_a_candidate_that_is_the_champion_is_listed_once(
    fake_tracker: FakeTracker, eval_store: MemoryObjectStore
) -> None:
    seed_champion(eval_store, fake_tracker, "0.9.0")
    assert json.loads(_labels(fake_tracker, eval_store, "--candidate", "v0.9.0")[1]) == ["v0.9.0"]


def test_an_explicit_baseline_needs_no_champion(fake_tracker: FakeTracker, eval_store: MemoryObjectStore) -> None:
    out = _labels(fake_tracker, eval_store, "--candidate", "0.9.0", "--baseline", "0.8.0")[1]
    assert json.loads(out) == ["0.9.0", "0.8.0"]


def test_no_champion_yet_is_a_config_error_saying_what_to_do(
    fake_tracker: FakeTracker, eval_store: MemoryObjectStore
) -> None:
    # An alias alone is not a champion: anyone who reaches MLflow can set one.
    fake_tracker.promote("battery-lib", library_version="0.9.0", run_id="r1", alias="champion")
    result = CliRunner().invoke(
        cli, ["evaluations", "labels", "--candidate", "0.9.0"], obj=FakeRuntime(fake_tracker, eval_store)
    )
    assert result.exit_code != 0
    assert "has no champion of record yet; pass --baseline <version>" in str(result.exception)
