"""Exception types and the exit codes that make them a contract with Argo's retryStrategy."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; Argo retries only TRANSIENT (see workflows' retryStrategy expression)."""

    OK = 0
    CONFIG = 2
    DATA = 3
    TRANSIENT = 75  # EX_TEMPFAIL from sysexits.h: "try again later"
    SOFTWARE = 70  # EX_SOFTWARE: an error nobody mapped is a bug; retrying cannot help, so Argo does not


class FleetEvalError(Exception):
    """Base of every error eval_runner raises on purpose; carries its exit code."""

    exit_code: ExitCode = ExitCode.DATA


class ConfigError(FleetEvalError):
    """Settings or arguments are wrong: retrying cannot help."""

    exit_code = ExitCode.CONFIG


class DataError(FleetEvalError):
    """Input data is missing, malformed or inconsistent: retrying cannot help."""

    exit_code = ExitCode.DATA


class TransientError(FleetEvalError):
    """A service was unreachable or overloaded: the same call may succeed later."""

    exit_code = ExitCode.TRANSIENT


class InternalError(FleetEvalError):
    """An error no rule of eval_runner.exits maps: a bug to fix, never retried."""

    exit_code = ExitCode.SOFTWARE
