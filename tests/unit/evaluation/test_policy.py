"""Gate policy files: validation with clear errors, and the shipped examples parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval_runner.errors import ConfigError
from eval_runner.evaluation.policy import parse_policy

POLICIES = Path(__file__).parents[3] / "policies"


def test_defaults_fill_the_segment_rule_from_the_primary() -> None:
    policy = parse_policy("primary: {metric: capacity_rel_error, statistic: p90}", name="x.yaml")
    assert (policy.segments.metric, policy.segments.statistic) == ("capacity_rel_error", "p90")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("primary: {metric: runtime_error}", r"x\.yaml: primary\.metric: Input should be"),
        ("primary: {min_improvement: 2}", r"primary\.min_improvement: Input should be less than 1"),
        ("segments: {max_regresion: 0.1}", r"segments\.max_regresion: Extra inputs are not permitted"),
        ("bootstrap: {confidence: 1.5}", r"bootstrap\.confidence"),
        ("- a\n- b", r"expected a mapping at the top level, found list"),
        ("primary: [", r"not valid YAML"),
        ("version: 2", r"version: Input should be 1"),
    ],
)
def test_bad_policies_name_the_file_and_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policy(text, name="x.yaml")


@pytest.mark.parametrize("path", sorted(POLICIES.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_policies_parse(path: Path) -> None:
    parse_policy(path.read_text(), name=str(path))


def test_there_is_a_default_policy() -> None:
    assert (POLICIES / "default.yaml").is_file()
