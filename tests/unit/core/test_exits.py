"""The exit-code table: real exceptions of every library a step meets, injected where a step would meet them."""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import polars as pl
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
import urllib3
from minio.error import InvalidResponseError, S3Error, ServerError
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from pydantic import BaseModel

from eval_runner.cli import main
from eval_runner.errors import ConfigError, DataError, ExitCode, InternalError, TransientError
from eval_runner.exits import classify, error_for, exit_code_for_returncode, wrap

CONFIG, DATA, TRANSIENT, SOFTWARE = ExitCode.CONFIG, ExitCode.DATA, ExitCode.TRANSIENT, ExitCode.SOFTWARE
REQUEST = httpx.Request("GET", "http://shard0/v1/devices")


def _raised(make: Callable[[], object]) -> BaseException:
    """Run ``make`` and return what it raised: the real exception with its real cause chain."""
    try:
        make()
    except BaseException as error:  # any exception is what the test wants
        return error
    raise AssertionError("expected an exception")


def _rest(code: str) -> RestException:
    return RestException({"error_code": code, "message": "from the server"})  # type: ignore[no-untyped-call]


def _s3(code: str) -> S3Error:
    return S3Error(None, code, "message", "/bucket/key", "req", "host")  # type: ignore[arg-type]


def _status(status: int) -> httpx.HTTPStatusError:
    response = httpx.Response(status, request=REQUEST)
    return httpx.HTTPStatusError("status", request=REQUEST, response=response)


def _mlflow_after_network_failure() -> None:
    # What mlflow.utils.rest_utils does once requests gives up: a bare MlflowException while handling it.
    try:
        raise requests.exceptions.ConnectionError("connection refused")
    except requests.exceptions.ConnectionError as error:
        raise MlflowException(f"API request failed with exception {error}")  # noqa: B904  # as mlflow does


class _Doc(BaseModel):
    n: int


CASES: list[tuple[str, Callable[[], BaseException], ExitCode]] = [
    # minio / urllib3
    ("s3 no such bucket", lambda: _s3("NoSuchBucket"), CONFIG),
    ("s3 access denied", lambda: _s3("AccessDenied"), CONFIG),
    ("s3 slow down", lambda: _s3("SlowDown"), TRANSIENT),
    ("s3 unknown code", lambda: _s3("InvalidObjectState"), DATA),
    ("s3 5xx", lambda: ServerError("server failed", 503), TRANSIENT),
    ("s3 html from a proxy", lambda: InvalidResponseError(502, "text/html", "<html>"), TRANSIENT),
    ("urllib3 protocol", lambda: urllib3.exceptions.ProtocolError("connection aborted"), TRANSIENT),
    # httpx
    ("httpx connect timeout", lambda: httpx.ConnectTimeout("slow", request=REQUEST), TRANSIENT),
    ("httpx reset", lambda: httpx.ReadError("reset", request=REQUEST), TRANSIENT),
    ("httpx truncated", lambda: httpx.RemoteProtocolError("peer closed", request=REQUEST), TRANSIENT),
    (
        "httpx decoding",
        lambda: _raised(lambda: httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"junk")),
        TRANSIENT,
    ),
    ("httpx no scheme", lambda: _raised(lambda: httpx.Client().get("shard0:8080/x")), CONFIG),
    ("httpx bad url", lambda: _raised(lambda: httpx.URL("http://[::1")), CONFIG),
    ("httpx 503", lambda: _status(503), TRANSIENT),
    ("httpx 401", lambda: _status(401), CONFIG),
    ("httpx 404", lambda: _status(404), DATA),
    ("httpx redirects", lambda: httpx.TooManyRedirects("loop", request=REQUEST), DATA),
    # psycopg
    (
        "pg wrong password",
        lambda: psycopg.OperationalError('connection failed: FATAL:  password authentication failed for user "fleet"'),
        CONFIG,
    ),
    ("pg no database", lambda: psycopg.OperationalError('FATAL:  database "fleet" does not exist'), CONFIG),
    ("pg down", lambda: psycopg.OperationalError("connection failed: Connection refused"), TRANSIENT),
    ("pg cancelled", lambda: psycopg.errors.QueryCanceled("canceling statement"), TRANSIENT),
    ("pg admin shutdown", lambda: psycopg.errors.AdminShutdown("terminating connection"), TRANSIENT),
    ("pg invalid password", lambda: psycopg.errors.InvalidPassword("bad"), CONFIG),
    ("pg privilege", lambda: psycopg.errors.InsufficientPrivilege("permission denied"), CONFIG),
    ("pg no table", lambda: psycopg.errors.UndefinedTable("no sensor_logs"), DATA),
    ("pg bad value", lambda: psycopg.errors.InvalidDatetimeFormat("bad ts"), DATA),
    ("pg wrong query", lambda: psycopg.errors.SyntaxError("syntax"), SOFTWARE),
    ("pg misuse", lambda: psycopg.InterfaceError("the connection is closed"), SOFTWARE),
    # mlflow
    ("mlflow missing", lambda: _rest("RESOURCE_DOES_NOT_EXIST"), DATA),
    ("mlflow busy", lambda: _rest("TEMPORARILY_UNAVAILABLE"), TRANSIENT),
    ("mlflow server 500", lambda: _rest("INTERNAL_ERROR"), TRANSIENT),
    ("mlflow refused", lambda: _rest("PERMISSION_DENIED"), CONFIG),
    ("mlflow network", lambda: _raised(_mlflow_after_network_failure), TRANSIENT),
    ("mlflow local misuse", lambda: MlflowException("metric names must be strings"), SOFTWARE),
    ("mlflow bad argument", lambda: MlflowException("x", error_code=INVALID_PARAMETER_VALUE), CONFIG),
    # pyarrow / polars
    ("parquet garbage", lambda: _raised(lambda: pq.read_table(io.BytesIO(b"not parquet at all"))), DATA),
    ("arrow cast", lambda: _raised(lambda: pa.array(["a"]).cast(pa.int64())), DATA),
    ("arrow type", lambda: _raised(lambda: pa.array([1, "a"])), DATA),
    ("arrow memory", lambda: pa.ArrowMemoryError("out of memory"), SOFTWARE),
    ("polars column", lambda: _raised(lambda: pl.DataFrame({"a": [1]}).select("b")), DATA),
    ("polars schema", lambda: _raised(lambda: pl.concat([pl.DataFrame({"a": [1]}), pl.DataFrame({"b": [1]})])), DATA),
    ("polars compute", lambda: _raised(lambda: pl.Series(["x"]).cast(pl.Int64, strict=True)), DATA),
    # pydantic, JSON, the standard library
    ("pydantic", lambda: _raised(lambda: _Doc.model_validate({"n": "many"})), DATA),
    ("json", lambda: _raised(lambda: __import__("json").loads("{")), DATA),
    ("missing file", lambda: _raised(lambda: open("/nonexistent/targets.json")), CONFIG),  # noqa: SIM115, PTH123
    ("connection reset", lambda: ConnectionResetError("reset by peer"), TRANSIENT),
    # anything nobody mapped is a bug: 70, not retried
    ("key error", lambda: KeyError("device_id"), SOFTWARE),
    ("value error", lambda: ValueError("bad"), SOFTWARE),
    ("runtime error", lambda: RuntimeError("boom"), SOFTWARE),
    ("ours", lambda: DataError("x"), DATA),
]


@pytest.mark.parametrize(("make", "code"), [(m, c) for _, m, c in CASES], ids=[n for n, _, _ in CASES])
def test_every_library_error_is_mapped_on_purpose(make: Callable[[], BaseException], code: ExitCode) -> None:
    assert classify(make()) == code


def _merge_raising(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> int:
    """Run `eval-runner fleet merge` with the step replaced by one that raises ``error``."""

    def merge(*_: object, **__: object) -> None:
        raise error

    monkeypatch.setattr("eval_runner.fleet.merge.run", merge)
    for name, value in {"ENDPOINT": "127.0.0.1:9", "ACCESS_KEY": "a", "SECRET_KEY": "b", "BUCKET": "x"}.items():
        monkeypatch.setenv(f"FLEET_EVAL_S3_{name}", value)
    return main(["fleet", "merge", "--run-id", "r1"])


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (
            lambda: _raised(lambda: httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"junk")),
            TRANSIENT,
        ),
        (lambda: psycopg.OperationalError("FATAL:  password authentication failed for user x"), CONFIG),
        (lambda: pa.ArrowInvalid("Parquet magic bytes not found"), DATA),
        (lambda: KeyError("device_id"), SOFTWARE),
    ],
    ids=["httpx-decoding", "pg-password", "arrow-invalid", "key-error"],
)
def test_an_escaped_error_exits_with_its_tables_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], make: Callable[[], BaseException], code: int
) -> None:
    assert _merge_raising(monkeypatch, make()) == code
    assert "error:" in capsys.readouterr().err


def test_wrap_names_what_failed_and_keeps_the_class() -> None:
    wrapped = wrap("analytics database: connecting", psycopg.OperationalError("password authentication failed"))
    assert isinstance(wrapped, ConfigError)
    assert str(wrapped).startswith("analytics database: connecting: OperationalError:")
    assert isinstance(wrap("x", KeyError("k")), InternalError)


def test_child_exit_codes_map_back_to_our_errors() -> None:
    assert exit_code_for_returncode(-9) == 137
    assert exit_code_for_returncode(-15) == 143
    assert exit_code_for_returncode(3) == 3
    assert error_for(2) is ConfigError
    assert error_for(75) is TransientError
    assert error_for(70) is InternalError
    assert error_for(1) is InternalError
