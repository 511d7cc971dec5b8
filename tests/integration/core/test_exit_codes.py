"""The exit-code contract holds at process exit, where Argo's retryStrategy reads it.

Each CLI error path runs RUNS times as a real process through the installed console script and must exit
with its documented code every time: 2 configuration, 3 data, 75 transient. Before eval_runner.cli.run
left through os._exit, about 2 % of such runs printed the right error and then aborted at interpreter
shutdown ("terminate called without an active exception", exit -6), which Argo neither retries nor
classifies.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from eval_runner.errors import ExitCode
from eval_runner.settings import S3Settings
from eval_runner.storage import S3ObjectStore
from tests.fixtures.dataset import source_env
from tests.services.process import free_port

RUNS = 50
ENTRY_POINT = str(Path(sys.executable).parent / "eval-runner")


def _exit_codes(argv: list[str], env: dict[str, str]) -> Counter[int]:
    def one(_: int) -> int:
        return subprocess.run([ENTRY_POINT, *argv], env=env, capture_output=True, timeout=300).returncode

    with ThreadPoolExecutor(2) as pool:  # two cores
        return Counter(pool.map(one, range(RUNS)))


@pytest.mark.timeout(1800)
def test_every_error_path_exits_with_its_documented_code_every_time(s3_settings: S3Settings) -> None:
    # The bucket exists, so a month never built is a data error, not S3's.
    S3ObjectStore.from_settings(s3_settings).ensure_bucket()
    store_env = source_env(s3_settings, "postgresql://nobody@127.0.0.1:1/none", ("http://127.0.0.1:1",))
    unreachable = {**store_env, "FLEET_EVAL_S3_ENDPOINT": f"127.0.0.1:{free_port()}"}
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    paths = {
        "config: a month that is not YYYY-MM": (["dataset", "build", "--month", "2026-13"], base, ExitCode.CONFIG),
        "data: a month never built": (["dataset", "show", "--month", "2026-04"], {**base, **store_env}, ExitCode.DATA),
        "transient: S3 unreachable": (
            ["dataset", "show", "--month", "2026-04"],
            {**base, **unreachable},
            ExitCode.TRANSIENT,
        ),
    }
    seen: dict[str, Counter[int]] = {}
    started = time.monotonic()
    for name, (argv, env, code) in paths.items():
        seen[name] = _exit_codes(argv, env)
        assert seen[name] == Counter({int(code): RUNS}), f"{name}: exit codes {dict(seen[name])}"
    print(f"exit codes of {RUNS * len(paths)} CLI runs in {time.monotonic() - started:.0f}s: {seen}")
