"""What a branch needs to know to run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class BranchConfig:
    """Attributes:
    branch_id: this branch's id, a positive integer unique in the bank.
    listen: the ``HOST:PORT`` the gRPC server binds (port 0 picks a free port).
    data_dir: where the branch's SQLite file lives; None keeps everything in memory
        (tests only: nothing survives a restart).
    peers: the other branches, id to ``HOST:PORT``.
    """

    branch_id: int
    listen: str = "127.0.0.1:0"
    data_dir: Path | None = None
    peers: dict[int, str] = field(default_factory=dict)

    @property
    def branch_ids(self) -> list[int]:
        """Every branch of the bank, sorted."""
        return sorted({self.branch_id, *self.peers})

    @property
    def store_path(self) -> Path | None:
        if self.data_dir is None:
            return None
        return self.data_dir / f"branch-{self.branch_id}.sqlite3"
