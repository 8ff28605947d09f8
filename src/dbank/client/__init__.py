"""The typed Python client of dbank: dataclass results, dbank exceptions, safe retries."""

from dbank.client._call import RetryPolicy
from dbank.client._client import BankClient, new_request_id
from dbank.client._types import Account, BalanceChange, TransferResult

__all__ = [
    "Account",
    "BalanceChange",
    "BankClient",
    "RetryPolicy",
    "TransferResult",
    "new_request_id",
]
