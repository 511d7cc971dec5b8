"""import_demo_library: each demo version in turn, with sys.path and sys.modules left as they were."""

from __future__ import annotations

import sys
import types

import pytest

from tests.fixtures.demo_library import import_demo_library


def test_versions_import_one_after_another_and_whatever_was_imported_is_put_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = types.ModuleType("battery_lib")
    monkeypatch.setitem(sys.modules, "battery_lib", fake)
    path_before = list(sys.path)
    modules_before = {n: m for n, m in sys.modules.items() if n.split(".")[0] == "battery_lib"}

    first = import_demo_library("0.8.0")
    second = import_demo_library("0.9.0")

    assert (first.__version__, second.__version__) == ("0.8.0", "0.9.0")
    assert second.Predictor is not first.Predictor  # each its own code, not the earlier import's
    assert sys.modules["battery_lib"] is fake
    assert {n: m for n, m in sys.modules.items() if n.split(".")[0] == "battery_lib"} == modules_before
    assert sys.path == path_before
