"""Where to connect: every service address and credential, read once from the environment by the CLI.

Settings say *where*; CLI arguments say *what to do*. Each section reads variables with its own prefix,
e.g. ``FLEET_EVAL_S3_ENDPOINT``. Settings objects are frozen and passed down, never global.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _section(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=f"FLEET_EVAL_{prefix}_", frozen=True, extra="forbid")


class S3Settings(BaseSettings):
    """An S3-compatible object store (versitygw locally and in the cluster, any S3 in production)."""

    model_config = _section("S3")

    endpoint: str = Field(description="host:port, without scheme")
    access_key: SecretStr
    secret_key: SecretStr
    bucket: str = "fleet-eval"
    region: str = "us-east-1"
    secure: bool = False

    @field_validator("endpoint")
    @classmethod
    def _no_scheme(cls, value: str) -> str:
        if "://" in value:
            raise ValueError(f"S3 endpoint {value!r} must be host:port without a scheme; use secure=true for TLS")
        return value


class PostgresSettings(BaseSettings):
    """The analytics database holding valve movements and sensor logs."""

    model_config = _section("POSTGRES")

    dsn: SecretStr = Field(description="libpq connection string or postgresql:// URL")


class ShardSettings(BaseSettings):
    """The five API shards: capacity tests, device version history, battery parameters."""

    model_config = _section("SHARDS")

    # NoDecode: the environment gives a comma-separated list, not the JSON pydantic-settings expects.
    urls: Annotated[tuple[str, ...], NoDecode] = Field(
        description="base URLs, index = shard id; comma-separated in the environment"
    )
    token: SecretStr | None = None
    max_concurrency_per_shard: int = Field(default=8, ge=1, le=256)
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        # A Secret key that exists but is empty means "no token"; sending "Bearer " fails every request.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        return None if isinstance(text, str) and not text.strip() else value

    @field_validator("urls", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class MlflowSettings(BaseSettings):
    """The MLflow tracking server."""

    model_config = _section("MLFLOW")

    tracking_uri: str
    experiment_prefix: str = "fleet-eval"
    registered_model: str = "battery-lib"


class PackageIndexSettings(BaseSettings):
    """The private package index that serves battery-lib wheels."""

    model_config = _section("INDEX")

    url: str = Field(description="simple index URL, e.g. http://127.0.0.1:8080/simple/")
    git_url: str | None = Field(default=None, description="Git repository of battery-lib, for git:<ref> labels")
