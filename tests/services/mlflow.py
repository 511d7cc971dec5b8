"""An MLflow tracking server on loopback: SQLite backend store, artifacts proxied to a bucket on S3."""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eval_runner.storage import S3ObjectStore
from tests.services.process import ManagedProcess, free_port, port_open, require_binary
from tests.services.s3 import S3Server

ARTIFACT_BUCKET = "mlflow"
# mlflow server imports for ~10 s on an idle machine and needed ~150 s on a loaded 2-core one.
START_TIMEOUT_S = 600.0


@dataclass
class MlflowServer:
    """A running `mlflow server`."""

    process: ManagedProcess
    port: int

    @property
    def tracking_uri(self) -> str:
        """The URL clients use."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop the server."""
        self.process.stop()


def _healthy(port: int) -> bool:
    if not port_open(port):
        return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_mlflow(
    root: Path,
    s3: S3Server,
    *,
    port: int | None = None,
    timeout: float = START_TIMEOUT_S,
    progress: Callable[[float], None] | None = None,
) -> MlflowServer:
    """Start `mlflow server` with artifacts served through it from ``s3``'s ``mlflow`` bucket."""
    port = port or free_port()
    S3ObjectStore.from_settings(s3.settings(ARTIFACT_BUCKET)).ensure_bucket()
    mlflow = require_binary(
        [Path(sys.executable).parent / "mlflow", "mlflow"], install_hint="make setup  (uv sync installs mlflow)"
    )
    root.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess(
        name="mlflow",
        argv=[
            mlflow,
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            f"s3://{ARTIFACT_BUCKET}/artifacts",
            "--serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        log_path=root / "mlflow.log",
        env={
            "MLFLOW_S3_ENDPOINT_URL": f"http://{s3.endpoint}",
            "AWS_ACCESS_KEY_ID": s3.access_key,
            "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    ).start()
    process.wait_until(lambda: _healthy(port), timeout=timeout, progress=progress)
    return MlflowServer(process=process, port=port)
