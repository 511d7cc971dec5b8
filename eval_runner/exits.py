"""The one exit-code table: which library exception means exit 2, 3, 75 or 70.

2 "fix the configuration", 3 "the data is wrong", 75 "try again later" (retried by Argo), 70 "a bug"
(EX_SOFTWARE, never retried). Adapters map their library's errors through ``wrap`` (so each decision
is made here, once), and ``cli.main`` classifies whatever still escapes a step. A library is looked up
in ``sys.modules`` only: an exception of a library nobody imported cannot occur, and importing mlflow
to compare costs ~3 s.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from eval_runner.errors import (
    ConfigError,
    DataError,
    ExitCode,
    FleetEvalError,
    InternalError,
    TransientError,
)

CONFIG, DATA, TRANSIENT, SOFTWARE = ExitCode.CONFIG, ExitCode.DATA, ExitCode.TRANSIENT, ExitCode.SOFTWARE

# PostgreSQL refuses a login before any SQLSTATE reaches the client: libpq's message is all there is.
_PG_LOGIN_REFUSED = re.compile(
    r"password authentication failed|no pg_hba\.conf entry|role \".*\" does not exist|"
    r"database \".*\" does not exist|password is required|SSL is required|certificate",
    re.IGNORECASE,
)
_S3_CONFIG = frozenset({"NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"})
_S3_TRANSIENT = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"})
_HTTP_TRANSIENT = frozenset({429, 500, 502, 503, 504})
_MLFLOW_CODES = {
    "TEMPORARILY_UNAVAILABLE": TRANSIENT,
    "REQUEST_LIMIT_EXCEEDED": TRANSIENT,
    "DEADLINE_EXCEEDED": TRANSIENT,
    "PERMISSION_DENIED": CONFIG,
    "UNAUTHENTICATED": CONFIG,
    "CUSTOMER_UNAUTHORIZED": CONFIG,
    "INVALID_PARAMETER_VALUE": CONFIG,
    "ENDPOINT_NOT_FOUND": CONFIG,
    "RESOURCE_DOES_NOT_EXIST": DATA,
    "RESOURCE_ALREADY_EXISTS": DATA,
    "INVALID_STATE": DATA,
    "BAD_REQUEST": DATA,
}


@dataclass(frozen=True)
class Rule:
    """``module.name`` (a class path, resolved lazily) maps to ``code`` when ``when`` holds."""

    module: str
    name: str
    code: ExitCode
    why: str
    when: Callable[[BaseException], bool] | None = None

    def matches(self, error: BaseException) -> bool:
        """Whether ``error`` is an instance of the rule's class and passes its condition."""
        module = sys.modules.get(self.module)
        kind = getattr(module, self.name, None) if module is not None else None
        if not (isinstance(kind, type) and isinstance(error, kind)):
            return False
        return self.when is None or self.when(error)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and what caused it (explicitly or while handling), without cycles."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _network_cause(error: BaseException) -> bool:
    """An error some library raised because the network failed underneath it (requests, urllib3, OSError)."""
    return any(isinstance(cause, (OSError, TimeoutError)) for cause in list(_chain(error))[1:])


def _login_refused(error: BaseException) -> bool:
    return bool(_PG_LOGIN_REFUSED.search(str(error)))


def _mlflow_code(code: ExitCode) -> Callable[[BaseException], bool]:
    def check(error: BaseException) -> bool:
        return _MLFLOW_CODES.get(str(getattr(error, "error_code", ""))) == code

    return check


def _mlflow_server_error(error: BaseException) -> bool:
    # INTERNAL_ERROR from the server (a RestException) or after the client's retries ran out on the
    # network is transient; the same code on a local MlflowException is a bug in how we call it.
    rest = sys.modules.get("mlflow.exceptions")
    is_rest = rest is not None and isinstance(error, getattr(rest, "RestException", ()))
    return getattr(error, "error_code", "") == "INTERNAL_ERROR" and (is_rest or _network_cause(error))


# Most specific first: the first rule that matches decides.
RULES: tuple[Rule, ...] = (
    # ---- minio / urllib3 (S3) ----
    Rule("minio.error", "S3Error", CONFIG, "bucket or credentials", lambda e: _s3_code(e) in _S3_CONFIG),
    Rule("minio.error", "S3Error", TRANSIENT, "S3 busy", lambda e: _s3_code(e) in _S3_TRANSIENT),
    Rule("minio.error", "S3Error", DATA, "S3 refused the object request"),
    Rule("minio.error", "ServerError", TRANSIENT, "S3 answered 5xx"),
    Rule("minio.error", "InvalidResponseError", TRANSIENT, "S3 answered something that is not S3 (a proxy)"),
    Rule("minio.error", "MinioException", TRANSIENT, "S3 call failed"),
    Rule("urllib3.exceptions", "HTTPError", TRANSIENT, "S3 unreachable"),
    # ---- httpx (shards, index, registry) ----
    Rule("httpx", "InvalidURL", CONFIG, "a configured URL does not parse"),
    Rule("httpx", "UnsupportedProtocol", CONFIG, "a configured URL has no http(s) scheme"),
    Rule("httpx", "TimeoutException", TRANSIENT, "timed out"),
    Rule("httpx", "DecodingError", TRANSIENT, "a body corrupted or cut off in transit"),
    Rule("httpx", "TransportError", TRANSIENT, "connection failed"),
    Rule("httpx", "TooManyRedirects", DATA, "a server redirects in circles"),
    Rule("httpx", "HTTPStatusError", TRANSIENT, "5xx or 429", lambda e: _http_status(e) in _HTTP_TRANSIENT),
    Rule("httpx", "HTTPStatusError", CONFIG, "401/403", lambda e: _http_status(e) in {401, 403}),
    Rule("httpx", "HTTPStatusError", DATA, "another 4xx"),
    Rule("httpx", "StreamError", SOFTWARE, "a response stream used wrongly"),
    # ---- psycopg (analytics database) ----
    Rule("psycopg", "OperationalError", CONFIG, "login refused", _login_refused),
    Rule("psycopg.errors", "InvalidPassword", CONFIG, "login refused"),
    Rule("psycopg.errors", "InvalidAuthorizationSpecification", CONFIG, "login refused"),
    Rule("psycopg.errors", "InsufficientPrivilege", CONFIG, "the role may not read the table"),
    Rule("psycopg.errors", "InvalidCatalogName", CONFIG, "no such database"),
    Rule("psycopg.errors", "UndefinedTable", DATA, "the schema lacks a table"),
    Rule("psycopg.errors", "UndefinedColumn", DATA, "the schema lacks a column"),
    Rule("psycopg", "OperationalError", TRANSIENT, "database unreachable, restarting or cancelled"),
    Rule("psycopg", "DataError", DATA, "a value does not fit"),
    Rule("psycopg", "IntegrityError", DATA, "a constraint failed"),
    Rule("psycopg", "InterfaceError", SOFTWARE, "the driver used wrongly"),
    Rule("psycopg", "ProgrammingError", SOFTWARE, "a wrong query"),
    Rule("psycopg", "Error", DATA, "another database error"),
    # ---- mlflow (tracking, registry) ----
    Rule("mlflow.exceptions", "MlflowException", TRANSIENT, "MLflow unavailable", _mlflow_code(TRANSIENT)),
    Rule("mlflow.exceptions", "MlflowException", CONFIG, "MLflow refused the request", _mlflow_code(CONFIG)),
    Rule("mlflow.exceptions", "MlflowException", DATA, "not found or in a wrong state", _mlflow_code(DATA)),
    Rule("mlflow.exceptions", "MlflowException", TRANSIENT, "server error or network", _mlflow_server_error),
    Rule("mlflow.exceptions", "MlflowException", SOFTWARE, "any other MLflow error: a bug, not retried"),
    # ---- pyarrow / polars (Parquet and frames) ----
    Rule("pyarrow.lib", "ArrowInvalid", DATA, "malformed Parquet or values"),
    Rule("pyarrow.lib", "ArrowTypeError", DATA, "a column of the wrong type"),
    Rule("pyarrow.lib", "ArrowKeyError", DATA, "a missing field"),
    Rule("pyarrow.lib", "ArrowIndexError", DATA, "an index out of range"),
    Rule("pyarrow.lib", "ArrowCapacityError", DATA, "data too large for one array"),
    Rule("pyarrow.lib", "ArrowNotImplementedError", DATA, "a type Arrow cannot read"),
    Rule("pyarrow.lib", "ArrowMemoryError", SOFTWARE, "out of memory: a retry would fail alike"),
    Rule("pyarrow.lib", "ArrowSerializationError", DATA, "undecodable Arrow data"),
    Rule("pyarrow.lib", "ArrowException", SOFTWARE, "another Arrow error"),
    Rule("polars.exceptions", "PanicException", SOFTWARE, "a polars panic"),
    Rule("polars.exceptions", "SQLInterfaceError", SOFTWARE, "a wrong SQL expression"),
    Rule("polars.exceptions", "SQLSyntaxError", SOFTWARE, "a wrong SQL expression"),
    Rule("polars.exceptions", "PolarsError", DATA, "a frame does not have the expected shape or values"),
    # ---- pydantic, JSON, the standard library ----
    Rule("pydantic_core", "ValidationError", DATA, "a document does not match its model"),
    Rule("json", "JSONDecodeError", DATA, "a document is not JSON"),
    Rule("builtins", "FileNotFoundError", CONFIG, "a given path does not exist"),
    Rule("builtins", "PermissionError", CONFIG, "a given path may not be read or written"),
    Rule("builtins", "IsADirectoryError", CONFIG, "a directory where a file was expected"),
    Rule("builtins", "NotADirectoryError", CONFIG, "a file where a directory was expected"),
    Rule("builtins", "ConnectionError", TRANSIENT, "a connection failed"),
    Rule("builtins", "TimeoutError", TRANSIENT, "timed out"),
    Rule("builtins", "OSError", TRANSIENT, "an I/O error (disk, network)"),
)


def _s3_code(error: BaseException) -> str:
    return str(getattr(error, "code", ""))


def _http_status(error: BaseException) -> int:
    response = getattr(error, "response", None)
    return int(getattr(response, "status_code", 0) or 0)


def classify(error: BaseException) -> ExitCode:
    """The exit code ``error`` stands for: ours carry theirs, libraries' go by the table, the rest is 70."""
    if isinstance(error, FleetEvalError):
        return error.exit_code
    for rule in RULES:
        if rule.matches(error):
            return rule.code
    return SOFTWARE


_TYPES: dict[ExitCode, type[FleetEvalError]] = {
    CONFIG: ConfigError,
    DATA: DataError,
    TRANSIENT: TransientError,
    SOFTWARE: InternalError,
}


def error_for(code: int) -> type[FleetEvalError]:
    """Our exception type for an exit code (a child process's, say); unknown codes are InternalError."""
    return _TYPES.get(ExitCode(code) if code in ExitCode._value2member_map_ else SOFTWARE, InternalError)


def wrap(what: str, error: BaseException) -> FleetEvalError:
    """Our error for a library's ``error``, classified by the table, naming ``what`` failed."""
    if isinstance(error, FleetEvalError):
        return error
    kind = _TYPES[classify(error)]
    return kind(f"{what}: {type(error).__name__}: {error}")


def exit_code_for_returncode(returncode: int) -> int:
    """A child's exit status as a shell reports it: 128+N for a child killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode
