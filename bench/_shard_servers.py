"""The simulator's five shard servers in a child process, as bench/snapshot.py and bench/configuration.py run them.

Real shards do not share the benchmark's interpreter lock, so the servers run in a process of their own;
their CPU is read back as the children's (``children_cpu``), apart from the runner's.
"""

from __future__ import annotations

import asyncio
import importlib
import resource
from multiprocessing.connection import Connection
from typing import Any

# fieldsim ships no type information; use it untyped rather than silencing mypy line by line.
fieldsim_serve: Any = importlib.import_module("fieldsim.serve")


def serve_shards(states: list[Any], urls: Connection) -> None:
    """Child process: serve the shards on free ports, send their URLs, serve until terminated."""
    sockets = [fieldsim_serve._bind("127.0.0.1", 0) for _ in states]
    servers = fieldsim_serve._servers(states)
    urls.send([f"http://127.0.0.1:{s.getsockname()[1]}" for s in sockets])
    urls.close()

    async def main() -> None:
        await asyncio.gather(*(s.serve(sockets=[sock]) for s, sock in zip(servers, sockets, strict=True)))

    asyncio.run(main())


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes, the shard servers among them."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
