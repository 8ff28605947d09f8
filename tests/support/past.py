"""A branch whose clock the test sets: its ops are dated when the test says.

The branch is the real one (writer, ledger, a real SQLite file or the in-memory twin), only
its wall clock is the test's. Closing it leaves a data directory that a real branch
process, with the real clock, then serves: past history without waiting for days to pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from dbank.branch import Branch, BranchConfig
from dbank.ledger.ownership import owner_branch


class SetClock:
    """A wall clock that stands where the test puts it (UTC), and moves only when told."""

    def __init__(self, when: dt.datetime) -> None:
        self.now = when

    def at(self, day: dt.date, hour: int = 12) -> None:
        self.now = dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)

    def __call__(self) -> int:
        return int(self.now.timestamp() * 1000)


@asynccontextmanager
async def branch_with_clock(
    clock: SetClock,
    data_dir: Path | None = None,
    *,
    branch_id: int = 1,
    peers: dict[int, str] | None = None,
) -> AsyncIterator[Branch]:
    """A branch on ``data_dir`` (None: in memory) whose HLC follows ``clock``. With
    ``peers`` it has no links to them: it only originates, for a bank of that shape."""
    config = BranchConfig(branch_id, data_dir=data_dir, peers=peers or {})
    branch = await Branch.open(config, wall_ms=clock)
    try:
        yield branch
    finally:
        await branch.close()


def owned_id(prefix: str, owner: int, branch_ids: list[int]) -> str:
    """An account id that ``owner`` owns in a bank of ``branch_ids``."""
    n = 0
    while owner_branch(f"{prefix}-{n}", branch_ids) != owner:
        n += 1
    return f"{prefix}-{n}"
