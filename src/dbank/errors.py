"""The one exception tree of dbank.

Every foreseeable failure is one of these; the gRPC edge maps each class to a status code
and a ``google.rpc.ErrorInfo`` reason in one table (``dbank._status``), and the
client maps the reason back to the same class, so callers catch ``InsufficientFunds``, not
a raw gRPC error::

    DbankError
    ├── InvalidArgument          bad input: amounts, ids, currencies, types (reason varies)
    ├── NotFound
    │   └── AccountNotFound      ACCOUNT_NOT_FOUND: no such account at this replica
    ├── AlreadyExists
    │   ├── AccountExists        ACCOUNT_EXISTS: the id is taken (with other attributes)
    │   └── RequestIdReused      REQUEST_ID_REUSED: the request id was used with other parameters
    ├── FailedPrecondition
    │   ├── InsufficientFunds    INSUFFICIENT_FUNDS: the write would overdraw the account
    │   ├── CurrencyMismatch     CURRENCY_MISMATCH: another currency than the account's
    │   ├── BalanceOverflow      BALANCE_OVERFLOW: a balance, or a branch's credits, would pass
    │   │                        2^63 - 1 or the branch's share of it
    │   └── WrongAccountType     WRONG_ACCOUNT_TYPE: interest on an account that is not savings
    ├── Aborted
    │   └── RequestInProgress    REQUEST_IN_PROGRESS: the same request id is being applied (retry)
    ├── Unavailable              UNAVAILABLE: a needed branch or the store cannot be reached (retry)
    │                            (BRANCH_UNREACHABLE: a call to another branch found no connection
    │                            to it in time, metadata "branch")
    │   ├── BranchesUnreachable  BRANCHES_UNREACHABLE: the write needs escrow from branches that
    │   │                        cannot be reached (metadata "branches")
    │   ├── DayNotClosed         DAY_NOT_CLOSED: interest for a day that some branches may still
    │   │                        write ops on (metadata "branches")
    │   ├── RequestBranchUnreachable  REQUEST_BRANCH_UNREACHABLE: a retry's request id belongs
    │   │                        to a branch that cannot be reached (metadata "branch")
    │   └── SessionNotCovered    SESSION_NOT_COVERED: this replica has not yet seen the state the
    │                            session token names (metadata "missing")
    ├── DeadlineExceeded         DEADLINE_EXCEEDED: no answer within the caller's deadline (retry)
    ├── Unauthenticated          the caller's credentials are missing or not valid (reason says
    │                            which: TOKEN_MISSING, TOKEN_EXPIRED, TOKEN_BAD_SIGNATURE, ...)
    ├── PermissionDenied         the caller may not do this (reason: PERMISSION_DENIED for a
    │                            role or account, BRANCH_IDENTITY_MISMATCH for a branch that
    │                            claims another's id, NOT_A_BRANCH for a caller without a
    │                            branch certificate on the replication service)
    └── Internal                 INTERNAL: a bug; never raised for a foreseeable case
        ├── InvariantViolation   INVARIANT_VIOLATION: an op that would break the ledger's
        │                        invariants (fail-stop: it is never applied)
        └── ReplicationHalted    REPLICATION_HALTED: ops of an origin are refused after one
                                 broke an invariant or reused an op id (fail-stop)

``Aborted`` and ``Unavailable`` are transient: retrying the same request id is safe and is
what the client library does. All other outcomes are definite and are stored as the
request id's outcome.
"""

from __future__ import annotations

from typing import ClassVar

SHOWN_CHARS = 40
"""The most of a caller's value that an error message repeats."""


def shown(value: str) -> str:
    """``value`` as an error message quotes it: its repr, cut to ``SHOWN_CHARS``
    characters, so that an error never carries a caller's megabyte back."""
    if len(value) <= SHOWN_CHARS:
        return repr(value)
    return f"{value[:SHOWN_CHARS]!r}... ({len(value)} characters)"


class DbankError(Exception):
    """Base of every dbank error: a message for people, a reason code for programs."""

    reason: ClassVar[str] = "DBANK_ERROR"
    transient: ClassVar[bool] = False

    def __init__(self, message: str, *, reason: str | None = None, **metadata: str) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason  # type: ignore[misc]
        self.metadata: dict[str, str] = {k: str(v) for k, v in metadata.items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, reason={self.reason!r})"


class InvalidArgument(DbankError):
    """A request field is malformed or out of range; ``metadata["field"]`` names it.

    Reasons: INVALID_ARGUMENT, INVALID_AMOUNT, TOO_MANY_DECIMALS, UNKNOWN_CURRENCY,
    INVALID_ACCOUNT_ID, INVALID_OWNER, INVALID_ACCOUNT_TYPE, INVALID_REQUEST_ID, SAME_ACCOUNT,
    TOO_MANY_ACCOUNTS, INVALID_RATE, INVALID_AS_OF, INVALID_PAGE_SIZE, INVALID_PAGE_TOKEN,
    INVALID_DATE_RANGE, RANGE_TOO_LARGE, INVALID_WRITE_CONCERN, UNKNOWN_BRANCH (a
    ``request_branch`` or a session naming a branch that is not the bank's); at the edge,
    before any of those, MALFORMED_REQUEST (bytes that are not the method's message: no
    field named) and FIELD_TOO_LONG (a string past the bound, metadata ``max_length``);
    from other branches, MALFORMED_OP (bytes that are not a canonical op).
    """

    reason = "INVALID_ARGUMENT"


class NotFound(DbankError):
    """The named resource does not exist."""

    reason = "NOT_FOUND"


class AccountNotFound(NotFound):
    """No account has this id at this replica."""

    reason = "ACCOUNT_NOT_FOUND"


class AlreadyExists(DbankError):
    """The thing to create exists already."""

    reason = "ALREADY_EXISTS"


class AccountExists(AlreadyExists):
    """The account id is taken: opening it again (by another request) is refused."""

    reason = "ACCOUNT_EXISTS"


class RequestIdReused(AlreadyExists):
    """The request id was first used for a request with other parameters."""

    reason = "REQUEST_ID_REUSED"


class FailedPrecondition(DbankError):
    """The request is well formed but the state of the bank does not allow it."""

    reason = "FAILED_PRECONDITION"


class InsufficientFunds(FailedPrecondition):
    """The write would take the account's balance below zero."""

    reason = "INSUFFICIENT_FUNDS"


class CurrencyMismatch(FailedPrecondition):
    """The currency named by the request, or the other account's, is not the account's."""

    reason = "CURRENCY_MISMATCH"


class BalanceOverflow(FailedPrecondition):
    """The credit would push the balance past 2^63 - 1 minor units, or what this branch has
    added to the account, net, past the branch's credit limit (its share of 2^63 - 1, so
    that the credits of all branches together never pass it, design §2.1)."""

    reason = "BALANCE_OVERFLOW"


class WrongAccountType(FailedPrecondition):
    """The request needs another type of account: interest applies to savings only."""

    reason = "WRONG_ACCOUNT_TYPE"


class Aborted(DbankError):
    """A concurrency conflict; the same request may be retried."""

    reason = "ABORTED"
    transient = True


class RequestInProgress(Aborted):
    """Another attempt with the same request id is being applied right now."""

    reason = "REQUEST_IN_PROGRESS"


class Unavailable(DbankError):
    """A branch or the store needed for the request cannot be reached; retry later."""

    reason = "UNAVAILABLE"
    transient = True


class BranchesUnreachable(Unavailable):
    """The write needs escrow that may be held by branches that cannot be reached now;
    ``metadata["branches"]`` lists them, comma-separated."""

    reason = "BRANCHES_UNREACHABLE"


class SessionNotCovered(Unavailable):
    """The replica did not reach the state named by the request's session token in time;
    ``metadata["missing"]`` lists the origin branches it lacks ops of."""

    reason = "SESSION_NOT_COVERED"


class DayNotClosed(Unavailable):
    """Interest for a day that is not closed yet: this branch has not seen, from every
    branch, an op later than the end of that day, so ops of that day may still arrive;
    ``metadata["branches"]`` lists the branches not yet seen past it, comma-separated."""

    reason = "DAY_NOT_CLOSED"


class RequestBranchUnreachable(Unavailable):
    """A retry whose request id belongs to another branch (the one it was first sent to),
    which cannot be reached, and whose op this replica has not applied: only that branch
    may decide it. ``metadata["branch"]`` names it."""

    reason = "REQUEST_BRANCH_UNREACHABLE"


class DeadlineExceeded(DbankError):
    """The request did not finish within its deadline; it may or may not have been applied,
    so retry it with the same request id."""

    reason = "DEADLINE_EXCEEDED"
    transient = True


class Unauthenticated(DbankError):
    """The call carries no credentials, or credentials this branch cannot verify: a token
    that is missing, malformed, expired, not yet valid, signed by an unknown key or by
    another key than it names. The reason says which; the same call with a valid token
    may succeed."""

    reason = "UNAUTHENTICATED"


class PermissionDenied(DbankError):
    """The caller is who it says, but may not do this: its role does not allow the action,
    the account is not its own, or a branch claims another branch's identity. The refusal
    never says whether an account the caller may not see exists."""

    reason = "PERMISSION_DENIED"


class Internal(DbankError):
    """A defect in dbank. Never raised for a foreseeable mistake."""

    reason = "INTERNAL"


class InvariantViolation(Internal):
    """An op that would break an invariant of the ledger: an escrow share or balance below
    zero or past 2^63 - 1, a net credit beyond +-(2^63 - 1), an op out of causal order, an
    unknown account. Replicas refuse such an op whole and stop applying from its origin:
    they never repair silently."""

    reason = "INVARIANT_VIOLATION"


class ReplicationHalted(Internal):
    """Ops from an origin are refused because one of them broke an invariant or reused an
    op id with other content. Fail-stop: an operator must look; nothing is repaired
    silently."""

    reason = "REPLICATION_HALTED"


ERROR_CLASSES: tuple[type[DbankError], ...] = (
    InvalidArgument,
    NotFound,
    AccountNotFound,
    AlreadyExists,
    AccountExists,
    RequestIdReused,
    FailedPrecondition,
    InsufficientFunds,
    CurrencyMismatch,
    BalanceOverflow,
    WrongAccountType,
    Aborted,
    RequestInProgress,
    Unavailable,
    BranchesUnreachable,
    SessionNotCovered,
    DayNotClosed,
    RequestBranchUnreachable,
    DeadlineExceeded,
    Unauthenticated,
    PermissionDenied,
    Internal,
    InvariantViolation,
    ReplicationHalted,
)


_BY_NAME = {cls.__name__: cls for cls in ERROR_CLASSES}
_BY_REASON = {cls.reason: cls for cls in ERROR_CLASSES}


def error_class_named(name: str) -> type[DbankError]:
    """Return the error class called ``name`` (as stored with a request's outcome)."""
    return _BY_NAME.get(name, Internal)


def error_class_for_reason(reason: str, default: type[DbankError]) -> type[DbankError]:
    """Return the class whose reason is ``reason``, or ``default``: InvalidArgument has
    several reasons, and a newer server may send reasons this version does not know."""
    return _BY_REASON.get(reason, default)
