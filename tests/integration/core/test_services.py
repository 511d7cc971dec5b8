"""`make services` (tests/services/__main__.py): a server that fails to start leaves nothing running."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.services import __main__ as services
from tests.services import mlflow as mlflow_service
from tests.services.process import ManagedProcess, ServiceError, port_open


def test_a_server_not_ready_in_time_is_stopped_and_named(tmp_path: Path) -> None:
    sleeper = ManagedProcess("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "log").start()
    waited: list[float] = []
    with pytest.raises(ServiceError, match=r"sleeper not ready after 0s \(stopped\)"):
        sleeper.wait_until(lambda: False, timeout=0.3, progress=waited.append)
    assert not sleeper.alive()


def test_when_mlflow_fails_the_s3_and_postgres_servers_started_before_it_are_stopped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: dict[str, Any] = {}
    from tests.services.postgres import start_postgres as real_postgres
    from tests.services.s3 import start_s3 as real_s3

    def s3(root: Path) -> Any:
        started["s3"] = real_s3(root)
        return started["s3"]

    def postgres(root: Path) -> Any:
        started["postgres"] = real_postgres(root)
        return started["postgres"]

    def mlflow(root: Path, s3_server: Any, **options: Any) -> Any:
        # A real mlflow that cannot become healthy in the time given.
        return mlflow_service.start_mlflow(root, s3_server, timeout=0.5, progress=options.get("progress"))

    monkeypatch.setattr(services, "start_s3", s3)
    monkeypatch.setattr(services, "start_postgres", postgres)
    monkeypatch.setattr(services, "start_mlflow", mlflow)
    assert services.main() == 1
    err = capsys.readouterr().err
    assert "mlflow not ready" in err and "every server started so far is stopped" in err
    assert not started["s3"].process.alive() and not port_open(started["s3"].port)
    assert not started["postgres"].process.alive()
