"""Every branch of a bank as a ``BranchServer`` in the caller's event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from dbank.branch import BranchConfig
from dbank.hosting._configs import store_problem, unusable
from dbank.hosting._errors import RunError
from dbank.server import BranchServer

STOP_GRACE = 1.0
"""Seconds a stopping branch lets requests in flight finish; by then the run is over."""


class InProcessBranches:
    """Every branch as a ``BranchServer`` in the caller's event loop."""

    def __init__(self, configs: Sequence[BranchConfig]) -> None:
        self.configs = list(configs)
        self.addresses = {config.branch_id: config.listen for config in configs}
        self._servers: list[BranchServer] = []

    async def start(
        self, on_exit: Callable[[RunError], None], on_ready: Callable[[int], None]
    ) -> None:
        """Start every branch, calling ``on_ready`` with each one's id once all serve
        (``on_exit`` is never called: a branch here cannot exit on its own)."""
        started = await asyncio.gather(
            *(BranchServer.start(config) for config in self.configs), return_exceptions=True
        )
        for result in started:
            if isinstance(result, BranchServer):
                self._servers.append(result)
        for config, result in zip(self.configs, started, strict=True):
            if isinstance(result, BaseException):
                problem = store_problem(result)
                if problem is not None:
                    raise RunError(unusable(config.branch_id, problem), exit_status=2)
                raise RunError(f"branch {config.branch_id} failed to start: {result}")
        for config in self.configs:
            on_ready(config.branch_id)

    async def stop(self, *, graceful: bool = True) -> None:
        """Stop every branch cleanly (``graceful`` or not: in one process a clean stop
        costs little, and cutting streams short makes gRPC complain on standard error)."""
        servers, self._servers = self._servers, []
        await asyncio.gather(*(server.stop(STOP_GRACE) for server in servers))
