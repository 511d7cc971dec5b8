"""The small inline programs of dataset-build and release, run as the pods run them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workflows.dataset_build import PICK_MONTH
from workflows.release import PICK_MONTHS


def _run(program: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True, check=False)


def test_previous_month_is_resolved_once_to_yyyy_mm() -> None:
    done = _run(PICK_MONTH, "previous")
    assert done.returncode == 0
    assert len(done.stdout.strip()) == 7
    assert _run(PICK_MONTH, "2026-04").stdout.strip() == "2026-04"


@pytest.mark.parametrize("month", ["2026-13", "April", ""])
def test_bad_months_fail_the_pick(month: str) -> None:
    assert _run(PICK_MONTH, month).returncode != 0


def test_given_release_months_are_used_sorted_and_unique() -> None:
    done = _run(PICK_MONTHS, '["2026-04", "2026-03", "2026-04"]', "3")
    assert done.returncode == 0
    assert json.loads(done.stdout) == ["2026-03", "2026-04"]


@pytest.mark.parametrize("months", ['["2026-13"]', "nope", '{"a": 1}'])
def test_bad_release_months_name_the_input(months: str) -> None:
    done = _run(PICK_MONTHS, months, "3")
    assert done.returncode != 0
    assert "is not a JSON list of YYYY-MM" in done.stderr
