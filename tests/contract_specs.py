"""The spec files in contracts/, loaded for tests: both eval_runner's and the simulator's are checked against them.

This module imports neither eval_runner nor fieldsim: it only reads the files, so a test that compares one
side's definitions with it cannot pass by reading the other side's.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"
SHARD_API = CONTRACTS / "shard-api"
ANALYTICS_SQL = CONTRACTS / "analytics.sql"
DATASET_ARROW = CONTRACTS / "dataset.arrow.json"

# Page items of each list endpoint, by the schema that describes one item.
LIST_ENDPOINTS = {
    "/v1/devices": "device",
    "/v1/capacity-tests": "capacity-test",
    "/v1/version-history": "version-event",
    "/v1/battery-parameters": "battery-parameters",
}

_ARROW_TYPES = {
    "string": pa.string(),
    "large_string": pa.large_string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bool": pa.bool_(),
}
_TIMESTAMP = re.compile(r"timestamp\[(s|ms|us|ns)(?:, tz=([^\]]+))?\]")


def normalise_sql(text: str) -> str:
    """SQL without ``--`` comments and with runs of whitespace collapsed: what two equal DDLs share."""
    without_comments = re.sub(r"--[^\n]*", "", text)
    return " ".join(without_comments.split())


def analytics_ddl() -> str:
    """contracts/analytics.sql, normalised."""
    return normalise_sql(ANALYTICS_SQL.read_text())


@cache
def _registry() -> Registry[Any]:
    # Every schema file under its $id, so relative $refs (timestamp.schema.json) resolve offline.
    pairs = []
    for path in sorted(SHARD_API.glob("*.schema.json")):
        resource: Resource[Any] = Resource.from_contents(json.loads(path.read_text()))
        uri = resource.id()
        if uri is None:
            raise ValueError(f"{path.name}: a schema without $id cannot be referenced")
        pairs.append((uri, resource))
    return Registry().with_resources(pairs)


def shard_api_schema(name: str) -> dict[str, Any]:
    """The JSON Schema contracts/shard-api/<name>.schema.json."""
    schema: dict[str, Any] = json.loads((SHARD_API / f"{name}.schema.json").read_text())
    return schema


def validator(name: str) -> Draft202012Validator:
    """A draft 2020-12 validator of one shard API body schema (with format checks where jsonschema has them)."""
    schema = shard_api_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry(), format_checker=Draft202012Validator.FORMAT_CHECKER)


def is_valid(name: str, body: object) -> bool:
    """Whether ``body`` matches contracts/shard-api/<name>.schema.json."""
    return bool(validator(name).is_valid(body))


def ownership() -> dict[str, Any]:
    """contracts/shard-api/ownership.json: the shard count, the hash and worked examples."""
    doc: dict[str, Any] = json.loads((SHARD_API / "ownership.json").read_text())
    return doc


def _arrow_type(text: str) -> pa.DataType:
    if text in _ARROW_TYPES:
        return _ARROW_TYPES[text]
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(f"{DATASET_ARROW.name}: unknown Arrow type {text!r}")
    return pa.timestamp(match[1], tz=match[2])


def _fields(name: str) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = json.loads(DATASET_ARROW.read_text())["schemas"][name]["fields"]
    return fields


def arrow_schema_names() -> list[str]:
    """The schemas contracts/dataset.arrow.json defines (samples, series, ...)."""
    return list(json.loads(DATASET_ARROW.read_text())["schemas"])


def arrow_schema(name: str) -> pa.Schema:
    """One schema of contracts/dataset.arrow.json as a pyarrow schema (field order, types, nullability)."""
    return pa.schema([pa.field(f["name"], _arrow_type(f["type"]), nullable=f["nullable"]) for f in _fields(name)])


def polars_schema(name: str) -> dict[str, pl.DataType]:
    """The polars schema a frame of that Arrow schema has (polars' own mapping, from an empty table)."""
    return dict(pl.from_arrow(arrow_schema(name).empty_table()).schema)  # type: ignore[union-attr]  # a table gives a frame


def non_nullable(name: str) -> list[str]:
    """The columns of one schema that never hold a null."""
    return [f["name"] for f in _fields(name) if not f["nullable"]]


def same_arrow_types(found: pa.Schema, expected: pa.Schema) -> bool:
    """Names, order and types equal, with large_string read as string (polars writes large_string)."""

    def plain(t: pa.DataType) -> pa.DataType:
        return pa.string() if t == pa.large_string() else t

    return [(f.name, plain(f.type)) for f in found] == [(f.name, plain(f.type)) for f in expected]


# ---- example bodies: the valid ones, and near misses the spec refuses --------------------------------
GOOD_BODIES: dict[str, list[dict[str, Any]]] = {
    "device": [
        {"device_id": "dev-000001", "site_id": "site-00000", "installed_at": "2022-11-03T14:38:17.735785Z"},
        {"device_id": "dev-000002", "site_id": "Zürich", "installed_at": "2022-11-03T14:38:17+01:00"},
    ],
    "capacity-test": [
        {
            "test_id": "ct-dev-000008-202604",
            "device_id": "dev-000008",
            "tested_at": "2026-04-30T11:48:00.000000Z",
            "remaining_mah": 2378.0,
            "remaining_runtime_days": 1322.609,
            "runtime_source": "estimated",
            "runtime_censored": False,
        },
        {
            "test_id": "t",
            "device_id": "d",
            "tested_at": "2026-04-30T11:48:00Z",
            "remaining_mah": 0,
            "remaining_runtime_days": 0,
            "runtime_source": "observed",
            "runtime_censored": False,
        },
        {
            "test_id": "ct-dev-000011-202603",
            "device_id": "dev-000011",
            "tested_at": "2026-03-31T09:02:00Z",
            "remaining_mah": 2561.2,
            "remaining_runtime_days": 1500.0,
            "runtime_source": "estimated",
            "runtime_censored": True,
        },
    ],
    "version-event": [
        {"device_id": "d", "effective_at": "2022-11-03T14:38:17.735785Z", "component": c, "version": "1.4.2"}
        for c in ("hardware", "firmware", "software")
    ],
    "battery-parameters": [
        {
            "device_id": "dev-000002",
            "chemistry": "alkaline",
            "nominal_capacity_mah": 2600.0,
            "cutoff_mv": 2300,
            "installed_at": "2023-11-16T20:00:00.000000Z",
        },
        {
            "device_id": "dev-000003",
            "chemistry": "lithium",
            "nominal_capacity_mah": 3000,
            "cutoff_mv": 2400.0,
            "installed_at": "2023-11-16T20:00:00-05:00",
        },
    ],
    "page": [
        {"items": [], "next_page_token": None},
        {"items": [{"device_id": "d"}], "next_page_token": "100"},
        {"items": []},
    ],
}

_BAD_VALUES: dict[str, dict[str, list[object]]] = {
    "device": {"device_id": [None, 5], "site_id": [None], "installed_at": [None]},
    "capacity-test": {
        "remaining_mah": [-1.0, "2378", True, None],
        "remaining_runtime_days": [-0.5],
        "runtime_source": ["model", "Observed", None, 1],
        "runtime_censored": ["false", 0, None],
    },
    "version-event": {"component": ["library", None], "version": [1]},
    "battery-parameters": {
        "chemistry": ["nimh", None],
        "nominal_capacity_mah": [0, -1.0, "2600", True, None],
        "cutoff_mv": [0, 2400.5, "2400", True, None],
        "device_id": [7],
    },
    "page": {"items": [None, {}, [1]], "next_page_token": [100]},
}
_BAD_TIMES = ["2026-01-01T00:00:00", "2026-01-01", "2026-01-01 00:00:00Z", 1767225600, "1767225600", "", None]
_TIME_FIELDS = {
    "device": "installed_at",
    "capacity-test": "tested_at",
    "version-event": "effective_at",
    "battery-parameters": "installed_at",
}


def bad_bodies(name: str) -> list[dict[str, Any]]:
    """Bodies the schema ``name`` must refuse: one wrong value, a missing key or an extra key each."""
    good = GOOD_BODIES[name][0]
    out = [{**good, key: value} for key, values in _BAD_VALUES[name].items() for value in values]
    if name in _TIME_FIELDS:
        out += [{**good, _TIME_FIELDS[name]: value} for value in _BAD_TIMES]
    out += [{k: v for k, v in good.items() if k != key} for key in good if key != "next_page_token"]
    out.append({**good, "extra": 1})
    if name == "capacity-test":  # an observed runtime is a value, never a lower bound
        out.append({**good, "runtime_source": "observed", "runtime_censored": True})
    return out
