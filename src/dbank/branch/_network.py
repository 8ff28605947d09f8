"""What a branch needs from the other branches, as a protocol free of any wire format.

``dbank.replication`` implements it over gRPC; a bank of one branch uses ``NoPeers``.
"""

from __future__ import annotations

from typing import Protocol

from dbank.branch._request import RequestContext, WriteResult
from dbank.ledger import (
    DepositCommand,
    InterestCommand,
    OpenAccountCommand,
    OpId,
    TransferCommand,
    Unavailable,
    VersionVector,
    WithdrawCommand,
)


class Network(Protocol):
    async def borrow(self, account_id: str, shortfall: int, within: float) -> list[int]:
        """Ask every other branch at once for up to ``shortfall`` of its escrow share of the
        account, and apply the grants they make; return the branches that did not answer
        within ``within`` seconds."""
        ...

    async def confirm(self, op_id: OpId, within: float) -> list[int]:
        """Wait until every branch whose stream is connected has applied ``op_id`` durably;
        return those that had not after ``within`` seconds, and those not connected."""
        ...

    async def pull(self, wanted: VersionVector, within: float, *, source: int = 0) -> None:
        """Fetch from other branches the ops this replica lacks of ``wanted`` (best effort:
        the caller waits for the state it needs on its own): from ``source`` first, a
        branch known to have held all of it (0: none known)."""
        ...

    async def sealed_count(self, branch: int, hlc: int, within: float) -> int:
        """Have ``branch`` make all its later ops follow HLC ``hlc``; return how many ops it
        had originated by then, having fetched what this replica lacks of them (best
        effort: the caller checks its vector).

        Raises:
            Unavailable: ``branch`` did not answer within ``within`` seconds.
        """
        ...

    async def open_at_owner(
        self, owner: int, command: OpenAccountCommand, within: float
    ) -> tuple[OpId, VersionVector]:
        """Have branch ``owner`` open the account; return the op and the owner's state
        right after.

        Raises:
            DbankError: the owner's answer (AccountExists, RequestIdReused, Unavailable...).
        """
        ...

    async def interest_at_owner(
        self, owner: int, command: InterestCommand, within: float
    ) -> tuple[OpId, VersionVector]:
        """Have branch ``owner`` post the account's interest; return the posting's op and
        the owner's state right after.

        Raises:
            DbankError: the owner's answer (DayNotClosed, WrongAccountType, Unavailable...).
        """
        ...

    async def forward(
        self,
        branch: int,
        command: DepositCommand | WithdrawCommand | TransferCommand,
        context: RequestContext,
    ) -> WriteResult:
        """Have ``branch``, the one the command's request id was first sent to, carry it
        out (or answer it from its stored outcome); return its answer.

        Raises:
            RequestBranchUnreachable: ``branch`` did not answer within the context's budget.
            DbankError: ``branch``'s answer (InsufficientFunds, RequestIdReused...).
        """
        ...


class NoPeers:
    """The network of a bank with a single branch."""

    async def borrow(self, account_id: str, shortfall: int, within: float) -> list[int]:
        return []

    async def confirm(self, op_id: OpId, within: float) -> list[int]:
        return []

    async def pull(self, wanted: VersionVector, within: float, *, source: int = 0) -> None:
        return None

    async def sealed_count(self, branch: int, hlc: int, within: float) -> int:
        raise Unavailable(f"branch {branch} cannot be reached: no links to other branches")

    async def open_at_owner(
        self, owner: int, command: OpenAccountCommand, within: float
    ) -> tuple[OpId, VersionVector]:
        raise AssertionError("a bank of one branch owns every account")

    async def interest_at_owner(
        self, owner: int, command: InterestCommand, within: float
    ) -> tuple[OpId, VersionVector]:
        raise AssertionError("a bank of one branch owns every account")

    async def forward(
        self,
        branch: int,
        command: DepositCommand | WithdrawCommand | TransferCommand,
        context: RequestContext,
    ) -> WriteResult:
        raise AssertionError("a bank of one branch decides every request id")
