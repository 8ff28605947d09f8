"""The event loop every dbank process runs on: uvloop, except on Windows.

A branch spends most of its time in the event loop's own machinery (gRPC's completion
queue callbacks, futures, tasks, wake-ups from the store's thread), so a faster loop is a
faster branch. uvloop's loop is libuv in C; on it a durable branch answers about a tenth
more deposits per second on the same cores (64 clients, the load of
``benchmarks/deposits.py``). uvloop has no Windows build; there the standard loop serves.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from importlib.metadata import version
from typing import Any, TypeVar

if sys.platform != "win32":
    import uvloop

__all__ = ["describe", "run"]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the process's event loop (see the module's doc)."""
    if sys.platform == "win32":
        return asyncio.run(main)
    return uvloop.run(main)


def describe() -> str:
    """The loop ``run`` uses, for reports: ``uvloop 0.23.0`` or ``asyncio``."""
    return "asyncio" if sys.platform == "win32" else f"uvloop {version('uvloop')}"
