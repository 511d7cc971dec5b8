"""`make services`: run S3, PostgreSQL and MLflow on loopback until Ctrl-C, printing their settings.

Any server that fails to start stops every server started before it, so a failed `make services` leaves
nothing running. MLflow gets as long as it needs on a loaded machine, with a line of progress meanwhile.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from tests.services.mlflow import start_mlflow
from tests.services.postgres import start_postgres
from tests.services.process import ServiceError
from tests.services.s3 import start_s3


def _progress(waited: float) -> None:
    print(
        f"# mlflow still starting ({waited:.0f}s; it imports slowly on a loaded machine)", file=sys.stderr, flush=True
    )


def main() -> int:
    """Start the services, print the environment that points eval-runner at them, wait for a signal."""
    root = Path(tempfile.mkdtemp(prefix="fleet-eval-services-"))
    with ExitStack() as running:  # stops, in reverse order, whatever was started
        try:
            s3 = start_s3(root / "s3")
            running.callback(s3.stop)
            postgres = start_postgres(root / "postgres")
            running.callback(postgres.stop)
            mlflow = start_mlflow(root / "mlflow", s3, progress=_progress)
            running.callback(mlflow.stop)
        except ServiceError as error:
            print(
                f"make services: {error}\n# every server started so far is stopped; logs under {root}", file=sys.stderr
            )
            return 1
        print(f"# services running; data and logs under {root}. Paste into your shell:")
        print(f"export FLEET_EVAL_S3_ENDPOINT={s3.endpoint}")
        print(f"export FLEET_EVAL_S3_ACCESS_KEY={s3.access_key}")
        print(f"export FLEET_EVAL_S3_SECRET_KEY={s3.secret_key}")
        print(f"export FLEET_EVAL_POSTGRES_DSN={postgres.dsn()}")
        print(f"export FLEET_EVAL_MLFLOW_TRACKING_URI={mlflow.tracking_uri}")
        print("# Ctrl-C stops them.", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


if __name__ == "__main__":
    sys.exit(main())
