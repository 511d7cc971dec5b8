from __future__ import annotations

from pathlib import Path

import polars as pl
from click.testing import CliRunner
from fieldsim.cli import main

from tests import contract_specs as spec


def test_generate_writes_sources_truth_and_oracle(tmp_path: Path) -> None:
    args = ["generate", "--devices", "6", "--start", "2026-04", "--months", "1", "--seed", "3", "--out"]
    result = CliRunner().invoke(main, [*args, str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert "sensor_logs.parquet" in names
    assert "oracle-dataset-2026-04.parquet" in names
    dataset = pl.read_parquet(tmp_path / "a" / "oracle-dataset-2026-04.parquet")
    assert dict(dataset.schema) == spec.polars_schema("samples")
    again = CliRunner().invoke(main, [*args, str(tmp_path / "b")])
    assert again.exit_code == 0
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
