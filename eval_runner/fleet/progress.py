"""Progress for the Argo UI: "devices done/total" in the file Argo names in ARGO_PROGRESS_FILE."""

from __future__ import annotations

from pathlib import Path


class ProgressFile:
    """Writes Argo's "N/M" progress format; the CLI passes the path it read from ARGO_PROGRESS_FILE."""

    def __init__(self, path: Path | None, total: int) -> None:
        self._path = path
        self._total = total
        self.done = 0

    def advance(self, devices: int) -> None:
        """Count ``devices`` more as done and rewrite the file."""
        self.done += devices
        if self._path is None:
            return
        # Argo's executor polls the file; write-and-rename so it never reads a half-written line.
        temporary = self._path.with_name(f".{self._path.name}.tmp")
        temporary.write_text(f"{self.done}/{self._total}\n")
        temporary.replace(self._path)
