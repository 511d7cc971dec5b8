"""`make services`: run S3, PostgreSQL and MLflow on loopback until Ctrl-C, printing their settings."""

from __future__ import annotations

import signal
import sys
import tempfile
from pathlib import Path

from tests.services.mlflow import start_mlflow
from tests.services.postgres import start_postgres
from tests.services.s3 import start_s3


def main() -> int:
    """Start the services, print the environment that points eval-runner at them, wait for a signal."""
    root = Path(tempfile.mkdtemp(prefix="fleet-eval-services-"))
    s3 = start_s3(root / "s3")
    postgres = start_postgres(root / "postgres")
    mlflow = start_mlflow(root / "mlflow", s3)
    print(f"# services running; data and logs under {root}. Paste into your shell:")
    print(f"export FLEET_EVAL_S3_ENDPOINT={s3.endpoint}")
    print(f"export FLEET_EVAL_S3_ACCESS_KEY={s3.access_key}")
    print(f"export FLEET_EVAL_S3_SECRET_KEY={s3.secret_key}")
    print(f"export FLEET_EVAL_POSTGRES_DSN={postgres.dsn()}")
    print(f"export FLEET_EVAL_MLFLOW_TRACKING_URI={mlflow.tracking_uri}")
    print("# Ctrl-C stops them.", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        for service in (mlflow, postgres, s3):
            service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
