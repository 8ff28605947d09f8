"""Claiming a Redis database for one run, before any branch starts (``dbank.store``
does the claiming; this runs it on a loop of its own and words its refusals)."""

from __future__ import annotations

import datetime as dt
import os
import socket

from dbank import _event_loop as event_loop
from dbank.hosting._configs import store_problem
from dbank.hosting._errors import RunError
from dbank.store import RedisAddress, StoreUnusable, claim_database, parse_redis_url


def claim_redis_database(url: str, *, unsafe: bool = False) -> RedisAddress:
    """Make the empty Redis database at ``url`` (``redis://HOST:PORT/DB``) this run's, and
    return its address (``dbank.store.claim_database``). Runs an event loop of its own and
    leaves no thread behind, so the runner may fork its branches afterwards.

    Raises:
        RunError: (``exit_status`` 2) ``url`` is malformed, Redis cannot be reached, its
            settings can lose acknowledged writes (unless ``unsafe``), or the database
            holds another run's state or any other key.
    """
    try:
        address = parse_redis_url(url)
    except ValueError as exc:
        raise RunError(str(exc), exit_status=2) from None
    try:
        event_loop.run(claim_database(address, holder=_this_run(), unsafe=unsafe))
    except StoreUnusable as exc:
        raise RunError(store_problem(exc) or exc.message, exit_status=2) from None
    return address


def _this_run() -> str:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return f"a dbank run started {started} by pid {os.getpid()} on {socket.gethostname()}"
