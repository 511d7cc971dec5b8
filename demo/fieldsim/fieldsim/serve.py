"""Run the five shard apps with uvicorn on loopback ports: in a background thread (tests) or blocking."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from fieldsim.shards import ShardState, build_app


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _servers(states: list[ShardState]) -> list[uvicorn.Server]:
    return [
        uvicorn.Server(
            # h11: the fault layer reaches the connection through h11's request cycle; no access log,
            # the shards are test infrastructure.
            uvicorn.Config(build_app(state), http="h11", lifespan="off", access_log=False, log_level="warning")
        )
        for state in states
    ]


@dataclass
class RunningShards:
    """Shard servers running in a background thread; ``urls[i]`` serves shard i."""

    states: list[ShardState]
    urls: tuple[str, ...]
    _servers: list[uvicorn.Server]
    _thread: threading.Thread

    def stop(self) -> None:
        """Ask every server to exit and wait for the thread."""
        for server in self._servers:
            server.should_exit = True
        self._thread.join(timeout=10)


def start_in_thread(states: list[ShardState], host: str = "127.0.0.1", port_base: int = 0) -> RunningShards:
    """Start one server per state on ``port_base + i`` (or free ports when 0) and return once listening."""
    sockets = [_bind(host, port_base + i if port_base else 0) for i in range(len(states))]
    servers = _servers(states)
    loop = asyncio.new_event_loop()

    async def main() -> None:
        await asyncio.gather(*(s.serve(sockets=[sock]) for s, sock in zip(servers, sockets, strict=True)))

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main())
        loop.close()

    thread = threading.Thread(target=run, name="fieldsim-shards", daemon=True)
    thread.start()
    for _ in range(500):
        if all(s.started for s in servers):
            break
        threading.Event().wait(0.01)
    else:
        raise RuntimeError("shard servers did not start within 5 s")
    urls = tuple(f"http://{host}:{sock.getsockname()[1]}" for sock in sockets)
    return RunningShards(states, urls, servers, thread)


@contextlib.contextmanager
def running(states: list[ShardState], host: str = "127.0.0.1", port_base: int = 0) -> Iterator[RunningShards]:
    """Context manager form of ``start_in_thread``."""
    shards = start_in_thread(states, host, port_base)
    try:
        yield shards
    finally:
        shards.stop()


def serve_forever(states: list[ShardState], host: str, port_base: int) -> None:
    """Serve until interrupted (the CLI's ``serve-shards``)."""
    sockets = [_bind(host, port_base + i) for i in range(len(states))]
    servers = _servers(states)

    async def main() -> None:
        await asyncio.gather(*(s.serve(sockets=[sock]) for s, sock in zip(servers, sockets, strict=True)))

    asyncio.run(main())
