"""The writer's decision: does the bank's state allow a command, and which op makes it?

``plan`` is pure: it reads a state and returns the body of the op to originate at
``branch``, or raises the definite domain error the request must get. It checks what
``LedgerState.apply`` would refuse, so an op it plans always applies here, and it keeps
the two bounds that make the op apply at every other replica too, whatever else they
apply first: a debit within this branch's escrow share, and a credit within its credit
limit (design §2.1).
"""

from __future__ import annotations

from collections.abc import Mapping

from dbank.errors import (
    Aborted,
    AccountExists,
    BalanceOverflow,
    CurrencyMismatch,
    InsufficientFunds,
)
from dbank.ledger.commands import (
    Command,
    DepositCommand,
    GrantCommand,
    InterestCommand,
    OpenAccountCommand,
    TransferCommand,
    WithdrawCommand,
)
from dbank.ledger.interest import InterestPosting, period_for, posted_already
from dbank.ledger.ops import Deposit, Grant, Interest, OpBody, OpenAccount, Transfer, Withdrawal
from dbank.ledger.state import AccountRecord, LedgerState
from dbank.money import MAX_AMOUNT, currency, format_amount


class EscrowShortfall(Aborted):
    """This branch's escrow share of the account does not cover the debit: the rest is held
    by other branches and must be granted first. Retrying is safe."""

    reason = "ESCROW_IN_FLIGHT"

    def __init__(self, account_id: str, shortfall: int) -> None:
        super().__init__(
            f"account {account_id!r}: {shortfall} minor units of the funds asked for are"
            " held by other branches; retry",
            account_id=account_id,
            shortfall=str(shortfall),
        )
        self.account_id = account_id
        self.shortfall = shortfall


class NothingToGrant(Aborted):
    """A borrowing branch asked for escrow this branch has none of to spare (not stored:
    a later round may find some)."""

    reason = "NOTHING_TO_GRANT"


class AlreadyPosted(Aborted):
    """The account's interest is posted through the day asked already: the answer is that
    posting, and nothing is stored (so the request id stays unused)."""

    reason = "ALREADY_POSTED"

    def __init__(self, posting: InterestPosting) -> None:
        super().__init__(f"interest is posted through {posting.through.isoformat()} already")
        self.posting = posting


class StaleAccrual(Aborted):
    """The interest was computed from a posting that is no longer the account's last
    (another posting committed meanwhile): compute again. Retrying is safe."""

    reason = "INTEREST_CONFLICT"


def plan(
    state: LedgerState,
    command: Command,
    *,
    branch: int,
    final: bool = True,
    reserved: Mapping[str, int] | None = None,
    credit_limit: int = MAX_AMOUNT,
) -> tuple[str, OpBody]:
    """Return ``(currency, body)`` of the op that carries out ``command`` at ``branch``.

    ``credit_limit`` is the most that this branch's own ops may add to an account, net
    (``dbank.ledger.credit_limit``); the default is that of a bank of one branch.
    ``reserved`` is the part of this branch's share of each account that is held for other
    waiting writes. ``final`` says whether every other branch has been asked for escrow: if
    not, a debit beyond this branch's share is an ``EscrowShortfall`` even when the balance
    looks too low, because this replica's view of the balance may be stale.

    Raises:
        AccountNotFound, AccountExists, CurrencyMismatch, InsufficientFunds,
        BalanceOverflow: the definite outcome of the request (``BalanceOverflow`` also
            for a credit past this branch's credit limit).
        EscrowShortfall: this branch's share does not cover the debit.
        NothingToGrant: a grant of nothing.
        WrongAccountType, InvalidArgument: interest on an account or day that has none.
        AlreadyPosted: the interest asked for is posted already.
        StaleAccrual: the interest was computed from a posting that is not the last.
    """
    debit = _Debit(state, branch, final, reserved or {})
    credit = _Credit(state, branch, credit_limit)
    match command:
        case OpenAccountCommand():
            if command.account_id in state.accounts:
                raise AccountExists(
                    f"account {command.account_id!r} exists already",
                    account_id=command.account_id,
                )
            opening = OpenAccount(command.account_id, command.type, command.currency, command.owner)
            return command.currency, opening
        case DepositCommand():
            account = _account(state, command.account_id, command.currency)
            credit.check(account, command.amount)
            return account.currency, Deposit(command.account_id, command.amount)
        case WithdrawCommand():
            account = _account(state, command.account_id, command.currency)
            debit.check(account, command.amount)
            return account.currency, Withdrawal(command.account_id, command.amount)
        case TransferCommand():
            source = _account(state, command.from_account_id, command.currency)
            # The source's funds first: a transfer it cannot cover says so whatever the
            # target, so it tells nothing about an account the caller may not see.
            debit.check(source, command.amount)
            target = state.account(command.to_account_id)
            if target.currency != source.currency:
                raise CurrencyMismatch(
                    f"cannot transfer {source.currency} from {source.account_id!r} to"
                    f" {target.account_id!r}: it holds another currency",
                    account_id=target.account_id,
                )
            credit.check(target, command.amount)
            body = Transfer(command.from_account_id, command.to_account_id, command.amount)
            return source.currency, body
        case GrantCommand():
            account = state.account(command.account_id)
            amount = min(command.shortfall, debit.spare(command.account_id))
            if amount <= 0:
                raise NothingToGrant(
                    f"no escrow of {command.account_id!r} to spare", account_id=account.account_id
                )
            return account.currency, Grant(command.account_id, amount, command.to_branch)
        case InterestCommand():
            account = state.account(command.account_id)
            return account.currency, _interest(state, account, command, credit)


def _interest(
    state: LedgerState, account: AccountRecord, command: InterestCommand, credit: _Credit
) -> Interest:
    last = state.postings.get(account.account_id)
    done = posted_already(last, command.as_of)
    if done is not None:
        raise AlreadyPosted(done)
    period = period_for(account.type, account.opened_hlc, last, command.as_of)
    accrual = command.accrual
    if accrual is None or accrual.after != period.after:
        raise StaleAccrual(
            f"account {account.account_id!r}: interest was posted meanwhile; retry",
            account_id=account.account_id,
        )
    credit.check(account, accrual.amount)
    return Interest(
        account.account_id, accrual.amount, command.as_of, command.rate, accrual.day_balance
    )


def _account(state: LedgerState, account_id: str, currency: str) -> AccountRecord:
    account = state.account(account_id)
    if currency and currency != account.currency:
        raise CurrencyMismatch(
            f"account {account_id!r} holds {account.currency}, not {currency}",
            account_id=account_id,
        )
    return account


class _Credit:
    """Checks credits against the balance's bound here and this branch's credit limit,
    which keeps it under that bound at every replica (design §2.1)."""

    def __init__(self, state: LedgerState, branch: int, limit: int) -> None:
        self._state = state
        self._branch = branch
        self._limit = limit

    def check(self, account: AccountRecord, amount: int) -> None:
        account_id = account.account_id
        # A branch's share never exceeds the balance, so bounding the balance bounds both.
        if self._state.balance(account_id) > MAX_AMOUNT - amount:
            raise BalanceOverflow(
                f"account {account_id!r} cannot hold more than {MAX_AMOUNT} minor units",
                account_id=account_id,
            )
        # A posting of no interest adds nothing, whatever the credit already is.
        if amount and self._state.credit_of(account_id, self._branch) > self._limit - amount:
            raise BalanceOverflow(
                f"account {account_id!r} cannot take {amount} more minor units at branch"
                f" {self._branch}: each branch may add at most {self._limit} to an account"
                f" (net), so that the branches together never pass {MAX_AMOUNT}",
                account_id=account_id,
            )


class _Debit:
    """Checks debits against this branch's unreserved escrow share (design §2.3)."""

    def __init__(
        self, state: LedgerState, branch: int, final: bool, reserved: Mapping[str, int]
    ) -> None:
        self._state = state
        self._branch = branch
        self._final = final
        self._reserved = reserved

    def spare(self, account_id: str) -> int:
        """This branch's share of the account that no waiting write holds."""
        held = self._state.rights_of(account_id, self._branch)
        return held - self._reserved.get(account_id, 0)

    def check(self, account: AccountRecord, amount: int) -> None:
        spare = self.spare(account.account_id)
        if spare >= amount:
            return
        balance = self._state.balance(account.account_id)
        if self._final and balance < amount:
            cur = currency(account.currency)
            raise InsufficientFunds(
                f"account {account.account_id!r} has {format_amount(balance, cur)} {cur.code},"
                f" {format_amount(amount, cur)} {cur.code} requested",
                account_id=account.account_id,
                balance=str(balance),
            )
        raise EscrowShortfall(account.account_id, amount - max(spare, 0))
