"""The command line both chart generators share: write the generated files, or ``--check`` they are fresh.

``workflows.render`` (the WorkflowTemplates and policies) and ``workflows.chart_render`` (the values schema
and the contracts helper) generate different files the same way; one entry point keeps their flags,
messages and exit codes alike (`make render-check` and CI read them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def main(
    argv: list[str] | None,
    *,
    prog: str,
    description: str | None,
    stale: Callable[[], list[str]],
    write: Callable[[], list[str]],
    shown_under: str,
) -> int:
    """Write the files (print each that changed), or with --check name each stale one and exit 1.

    ``stale`` and ``write`` return paths relative to ``shown_under``, the directory printed before them.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1 if any)")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale()
        for path in outdated:
            print(f"stale: {shown_under}/{path} (run `make render`)", file=sys.stderr)
        return 1 if outdated else 0
    for path in write():
        print(f"wrote {shown_under}/{path}")
    return 0
