"""Gate policy files: validation with clear errors, and the shipped examples parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval_runner.errors import ConfigError
from eval_runner.evaluation.policy import GatePolicy, parse_policy

POLICIES = Path(__file__).parents[3] / "policies"


def test_an_empty_policy_is_the_default_one() -> None:
    assert parse_policy("", name="x.yaml") == GatePolicy()


def test_the_shipped_default_states_the_code_defaults() -> None:
    # The file is what people read: it must say what the gate does when a field is left out.
    shipped = parse_policy((POLICIES / "default.yaml").read_text(), name="default.yaml")
    assert shipped.model_dump(exclude={"description"}) == GatePolicy().model_dump(exclude={"description"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metric: runtime_error", r"x\.yaml: metric: Input should be"),
        ("primary: {min_improvement: 2}", r"primary\.min_improvement: Input should be less than 1"),
        ("segments: {max_regression: 0.1}", r"segments\.max_regression: Extra inputs are not permitted"),
        ("segments: {confidence: 1.5}", r"segments\.confidence"),
        ("- a\n- b", r"expected a mapping at the top level, found list"),
        ("primary: [", r"not valid YAML"),
        ("version: 3", r"version: Input should be 2"),
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
