"""dbank: a distributed bank over gRPC whose branches never overdraw an account.

The public face for programs: the client, its results, and the exceptions it raises.
"""

import os

# gRPC's documented default log level, set before gRPC loads: newer gRPC cores also print
# every failed TLS handshake at INFO on standard error, which would put a line per
# attacker's attempt into a branch's log and a dump into a command's output; dbank reports
# those failures itself, once. GRPC_VERBOSITY set by the user still wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from dbank.client import (
    Account,
    AccountStatement,
    BalanceChange,
    BankClient,
    EntryKind,
    InterestPosted,
    OpId,
    RetryPolicy,
    Session,
    Transaction,
    TransactionPage,
    TransferResult,
    WriteConcern,
)
from dbank.errors import (
    Aborted,
    AccountExists,
    AccountNotFound,
    AlreadyExists,
    BalanceOverflow,
    BranchesUnreachable,
    CurrencyMismatch,
    DayNotClosed,
    DbankError,
    DeadlineExceeded,
    FailedPrecondition,
    InsufficientFunds,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ReplicationHalted,
    RequestIdReused,
    RequestInProgress,
    SessionNotCovered,
    Unauthenticated,
    Unavailable,
    WrongAccountType,
)
from dbank.ledger.ops import AccountType

__all__ = [
    "Aborted",
    "Account",
    "AccountExists",
    "AccountNotFound",
    "AccountStatement",
    "AccountType",
    "AlreadyExists",
    "BalanceChange",
    "BalanceOverflow",
    "BankClient",
    "BranchesUnreachable",
    "CurrencyMismatch",
    "DayNotClosed",
    "DbankError",
    "DeadlineExceeded",
    "EntryKind",
    "FailedPrecondition",
    "InsufficientFunds",
    "InterestPosted",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "OpId",
    "PermissionDenied",
    "ReplicationHalted",
    "RequestIdReused",
    "RequestInProgress",
    "RetryPolicy",
    "Session",
    "SessionNotCovered",
    "Transaction",
    "TransactionPage",
    "TransferResult",
    "Unauthenticated",
    "Unavailable",
    "WriteConcern",
    "WrongAccountType",
]
