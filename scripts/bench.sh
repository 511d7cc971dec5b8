#!/usr/bin/env bash
# `make bench`: runs each bench/*.py (each prints its figures and the ratios against the baseline it
# measures in the same run) and keeps the output in bench/results/<name>.txt with the machine's facts.
# bench/_*.py (and __init__.py) are modules the benchmarks share, not benchmarks.
# `scripts/bench.sh NAME ...` runs only bench/NAME.py for each NAME given, the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
if [ $# -gt 0 ]; then
  scripts=()
  for name in "$@"; do
    [ -f "bench/$name.py" ] || { echo "bench: no benchmark bench/$name.py"; exit 2; }
    scripts+=("bench/$name.py")
  done
else
  scripts=(bench/*.py)
fi
mkdir -p bench/results
status=0
for script in "${scripts[@]}"; do
  [ -e "$script" ] || { echo "bench: no benchmarks in bench/"; exit 0; }
  name=$(basename "$script" .py)
  case $name in _*) continue ;; esac
  out=bench/results/$name.txt
  echo "== $name"
  {
    echo "# $name, $(date -u +%FT%TZ), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, commit $(git rev-parse --short HEAD 2>/dev/null || echo none)"
    "$PY" "$script"
  } 2>&1 | tee "$out" || status=1
done
exit $status
