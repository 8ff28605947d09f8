"""The typed Python client of dbank: dataclass results, dbank exceptions, safe retries."""

from dbank.client._call import RetryPolicy
from dbank.client._client import BankClient, WriteConcern, new_request_id
from dbank.client._session import Session
from dbank.client._types import (
    Account,
    AccountStatement,
    BalanceChange,
    BatchEntry,
    BatchOutcome,
    DepositEntry,
    InterestPosted,
    Transaction,
    TransactionPage,
    TransferEntry,
    TransferResult,
    WithdrawEntry,
)
from dbank.ledger import EntryKind, OpId

__all__ = [
    "Account",
    "AccountStatement",
    "BalanceChange",
    "BankClient",
    "BatchEntry",
    "BatchOutcome",
    "DepositEntry",
    "EntryKind",
    "InterestPosted",
    "OpId",
    "RetryPolicy",
    "Session",
    "Transaction",
    "TransactionPage",
    "TransferEntry",
    "TransferResult",
    "WithdrawEntry",
    "WriteConcern",
    "new_request_id",
]
