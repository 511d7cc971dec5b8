"""An S3 server on loopback: versitygw (Apache-2.0) with its POSIX backend in a directory."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from eval_runner.settings import S3Settings
from tests.services.process import CACHE, ManagedProcess, free_port, pinned_version, port_open, require_binary


def versitygw_binary() -> str:
    """The pinned versitygw that `make setup` builds from the Go module proxy."""
    version = pinned_version("VERSITYGW_VERSION")
    return require_binary(
        [CACHE / "bin" / f"versitygw-{version}" / "versitygw", "versitygw"],
        install_hint=(
            "make setup  (or: bash scripts/build/go-tool.sh versitygw "
            f"github.com/versity/versitygw/cmd/versitygw {version})"
        ),
    )


@dataclass
class S3Server:
    """A running versitygw and the credentials of its root user."""

    process: ManagedProcess
    port: int
    access_key: str
    secret_key: str
    root: Path

    @property
    def endpoint(self) -> str:
        """host:port as S3Settings wants it."""
        return f"127.0.0.1:{self.port}"

    def settings(self, bucket: str) -> S3Settings:
        """Settings pointing at this server and ``bucket``."""
        return S3Settings(
            endpoint=self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            bucket=bucket,
        )

    def stop(self) -> None:
        """Stop the server (data stays in ``root``)."""
        self.process.stop()


def start_s3(root: Path, *, port: int | None = None) -> S3Server:
    """Start versitygw serving ``root/data`` on a free port and wait until it accepts connections."""
    port = port or free_port()
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    access_key, secret_key = "fleet-eval-test", secrets.token_hex(16)
    process = ManagedProcess(
        name="versitygw",
        argv=[versitygw_binary(), "--port", f"127.0.0.1:{port}", "--quiet", "posix", str(data)],
        log_path=root / "versitygw.log",
        env={"ROOT_ACCESS_KEY": access_key, "ROOT_SECRET_KEY": secret_key},
    ).start()
    process.wait_until(lambda: port_open(port), timeout=30)
    return S3Server(process=process, port=port, access_key=access_key, secret_key=secret_key, root=root)
