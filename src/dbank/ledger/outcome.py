"""The outcome of a request, stored under its idempotency key and returned to retries."""

from __future__ import annotations

from dataclasses import dataclass

from dbank.errors import DbankError, error_class_named
from dbank.ledger.version_vector import OpId


@dataclass(frozen=True, slots=True)
class Outcome:
    """A request's first definite outcome: the op it made, or the domain error it got.

    Attributes:
        fingerprint: the parameters of the request (``Command.fingerprint``).
        op_id: the op that carried the request out; None for a failure.
        balances: ``(account_id, balance)`` of each account touched, right after the op.
        error_type: the name of the ``DbankError`` class of a failure, else "".
        error_message, error_metadata: the failure's message and metadata.
    """

    fingerprint: str
    op_id: OpId | None = None
    balances: tuple[tuple[str, int], ...] = ()
    error_type: str = ""
    error_reason: str = ""
    error_message: str = ""
    error_metadata: tuple[tuple[str, str], ...] = ()

    @classmethod
    def failure(cls, fingerprint: str, error: DbankError) -> Outcome:
        return cls(
            fingerprint,
            error_type=type(error).__name__,
            error_reason=error.reason,
            error_message=error.message,
            error_metadata=tuple(sorted(error.metadata.items())),
        )

    def error(self) -> DbankError | None:
        """The stored failure as an exception, or None for a success."""
        if not self.error_type:
            return None
        cls = error_class_named(self.error_type)
        return cls(self.error_message, reason=self.error_reason, **dict(self.error_metadata))

    def balance(self, account_id: str) -> int:
        return dict(self.balances)[account_id]
