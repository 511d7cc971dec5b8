"""The library adapters against tiny fake battery_lib modules of each API generation."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from eval_runner.contracts import DATASET_SCHEMA, LIBRARY_SAMPLE_COLUMNS, PREDICTION_SCHEMA, SERIES_SCHEMA
from eval_runner.errors import ConfigError, DataError
from eval_runner.library import installed_library_version, library_generation, load_predictor
from eval_runner.library.generation2 import library_inputs

AS_OF = datetime(2026, 4, 20, tzinfo=UTC)


def samples(ids: list[str]) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {
            "sample_id": ids,
            "device_id": [i.split("/")[0] for i in ids],
            "as_of": [AS_OF] * n,
            "hardware_revision": ["B"] * n,
            "firmware_version_at_as_of": ["2.1"] * n,
            "battery_chemistry": ["alkaline"] * n,
            "nominal_capacity_mah": [2600.0] * n,
            "cutoff_mv": [2200] * n,
            "battery_installed_at": [AS_OF - timedelta(days=200)] * n,
        },
        schema={name: DATASET_SCHEMA[name] for name in LIBRARY_SAMPLE_COLUMNS},
    )


def series(rows: list[tuple[str, int, int | None, float | None]]) -> pl.DataFrame:
    """(sample_id, hours before as_of, battery_mv, temperature_c)."""
    return pl.DataFrame(
        {
            "sample_id": [r[0] for r in rows],
            "ts": [AS_OF - timedelta(hours=r[1]) for r in rows],
            "battery_mv": [r[2] for r in rows],
            "temperature_c": [r[3] for r in rows],
            "radio_tx": [1] * len(rows),
            "radio_rx": [1] * len(rows),
            "valve_travel_total": [10.0] * len(rows),
            "valve_travel_pct": [0.5] * len(rows),
            "motor_ms": [100] * len(rows),
        },
        schema=SERIES_SCHEMA,
    )


@dataclass
class _Estimate:
    remaining_mah: float
    runtime_days: float
    remaining_mah_low: float
    remaining_mah_high: float
    runtime_days_low: float
    runtime_days_high: float


def gen1_module(calls: list[tuple[float, float, float]]) -> ModuleType:
    module = ModuleType("battery_lib")

    def estimate(*, voltage_mv: float, temperature_c: float, nominal_mah: float) -> _Estimate:
        calls.append((voltage_mv, temperature_c, nominal_mah))
        mah = (voltage_mv - 2400.0) / 600.0 * nominal_mah
        return _Estimate(mah, mah / 3.0, mah * 0.7, mah * 1.3, mah / 3.0 * 0.7, mah / 3.0 * 1.3)

    module.estimate = estimate  # type: ignore[attr-defined]
    module.__version__ = "0.6.0"  # type: ignore[attr-defined]
    return module


class _Gen2Predictor:
    seen: list[tuple[pa.Table, pa.Table]] = []  # noqa: RUF012  # test probe, shared on purpose

    def predict(self, samples: pa.Table, series: pa.Table) -> pa.Table:
        _Gen2Predictor.seen.append((samples, series))
        ids = samples.column("sample_id").to_pylist()
        value = [float(i) for i in range(len(ids))]
        return pa.table(
            {
                "sample_id": ids,
                "capacity_mah_p10": value,
                "capacity_mah_p50": value,
                "capacity_mah_p90": value,
                "runtime_days_p10": value,
                "runtime_days_p50": value,
                "runtime_days_p90": value,
            }
        )


def gen2_module(predictor: type = _Gen2Predictor, generation: object = 2) -> ModuleType:
    module = ModuleType("battery_lib")
    module.API_GENERATION = generation  # type: ignore[attr-defined]
    module.Predictor = predictor  # type: ignore[attr-defined]
    module.__version__ = "0.9.0"  # type: ignore[attr-defined]
    return module


def test_generation1_uses_the_last_voltage_and_its_temperature() -> None:
    calls: list[tuple[float, float, float]] = []
    predictor = load_predictor(gen1_module(calls))
    assert (predictor.generation, predictor.library_version) == (1, "0.6.0")
    data = series(
        [
            ("b/2026-04", 2, 2700, 18.0),
            ("a/2026-04", 5, 2800, 21.0),
            ("a/2026-04", 1, 2790, None),  # latest reading, hour without temperature
            ("a/2026-04", 0, None, 25.0),  # newest hour but no voltage
            ("b/2026-04", 1, 2690, 19.0),
        ]
    )
    out = predictor.predict(samples(["a/2026-04", "b/2026-04", "c/2026-04"]), data)
    # a: voltage 2790 at an hour without temperature -> the sample's median temperature (21, 25 -> 23)
    assert calls == [(2790.0, 23.0, 2600.0), (2690.0, 19.0, 2600.0)]
    mah_a = 390.0 / 600.0 * 2600.0
    assert out.schema == pl.Schema(PREDICTION_SCHEMA)
    assert out.get_column("sample_id").to_list() == ["a/2026-04", "b/2026-04", "c/2026-04"]
    assert out.row(0) == pytest.approx(
        ("a/2026-04", mah_a * 0.7, mah_a, mah_a * 1.3, mah_a / 3 * 0.7, mah_a / 3, mah_a / 3 * 1.3)
    )
    # c has no series at all: a null prediction, not an invented one
    assert out.row(2) == ("c/2026-04", None, None, None, None, None, None)


def test_generation2_gets_contract_inputs_and_keeps_sample_order() -> None:
    _Gen2Predictor.seen.clear()
    predictor = load_predictor(gen2_module())
    assert (predictor.generation, predictor.library_version) == (2, "0.9.0")
    data = series([("b/2026-04", 1, 2700, 18.0), ("x/2026-04", 1, 2700, 18.0), ("b/2026-04", 2, 2710, 18.0)])
    extra = samples(["b/2026-04", "a/2026-04"]).with_columns(pl.lit(1.0).alias("true_capacity_mah"))
    out = predictor.predict(extra, data)
    sample_table, series_table = _Gen2Predictor.seen[-1]
    assert sample_table.column_names == list(LIBRARY_SAMPLE_COLUMNS)
    assert sample_table.schema.field("sample_id").type == pa.string()
    assert series_table.column_names == list(SERIES_SCHEMA)
    # only the requested samples' hours, sorted by sample_id then ts
    assert series_table.column("sample_id").to_pylist() == ["b/2026-04", "b/2026-04"]
    assert series_table.column("battery_mv").to_pylist() == [2710, 2700]
    expected = pl.DataFrame(
        {"sample_id": ["b/2026-04", "a/2026-04"], **{n: [0.0, 1.0] for n in list(PREDICTION_SCHEMA)[1:]}},
        schema=PREDICTION_SCHEMA,
    )
    assert_frame_equal(out, expected)


def test_empty_samples_do_not_call_the_library() -> None:
    _Gen2Predictor.seen.clear()
    out = load_predictor(gen2_module()).predict(samples([]), series([]))
    assert out.height == 0 and out.schema == pl.Schema(PREDICTION_SCHEMA)
    assert _Gen2Predictor.seen == []


class _Reordering(_Gen2Predictor):
    def predict(self, samples: pa.Table, series: pa.Table) -> pa.Table:
        return super().predict(samples, series).take([1, 0])


class _Short(_Gen2Predictor):
    def predict(self, samples: pa.Table, series: pa.Table) -> pa.Table:
        return super().predict(samples, series).slice(0, 1)


class _Crashing(_Gen2Predictor):
    def predict(self, samples: pa.Table, series: pa.Table) -> pa.Table:
        raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("predictor", "message"),
    [(_Reordering, "not in the order"), (_Short, "returned 1 predictions for 2"), (_Crashing, "boom")],
)
def test_bad_library_output_is_a_data_error_naming_the_version(predictor: type, message: str) -> None:
    with pytest.raises(DataError, match=rf"battery_lib 0\.9\.0.*{message}"):
        load_predictor(gen2_module(predictor)).predict(samples(["a/1", "b/1"]), series([]))


def test_missing_library_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "battery_lib", None)  # makes `import battery_lib` raise ImportError
    with pytest.raises(ConfigError, match="battery_lib module is not installed"):
        load_predictor()
    with pytest.raises(ConfigError, match="not installed"):
        installed_library_version()


def test_installed_module_is_found_by_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "battery_lib", gen2_module())
    assert load_predictor().library_version == "0.9.0"
    assert installed_library_version() == "0.9.0"


@pytest.mark.parametrize("generation", [3, "2", True])
def test_unknown_generation_is_a_config_error(generation: object) -> None:
    with pytest.raises(ConfigError, match=r"API_GENERATION=.*knows generations \[1, 2\]"):
        library_generation(gen2_module(generation=generation))


def test_module_without_api_is_a_config_error() -> None:
    module = ModuleType("battery_lib")
    module.__version__ = "0.7.0"  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"0\.7\.0 has neither API_GENERATION nor estimate"):
        load_predictor(module)
    broken = gen2_module()
    del broken.Predictor
    with pytest.raises(ConfigError, match="no Predictor class"):
        load_predictor(broken)


def test_version_falls_back_to_distribution_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    module = gen2_module()
    del module.__version__
    monkeypatch.setattr("importlib.metadata.version", lambda name: {"battery-lib": "0.8.0"}[name])
    assert installed_library_version(module) == "0.8.0"


def test_a_build_record_names_the_version_results_are_keyed_by(tmp_path: Path) -> None:
    from eval_runner.library.loader import built_library_version

    record = tmp_path / "library-build.json"
    assert built_library_version("0.9.0", record) == "0.9.0"  # no record: the installed version
    record.write_text('{"library_version": "git-0123456789ab", "requirement": "battery-lib @ git+x@y"}')
    assert built_library_version("0.11.0.dev0", record) == "git-0123456789ab"
    record.write_text('{"library_version": "0.8.0", "requirement": "battery-lib==0.8.0"}')
    assert built_library_version("0.8.0", record) == "0.8.0"
    with pytest.raises(ConfigError, match=r"built for battery-lib 0\.8\.0 .* has 0\.9\.0 installed"):
        built_library_version("0.9.0", record)


@pytest.mark.parametrize("order", ["sorted", "grouped", "shuffled"])
def test_generation2_series_are_the_samples_rows_sorted_whatever_the_input_order(order: str) -> None:
    # As published (sorted), grouped by sample but not by time, or in any order: the same rows.
    rows: list[tuple[str, int, int | None, float | None]] = [
        (f"{device}/2026-04", hour, 2700 + hour, 18.0) for device in "gfedcba" for hour in range(5)
    ]
    data = series(rows)  # each sample's hours run backwards in time
    data = {
        "sorted": data.sort("sample_id", "ts"),
        "grouped": data,
        "shuffled": data.sample(fraction=1.0, shuffle=True, seed=7),
    }[order]
    wanted = samples(["f/2026-04", "b/2026-04", "c/2026-04", "b/2026-04", "z/2026-04"])
    expected = (
        data.join(wanted.select("sample_id").unique(), on="sample_id", how="semi").sort("sample_id", "ts")
    ).select(pl.col(name).cast(dtype) for name, dtype in SERIES_SCHEMA.items())
    _, picked = library_inputs(wanted, data)
    assert_frame_equal(pl.DataFrame(pl.from_arrow(picked)), expected)
    assert set(picked.column("sample_id").to_pylist()) == {"b/2026-04", "c/2026-04", "f/2026-04"}
    assert library_inputs(samples([]), data)[1].num_rows == library_inputs(wanted, data.head(0))[1].num_rows == 0
