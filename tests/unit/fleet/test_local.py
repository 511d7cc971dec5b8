from __future__ import annotations

import sys
from pathlib import Path

import pytest

from eval_runner.errors import ConfigError, DataError, TransientError
from eval_runner.fleet.local import run_shard_process
from eval_runner.fleet.progress import ProgressFile


@pytest.mark.parametrize(("code", "error"), [(2, ConfigError), (3, DataError), (75, TransientError), (-9, None)])
def test_a_shard_process_exit_code_becomes_our_error(code: int, error: type[Exception] | None) -> None:
    script = f"import os, signal, sys; print('boom', file=sys.stderr); sys.exit({code})"
    if code < 0:  # killed: a retry may succeed, like Argo retrying a lost pod
        script = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(error or TransientError, match="exited"):
        run_shard_process([sys.executable, "-c", script])


def test_a_shard_process_report_is_parsed() -> None:
    assert run_shard_process([sys.executable, "-c", 'print(\'{"shard": "s000"}\')']) == {"shard": "s000"}


def test_progress_is_written_in_argos_format(tmp_path: Path) -> None:
    path = tmp_path / "progress"
    progress = ProgressFile(path, 500)
    progress.advance(250)
    assert path.read_text() == "250/500\n"
    ProgressFile(None, 10).advance(5)  # no file configured: nothing to write, no error
