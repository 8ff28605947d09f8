"""The writer's decision: does the bank's state allow a command, and which op makes it?

``plan`` is pure: it reads a state and returns the body of the op to originate at
``branch``, or raises the definite domain error the request must get. It checks exactly
what ``LedgerState.apply`` would refuse, so an op it plans always applies.
"""

from __future__ import annotations

from dbank.ledger.commands import (
    Command,
    DepositCommand,
    OpenAccountCommand,
    TransferCommand,
    WithdrawCommand,
)
from dbank.ledger.errors import (
    Aborted,
    AccountExists,
    BalanceOverflow,
    CurrencyMismatch,
    InsufficientFunds,
)
from dbank.ledger.ops import Deposit, OpBody, OpenAccount, Transfer, Withdrawal
from dbank.ledger.state import AccountRecord, LedgerState
from dbank.money import MAX_AMOUNT, currency, format_amount


class EscrowShortfall(Aborted):
    """The balance covers the debit but this branch's escrow share does not: the rest is
    held by other branches and must be granted first. Retrying is safe."""

    reason = "ESCROW_IN_FLIGHT"

    def __init__(self, account_id: str, shortfall: int) -> None:
        super().__init__(
            f"account {account_id!r} has the funds, but {shortfall} minor units of them are"
            " held by other branches; retry",
            account_id=account_id,
            shortfall=str(shortfall),
        )
        self.account_id = account_id
        self.shortfall = shortfall


def plan(state: LedgerState, command: Command, *, branch: int) -> tuple[str, OpBody]:
    """Return ``(currency, body)`` of the op that carries out ``command`` at ``branch``.

    Raises:
        AccountNotFound, AccountExists, CurrencyMismatch, InsufficientFunds,
        BalanceOverflow: the definite outcome of the request.
        EscrowShortfall: the funds exist but part of them is held by other branches.
    """
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
            _check_credit(state, account, command.amount)
            return account.currency, Deposit(command.account_id, command.amount)
        case WithdrawCommand():
            account = _account(state, command.account_id, command.currency)
            _check_debit(state, account, command.amount, branch)
            return account.currency, Withdrawal(command.account_id, command.amount)
        case TransferCommand():
            source = _account(state, command.from_account_id, command.currency)
            target = _account(state, command.to_account_id, command.currency)
            if target.currency != source.currency:
                raise CurrencyMismatch(
                    f"cannot transfer {source.currency} from {source.account_id!r}"
                    f" to {target.currency} account {target.account_id!r}",
                    account_id=target.account_id,
                )
            _check_debit(state, source, command.amount, branch)
            _check_credit(state, target, command.amount)
            body = Transfer(command.from_account_id, command.to_account_id, command.amount)
            return source.currency, body


def _account(state: LedgerState, account_id: str, currency: str) -> AccountRecord:
    account = state.account(account_id)
    if currency and currency != account.currency:
        raise CurrencyMismatch(
            f"account {account_id!r} holds {account.currency}, not {currency}",
            account_id=account_id,
        )
    return account


def _check_credit(state: LedgerState, account: AccountRecord, amount: int) -> None:
    # A branch's share never exceeds the balance, so bounding the balance bounds both.
    if state.balance(account.account_id) > MAX_AMOUNT - amount:
        raise BalanceOverflow(
            f"account {account.account_id!r} cannot hold more than {MAX_AMOUNT} minor units",
            account_id=account.account_id,
        )


def _check_debit(state: LedgerState, account: AccountRecord, amount: int, branch: int) -> None:
    balance = state.balance(account.account_id)
    if balance < amount:
        cur = currency(account.currency)
        raise InsufficientFunds(
            f"account {account.account_id!r} has {format_amount(balance, cur)} {cur.code},"
            f" {format_amount(amount, cur)} {cur.code} requested",
            account_id=account.account_id,
            balance=str(balance),
        )
    held_here = state.rights_of(account.account_id, branch)
    if held_here < amount:
        raise EscrowShortfall(account.account_id, amount - held_here)
