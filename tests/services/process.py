"""Starting, probing and stopping one server process, with its output kept in a log file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("FLEET_EVAL_CACHE", "/var/cache/fleet-eval"))


class ServiceError(RuntimeError):
    """A service could not be found or did not start; the message says what to do."""


def pinned_version(name: str) -> str:
    """A version pinned in scripts/versions.env (shared with the shell scripts)."""
    for line in (REPO / "scripts" / "versions.env").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == name:
            return value.strip()
    raise ServiceError(f"scripts/versions.env pins no {name}")


def require_binary(candidates: Sequence[Path | str], *, install_hint: str) -> str:
    """The first candidate that exists (a path, or a name on PATH); otherwise say how to install it."""
    for candidate in candidates:
        found = shutil.which(str(candidate)) if isinstance(candidate, str) else None
        if found:
            return found
        if isinstance(candidate, Path) and candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    tried = ", ".join(str(c) for c in candidates)
    raise ServiceError(f"none of [{tried}] found; install it with: {install_hint}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``host:port``."""
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, port)) == 0


@dataclass
class ManagedProcess:
    """A server process started in its own session so stop() ends it with all its children."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    _process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        """Start the process; output goes to the log file."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        """The process id (the session leader)."""
        assert self._process is not None, f"{self.name} was not started"
        return self._process.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self._process is not None and self._process.poll() is None

    def wait_until(
        self, ready: Callable[[], bool], *, timeout: float, progress: Callable[[float], None] | None = None
    ) -> None:
        """Poll ``ready`` until it is true; fail with the log's tail when the process dies or time runs out.

        ``progress`` is called with the seconds waited, about every 15 s, so a slow start says it is alive.
        A server that is not ready in time is stopped before the error is raised: nothing is left running.
        """
        started = time.monotonic()
        reported = started
        while (waited := time.monotonic() - started) < timeout:
            if ready():
                return
            if not self.alive():
                raise ServiceError(f"{self.name} exited during start-up:\n{self.log_tail()}")
            if progress is not None and time.monotonic() - reported >= 15:
                reported = time.monotonic()
                progress(waited)
            time.sleep(0.1)
        self.stop()
        raise ServiceError(f"{self.name} not ready after {timeout:.0f}s (stopped):\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the process log."""
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL when it does not exit in time."""
        if self._process is None or self._process.poll() is not None:
            return
        try:
            os.killpg(self._process.pid, signal.SIGTERM)
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=timeout)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL the process group at once (for tests of a server dying mid-call)."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(timeout=10)
