"""`evaluations labels`: a release evaluates its candidate beside the champion, so compare and gate have both."""

from __future__ import annotations

import json

from click.testing import CliRunner

from eval_runner.cli import cli
from eval_runner.runtime import Runtime
from eval_runner.settings import MlflowSettings
from tests.fixtures.evaluation import FakeTracker


class _Runtime(Runtime):
    def __init__(self, tracker: FakeTracker) -> None:
        super().__init__()
        self._tracker = tracker

    def tracker(self) -> FakeTracker:  # type: ignore[override]  # the fake stands in for MlflowTracker
        return self._tracker

    def mlflow_settings(self) -> MlflowSettings:
        return MlflowSettings(tracking_uri="http://unused")


def _labels(tracker: FakeTracker, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["evaluations", "labels", *args], obj=_Runtime(tracker))
    return result.exit_code, result.output


def test_candidate_then_champion(fake_tracker: FakeTracker) -> None:
    fake_tracker.promote("battery-lib", library_version="0.9.0", run_id="r1", alias="champion")
    code, out = _labels(fake_tracker, "--candidate", "0.10.0")
    assert code == 0
    assert json.loads(out) == ["0.10.0", "0.9.0"]


def test_a_candidate_that_is_the_champion_is_listed_once(fake_tracker: FakeTracker) -> None:
    fake_tracker.promote("battery-lib", library_version="0.9.0", run_id="r1", alias="champion")
    assert json.loads(_labels(fake_tracker, "--candidate", "v0.9.0")[1]) == ["v0.9.0"]


def test_an_explicit_baseline_needs_no_champion(fake_tracker: FakeTracker) -> None:
    assert json.loads(_labels(fake_tracker, "--candidate", "0.9.0", "--baseline", "0.8.0")[1]) == ["0.9.0", "0.8.0"]


def test_no_champion_yet_is_a_config_error_saying_what_to_do(fake_tracker: FakeTracker) -> None:
    result = CliRunner().invoke(cli, ["evaluations", "labels", "--candidate", "0.9.0"], obj=_Runtime(fake_tracker))
    assert result.exit_code != 0
    assert "has no 'champion' alias yet; pass --baseline <version>" in str(result.exception)
