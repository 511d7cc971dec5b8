"""eval_runner.contracts against the spec files in contracts/: a difference fails here, not in a cluster."""

from __future__ import annotations

import json
import zlib

import pytest
from pydantic import BaseModel, ValidationError

from eval_runner.contracts import (
    ANALYTICS_DDL,
    DATASET_SCHEMA,
    LIBRARY_SAMPLE_COLUMNS,
    N_SHARDS,
    PREDICTION_SCHEMA,
    SERIES_SCHEMA,
    BatteryParameters,
    CapacityTest,
    DeviceRecord,
    Page,
    VersionEvent,
    shard_of,
)
from tests import contract_specs as spec

MODELS: dict[str, type[BaseModel]] = {
    "device": DeviceRecord,
    "capacity-test": CapacityTest,
    "version-event": VersionEvent,
    "battery-parameters": BatteryParameters,
    "page": Page,
}


def _accepts(model: type[BaseModel], body: object) -> bool:
    # From JSON text, as a response is read; and from the parsed dict, as the shard client reads page items.
    results = set()
    for from_text in (True, False):
        try:
            if from_text:
                model.model_validate_json(json.dumps(body))
            else:
                model.model_validate(body)
            results.add(True)
        except ValidationError:
            results.add(False)
    assert len(results) == 1, f"{model.__name__} reads {body!r} differently from JSON text and from a dict"
    return results.pop()


def test_analytics_ddl_equals_the_sql_file() -> None:
    assert spec.normalise_sql(ANALYTICS_DDL) == spec.analytics_ddl()


def test_normalise_sql_ignores_comments_and_layout_only() -> None:
    assert spec.normalise_sql("a  int, -- why\n  b text") == "a int, b text"
    assert spec.normalise_sql("a int") != spec.normalise_sql("a bigint")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_fields_and_required_keys_are_the_schemas(name: str) -> None:
    schema = spec.shard_api_schema(name)
    fields = MODELS[name].model_fields
    assert set(fields) == set(schema["properties"])
    assert {key for key, info in fields.items() if info.is_required()} == set(schema["required"])
    assert schema["additionalProperties"] is False
    assert MODELS[name].model_config.get("extra") == "forbid"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_good_bodies_pass_both_and_round_trip(name: str) -> None:
    model = MODELS[name]
    for body in spec.GOOD_BODIES[name]:
        assert spec.is_valid(name, body), body
        assert _accepts(model, body), body
        # What the model writes back (a stored extract, a PUT body) is valid too.
        assert spec.is_valid(name, model.model_validate(body).model_dump(mode="json")), body


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_refuses_exactly_what_the_schema_refuses(name: str) -> None:
    bad = spec.bad_bodies(name)
    assert len(bad) > 5
    disagree = [body for body in bad if spec.is_valid(name, body) != _accepts(MODELS[name], body)]
    assert disagree == []
    assert not any(spec.is_valid(name, body) for body in bad)


@pytest.mark.parametrize(("endpoint", "name"), sorted(spec.LIST_ENDPOINTS.items()))
def test_every_list_endpoint_item_has_a_model_and_a_schema(endpoint: str, name: str) -> None:
    assert name in MODELS, endpoint
    assert (spec.SHARD_API / f"{name}.schema.json").is_file()


def test_shard_ownership_follows_the_spec() -> None:
    rule = spec.ownership()
    assert (rule["n_shards"], rule["hash"], rule["encoding"]) == (N_SHARDS, "crc32", "utf-8")
    for example in rule["examples"]:
        assert zlib.crc32(example["device_id"].encode("utf-8")) == example["crc32"]
        assert shard_of(example["device_id"]) == example["shard"], example


@pytest.mark.parametrize(
    ("name", "schema"),
    [("samples", DATASET_SCHEMA), ("series", SERIES_SCHEMA), ("predictions", PREDICTION_SCHEMA)],
)
def test_polars_schemas_equal_the_arrow_file(name: str, schema: dict[str, object]) -> None:
    assert list(spec.polars_schema(name).items()) == list(schema.items())


def test_library_samples_are_the_dataset_columns_named_in_the_arrow_file() -> None:
    assert tuple(spec.polars_schema("library_samples")) == LIBRARY_SAMPLE_COLUMNS
    assert spec.polars_schema("library_samples") == {c: DATASET_SCHEMA[c] for c in LIBRARY_SAMPLE_COLUMNS}


def test_the_arrow_file_defines_what_these_tests_check() -> None:
    assert spec.arrow_schema_names() == ["samples", "series", "library_samples", "predictions"]
