"""Fixtures for rendering tests: the rendered documents, as text and parsed."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from workflows import render


@pytest.fixture(scope="session")
def rendered() -> dict[str, str]:
    return render.render()


@pytest.fixture(scope="session")
def documents(rendered: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name: yaml.safe_load(text) for name, text in rendered.items() if name.startswith("workflows/")}
