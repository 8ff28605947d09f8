"""dbank: a distributed bank over gRPC whose branches never overdraw an account.

The public face for programs: the client, its results, and the exceptions it raises.
"""

from dbank.client import Account, BalanceChange, BankClient, RetryPolicy, TransferResult
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
    NotFound,
    RequestIdReused,
    RequestInProgress,
    Unavailable,
)
from dbank.ledger.ops import AccountType

__all__ = [
    "Aborted",
    "Account",
    "AccountExists",
    "AccountNotFound",
    "AccountType",
    "AlreadyExists",
    "BalanceChange",
    "BalanceOverflow",
    "BankClient",
    "CurrencyMismatch",
    "DbankError",
    "DeadlineExceeded",
    "FailedPrecondition",
    "InsufficientFunds",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "RequestIdReused",
    "RequestInProgress",
    "RetryPolicy",
    "TransferResult",
    "Unavailable",
]
