"""`fleet run --local`: the workflow's steps in local processes (development, and the benchmark's baseline).

Shards run as separate `eval-runner fleet shard` processes, exactly what a pod runs, so a local run
exercises the same code path, start-up cost and checkpointing as the cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from eval_runner.errors import ConfigError, DataError, ExitCode, FleetEvalError, TransientError
from eval_runner.exits import error_for, exit_code_for_returncode

# What the `eval-runner` console script runs. `python -m eval_runner.cli` would load cli.py twice (as
# __main__ and as eval_runner.cli), which once broke on an import cycle; the entry point loads it once.
ENTRY = "import sys; from eval_runner.cli import main; sys.exit(main())"

_OURS = frozenset({ExitCode.CONFIG, ExitCode.DATA, ExitCode.TRANSIENT, ExitCode.SOFTWARE})


def shard_command(run_id: str, shard: str | None, *, verbose: int = 0) -> list[str]:
    """Build the command line of one shard process (``shard=None``: the canary batch)."""
    where = ["--canary"] if shard is None else ["--shard", shard]
    return [
        sys.executable,
        "-c",
        ENTRY,
        *(["-v"] * verbose),
        "fleet",
        "shard",
        "--run-id",
        run_id,
        *where,
    ]


def run_shard_process(command: Sequence[str], *, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run one shard process; return its JSON report or raise the error its exit code stands for."""
    done = subprocess.run(list(command), capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        code = exit_code_for_returncode(done.returncode)
        # Our codes keep their meaning; killed (128+N) or crashed otherwise: a retry may succeed.
        error = error_for(code) if code in _OURS else TransientError
        tail = done.stderr.strip().splitlines()[-3:]
        raise error(f"shard process `{' '.join(command[-3:])}` exited {code}: {' | '.join(tail)}")
    report = json.loads(done.stdout)
    if not isinstance(report, dict):
        raise DataError(f"shard process printed no report: {done.stdout[:200]!r}")
    return report


def run_shards(
    run_id: str,
    shards: Sequence[str],
    *,
    workers: int,
    verbose: int = 0,
    env: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Run every shard in at most ``workers`` processes; the first failure is raised once all ended."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_shard_process, shard_command(run_id, s, verbose=verbose), env=env) for s in shards]
        outcomes: list[dict[str, Any]] = []
        failure: FleetEvalError | None = None
        for future in futures:
            try:
                outcomes.append(future.result())
            except FleetEvalError as error:
                failure = failure or error
    if failure is not None:
        raise failure
    return outcomes
