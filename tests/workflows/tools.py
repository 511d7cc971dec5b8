"""Helpers shared by the workflow and chart tests (a plain module, so both may import it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ARGO_CACHE = Path(os.environ.get("FLEET_EVAL_CACHE", "/var/cache/fleet-eval")) / "bin"


def argo_binary() -> Path | None:
    """The argo CLI: $ARGO_BIN, the cluster build's cached binary, or argo on PATH."""
    if os.environ.get("ARGO_BIN"):
        return Path(os.environ["ARGO_BIN"])
    cached = sorted(p for p in ARGO_CACHE.glob("argo-v*/argo") if p.is_file() and os.access(p, os.X_OK))
    if cached:
        return cached[-1]
    found = shutil.which("argo")
    return Path(found) if found else None
