"""The step wrapper passes exit codes through and turns a JSON summary into one file per key."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from workflows.common import STEP_WRAPPER

FAKE = """#!/bin/sh
echo "log line" >&2
if [ -n "$FAKE_SUMMARY" ]; then printf '%s' "$FAKE_SUMMARY" >"$FLEET_EVAL_STEP_OUTPUTS/summary.json"; fi
printf '%s' "$FAKE_STDOUT"
if [ -n "$FAKE_KILL" ]; then kill -s "$FAKE_KILL" $$; fi
exit "$FAKE_EXIT"
"""


def _run(tmp_path: Path, stdout: str, code: int, summary: str = "", kill: str = "") -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "eval-runner"
    fake.write_text(FAKE)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_STDOUT": stdout,
        "FAKE_EXIT": str(code),
        "FAKE_SUMMARY": summary,
        "FAKE_KILL": kill,
        "FLEET_EVAL_STEP_OUTPUTS": str(tmp_path / "out"),
    }
    return subprocess.run(
        [sys.executable, "-c", STEP_WRAPPER, "fleet", "merge"], env=env, capture_output=True, text=True, check=False
    )


def test_summary_keys_become_files(tmp_path: Path) -> None:
    done = _run(tmp_path, json.dumps({"devices": 1000, "mode": "fleet", "counts": {"ok": 2}, "bad key!": 1}), 0)
    out = tmp_path / "out"
    assert done.returncode == 0
    assert json.loads(done.stdout)["devices"] == 1000
    assert (out / "devices").read_text() == "1000"
    assert (out / "mode").read_text() == "fleet"
    assert json.loads((out / "counts").read_text()) == {"ok": 2}
    assert not (out / "bad key!").exists()
    assert json.loads((out / "summary.json").read_text())["devices"] == 1000
    assert float((out / "duration_seconds").read_text()) >= 0
    assert (out / "exit_code").read_text() == "0"


@pytest.mark.parametrize("code", [2, 3, 75])
def test_exit_codes_pass_through_for_retry_strategy(tmp_path: Path, code: int) -> None:
    done = _run(tmp_path, "", code)
    assert done.returncode == code
    assert (tmp_path / "out" / "exit_code").read_text() == str(code)
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == {}


def test_non_json_output_is_kept_as_text(tmp_path: Path) -> None:
    done = _run(tmp_path, "plain words", 0)
    assert done.returncode == 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == {"output": "plain words"}


def test_a_list_result_stays_the_stdout(tmp_path: Path) -> None:
    # `fleet plan` prints the shard ids: Argo's outputs.result must be exactly that JSON list.
    done = _run(tmp_path, '["0", "1"]', 0)
    assert json.loads(done.stdout) == ["0", "1"]


def test_a_summary_the_command_wrote_wins_and_is_split(tmp_path: Path) -> None:
    # `versions resolve` prints resolutions (a list) and writes summary.json itself.
    done = _run(tmp_path, '[{"label": "latest"}]', 0, summary='{"labels": 1, "images_missing": 0}')
    out = tmp_path / "out"
    assert json.loads(done.stdout) == [{"label": "latest"}]
    assert json.loads((out / "summary.json").read_text()) == {"labels": 1, "images_missing": 0}
    assert (out / "labels").read_text() == "1"
    assert (out / "images_missing").read_text() == "0"


@pytest.mark.parametrize(("signal_name", "code"), [("KILL", 137), ("TERM", 143)])
def test_a_command_killed_by_a_signal_exits_128_plus_n(tmp_path: Path, signal_name: str, code: int) -> None:
    # 143 is retried (a deleted or drained pod); 256-N (241) would be neither retried nor recognised.
    done = _run(tmp_path, "", 0, kill=signal_name)
    assert done.returncode == code
    assert (tmp_path / "out" / "exit_code").read_text() == str(code)
