"""The pure domain of dbank: ops, the escrow state machine, commands and their planning.

Nothing here does I/O or knows gRPC or storage; ``tests/unit/test_layering.py`` keeps it so.
"""

from dbank.ledger.clock import HybridLogicalClock
from dbank.ledger.commands import (
    Command,
    DepositCommand,
    IdempotencyKey,
    OpenAccountCommand,
    TransferCommand,
    WithdrawCommand,
)
from dbank.ledger.errors import (
    Aborted,
    AccountExists,
    AccountNotFound,
    AlreadyExists,
    BalanceOverflow,
    CurrencyMismatch,
    DbankError,
    DeadlineExceeded,
    FailedPrecondition,
    InsufficientFunds,
    Internal,
    InvalidArgument,
    InvariantViolation,
    NotFound,
    RequestIdReused,
    RequestInProgress,
    Unavailable,
)
from dbank.ledger.ops import (
    AccountType,
    Deposit,
    Grant,
    Op,
    OpBody,
    OpenAccount,
    Transfer,
    Withdrawal,
)
from dbank.ledger.outcome import Outcome
from dbank.ledger.planner import EscrowShortfall, plan
from dbank.ledger.state import AccountRecord, LedgerState, StateDelta
from dbank.ledger.version_vector import OpId, VersionVector

__all__ = [
    "Aborted",
    "AccountExists",
    "AccountNotFound",
    "AccountRecord",
    "AccountType",
    "AlreadyExists",
    "BalanceOverflow",
    "Command",
    "CurrencyMismatch",
    "DbankError",
    "DeadlineExceeded",
    "Deposit",
    "DepositCommand",
    "EscrowShortfall",
    "FailedPrecondition",
    "Grant",
    "HybridLogicalClock",
    "IdempotencyKey",
    "InsufficientFunds",
    "Internal",
    "InvalidArgument",
    "InvariantViolation",
    "LedgerState",
    "NotFound",
    "Op",
    "OpBody",
    "OpId",
    "OpenAccount",
    "OpenAccountCommand",
    "Outcome",
    "RequestIdReused",
    "RequestInProgress",
    "StateDelta",
    "Transfer",
    "TransferCommand",
    "Unavailable",
    "VersionVector",
    "WithdrawCommand",
    "Withdrawal",
    "plan",
]
