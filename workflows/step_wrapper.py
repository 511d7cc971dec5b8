"""Run one eval-runner command and expose its JSON summary as files Argo turns into output parameters.

This file is not imported: its source is the ``python -c`` program of every runner step (see
common.py), so it uses only the standard library. It passes stdout through, writes ``summary.json``
(unless the command wrote one itself), one file per top-level summary key, ``duration_seconds`` and
``exit_code`` into the outputs folder, and exits with the command's own exit code so Argo's
retryStrategy still sees 2, 3 or 75; a command killed by signal N exits 128+N, as a shell reports it
(subprocess gives -N, which ``sys.exit`` would turn into 256-N: 247 for SIGKILL, 241 for SIGTERM).
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import time

out = pathlib.Path(os.environ.get("FLEET_EVAL_STEP_OUTPUTS", "/tmp/outputs"))  # noqa: S108  # an emptyDir
out.mkdir(parents=True, exist_ok=True)
started = time.monotonic()
done = subprocess.run(["eval-runner", *sys.argv[1:]], stdout=subprocess.PIPE, text=True, check=False)
sys.stdout.write(done.stdout)
sys.stdout.flush()
summary_file = out / "summary.json"
if summary_file.exists():  # the command wrote its own summary; its stdout is something else (a list)
    try:
        summary = json.loads(summary_file.read_text())
    except ValueError:
        summary = {}
else:
    try:
        summary = json.loads(done.stdout) if done.stdout.strip() else {}
    except ValueError:
        summary = {"output": done.stdout.strip()[-2000:]}
    summary_file.write_text(json.dumps(summary, sort_keys=True))
if isinstance(summary, dict):
    for key, value in summary.items():
        if re.fullmatch(r"[A-Za-z0-9_-]{1,63}", key):
            (out / key).write_text(value if isinstance(value, str) else json.dumps(value, sort_keys=True))
(out / "duration_seconds").write_text(f"{time.monotonic() - started:.3f}")
code = 128 - done.returncode if done.returncode < 0 else done.returncode
(out / "exit_code").write_text(str(code))
sys.exit(code)
