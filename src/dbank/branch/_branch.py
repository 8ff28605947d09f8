"""A branch: its replica of the bank, its writer and its store, free of any wire protocol.

The gRPC servicers call these methods; each write returns only once it is durable, each
read answers from the committed state of this branch's replica.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from dbank.branch._config import BranchConfig
from dbank.branch._writer import Writer
from dbank.ledger import (
    AccountRecord,
    DepositCommand,
    HybridLogicalClock,
    InvalidArgument,
    OpenAccountCommand,
    OpId,
    TransferCommand,
    Unavailable,
    WithdrawCommand,
)
from dbank.ledger.commands import check_id
from dbank.ledger.ownership import owner_branch
from dbank.store import MemoryStore, SqliteStore, Store

MAX_ACCOUNTS_PER_READ = 1000


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account as this replica sees it."""

    record: AccountRecord
    balance: int
    withdrawable_here: int


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A write's op and the balances it left: ``(account_id, balance)`` per account."""

    op_id: OpId
    balances: tuple[tuple[str, int], ...]
    currency: str


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Branch:
    """Create with ``await Branch.open(config)``; ``await close()`` when done."""

    def __init__(self, config: BranchConfig, store: Store, writer: Writer) -> None:
        self.config = config
        self._store = store
        self._writer = writer

    @classmethod
    async def open(cls, config: BranchConfig, store: Store | None = None) -> Branch:
        """Load the branch's state from its store and start its writer."""
        if store is None:
            path = config.store_path
            store = (
                MemoryStore()
                if path is None
                else await SqliteStore.open(path, branch_id=config.branch_id)
            )
        snapshot = await store.load()
        clock = HybridLogicalClock(_wall_ms, snapshot.last_hlc)
        writer = Writer(config.branch_id, snapshot.state, store, clock)
        writer.start()
        return cls(config, store, writer)

    async def close(self) -> None:
        """Finish the writes already accepted, then release the store."""
        await self._writer.stop()
        await self._store.close()

    @property
    def branch_id(self) -> int:
        return self.config.branch_id

    # Reads ---------------------------------------------------------------------------

    def account(self, account_id: str) -> AccountView:
        """Raises ``AccountNotFound``."""
        return self.accounts([account_id])[0]

    def accounts(self, account_ids: Sequence[str]) -> list[AccountView]:
        """Several accounts read from one committed state (no await in between).

        Raises:
            InvalidArgument: no ids, more than 1000, or repeated ids.
            AccountNotFound: for the first unknown id.
        """
        if not 1 <= len(account_ids) <= MAX_ACCOUNTS_PER_READ:
            raise InvalidArgument(
                f"ask for 1-{MAX_ACCOUNTS_PER_READ} accounts, not {len(account_ids)}",
                reason="TOO_MANY_ACCOUNTS",
                field="account_ids",
            )
        if len(set(account_ids)) != len(account_ids):
            raise InvalidArgument(
                "account ids repeat", reason="INVALID_ACCOUNT_ID", field="account_ids"
            )
        state = self._writer.state
        views = []
        for account_id in account_ids:
            check_id(account_id, field="account_id")
            record = state.account(account_id)
            views.append(
                AccountView(
                    record,
                    state.balance(account_id),
                    state.rights_of(account_id, self.branch_id),
                )
            )
        return views

    # Writes --------------------------------------------------------------------------

    async def open_account(self, command: OpenAccountCommand) -> tuple[AccountView, OpId]:
        """Open an account, durably; idempotent by (account_id, request_id).

        Raises:
            AccountExists, RequestIdReused, Unavailable.
        """
        owner = owner_branch(command.account_id, self.config.branch_ids)
        if owner != self.branch_id:
            raise Unavailable(
                f"account {command.account_id!r} is opened by its owner branch {owner}",
                owner_branch=str(owner),
            )
        outcome = await self._writer.submit(command)
        assert outcome.op_id is not None
        return self.account(command.account_id), outcome.op_id

    async def deposit(self, command: DepositCommand) -> WriteResult:
        """Raises AccountNotFound, CurrencyMismatch, BalanceOverflow, RequestIdReused."""
        return await self._write(command)

    async def withdraw(self, command: WithdrawCommand) -> WriteResult:
        """Raises AccountNotFound, CurrencyMismatch, InsufficientFunds, RequestIdReused."""
        return await self._write(command)

    async def transfer(self, command: TransferCommand) -> WriteResult:
        """Raises AccountNotFound, CurrencyMismatch, InsufficientFunds, BalanceOverflow,
        RequestIdReused."""
        return await self._write(command)

    async def _write(
        self, command: DepositCommand | WithdrawCommand | TransferCommand
    ) -> WriteResult:
        outcome = await self._writer.submit(command)
        assert outcome.op_id is not None
        account_id = outcome.balances[0][0]
        currency = self._writer.state.account(account_id).currency
        return WriteResult(outcome.op_id, outcome.balances, currency)
