"""The generators' shared command line: --check exits 1 naming stale files; a write names what changed."""

from __future__ import annotations

import pytest

from workflows import generated_files


def _main(argv: list[str], *, stale: list[str], changed: list[str]) -> int:
    return generated_files.main(
        argv, prog="gen", description=None, stale=lambda: stale, write=lambda: changed, shown_under="charts/x"
    )


def test_check_names_each_stale_file_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["--check"], stale=["a.yaml", "b/c.json"], changed=[]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "stale: charts/x/a.yaml (run `make render`)",
        "stale: charts/x/b/c.json (run `make render`)",
    ]


def test_check_of_fresh_files_exits_0_silently(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(["--check"], stale=[], changed=["never written"]) == 0
    assert capsys.readouterr() == ("", "")


def test_write_names_what_changed(capsys: pytest.CaptureFixture[str]) -> None:
    assert _main([], stale=["ignored"], changed=["a.yaml"]) == 0
    assert capsys.readouterr().out == "wrote charts/x/a.yaml\n"
