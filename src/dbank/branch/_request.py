"""What a request brings to a branch besides its own fields, and what a write returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from dbank.ledger import OpId, VersionVector

MAX_WAIT = 5.0
"""The longest any request waits on other branches (sessions, borrowing, confirmations)."""


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a request brings besides its own fields.

    Attributes:
        session: the caller's session token: serve only once this replica covers it.
        wait_all: for writes, also wait (bounded) until the other branches applied it.
        budget: seconds this branch may spend waiting on others for the request.
        request_branch: for a retried write, the branch its request id was first sent to
            (0: none; this branch decides).
        session_source: the branch the session token last came from (0: unknown): where
            to fetch what this replica lacks of it first.
    """

    session: VersionVector = field(default_factory=VersionVector)
    wait_all: bool = True
    budget: float = MAX_WAIT
    request_branch: int = 0
    session_source: int = 0


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A write's op and the balances it left: ``(account_id, balance)`` per account.

    ``session`` covers the op; ``unconfirmed`` lists the branches that had not applied it
    when the write answered (empty unless waited for with ``wait_all``); ``answered_by``
    is the branch whose answer this is (another than the one asked when the write was
    forwarded to its request's branch)."""

    op_id: OpId
    balances: tuple[tuple[str, int], ...]
    currency: str
    session: VersionVector
    unconfirmed: tuple[int, ...] = ()
    answered_by: int = 0
