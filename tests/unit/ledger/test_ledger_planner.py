"""plan(): the op a command makes at a branch, or the definite refusal it deserves."""

from __future__ import annotations

import pytest
from ledger_support import Ticker, open_account, originate, snapshot

from dbank.ledger import (
    AccountExists,
    AccountNotFound,
    AccountType,
    BalanceOverflow,
    Command,
    CurrencyMismatch,
    DbankError,
    Deposit,
    DepositCommand,
    EscrowShortfall,
    InsufficientFunds,
    LedgerState,
    OpenAccount,
    OpenAccountCommand,
    Transfer,
    TransferCommand,
    Withdrawal,
    WithdrawCommand,
    plan,
)
from dbank.money import MAX_AMOUNT


@pytest.fixture
def state() -> LedgerState:
    """``usd`` holds 10.00 USD at branch 1 and 5.00 at branch 2; ``usd2`` is empty; ``yen``
    holds 500 JPY at branch 1; ``kwd`` holds 1.234 KWD at branch 1."""
    tick = Ticker()
    s = LedgerState()
    for account, cur in (("usd", "USD"), ("usd2", "USD"), ("yen", "JPY"), ("kwd", "KWD")):
        open_account(s, 1, account, cur, tick())
    originate(s, 1, "USD", Deposit("usd", 1_000), tick())
    originate(s, 2, "USD", Deposit("usd", 500), tick())
    originate(s, 1, "JPY", Deposit("yen", 500), tick())
    originate(s, 1, "KWD", Deposit("kwd", 1_234), tick())
    return s


@pytest.mark.parametrize(
    ("command", "currency", "body"),
    [
        (
            OpenAccountCommand("new", AccountType.SAVINGS, "JPY", "bob", "r"),
            "JPY",
            OpenAccount("new", AccountType.SAVINGS, "JPY", "bob"),
        ),
        (DepositCommand("usd", 5, "r"), "USD", Deposit("usd", 5)),
        (DepositCommand("yen", 5, "r", "JPY"), "JPY", Deposit("yen", 5)),
        (WithdrawCommand("usd", 1_000, "r"), "USD", Withdrawal("usd", 1_000)),
        (WithdrawCommand("yen", 500, "r", "JPY"), "JPY", Withdrawal("yen", 500)),
        (TransferCommand("usd", "usd2", 1_000, "r"), "USD", Transfer("usd", "usd2", 1_000)),
        (TransferCommand("usd", "usd2", 1, "r", "USD"), "USD", Transfer("usd", "usd2", 1)),
        (
            DepositCommand("usd", MAX_AMOUNT - 1_500, "r"),
            "USD",
            Deposit("usd", MAX_AMOUNT - 1_500),
        ),
    ],
)
def test_allowed_commands_plan_their_op(
    state: LedgerState, command: Command, currency: str, body: object
) -> None:
    before = snapshot(state)
    assert plan(state, command, branch=1) == (currency, body)
    assert snapshot(state) == before  # plan is pure


@pytest.mark.parametrize(
    ("command", "error", "metadata"),
    [
        (
            OpenAccountCommand("usd", AccountType.CHECKING, "USD", "x", "r"),
            AccountExists,
            {"account_id": "usd"},
        ),
        (DepositCommand("ghost", 1, "r"), AccountNotFound, {"account_id": "ghost"}),
        (WithdrawCommand("ghost", 1, "r"), AccountNotFound, {"account_id": "ghost"}),
        (TransferCommand("ghost", "usd", 1, "r"), AccountNotFound, {"account_id": "ghost"}),
        (TransferCommand("usd", "ghost", 1, "r"), AccountNotFound, {"account_id": "ghost"}),
        (DepositCommand("usd", 1, "r", "JPY"), CurrencyMismatch, {"account_id": "usd"}),
        (WithdrawCommand("yen", 1, "r", "USD"), CurrencyMismatch, {"account_id": "yen"}),
        (TransferCommand("usd", "yen", 1, "r"), CurrencyMismatch, {"account_id": "yen"}),
        (TransferCommand("usd", "usd2", 1, "r", "EUR"), CurrencyMismatch, {"account_id": "usd"}),
        (
            WithdrawCommand("usd", 1_501, "r"),
            InsufficientFunds,
            {"account_id": "usd", "balance": "1500"},
        ),
        (
            WithdrawCommand("usd2", 1, "r"),
            InsufficientFunds,
            {"account_id": "usd2", "balance": "0"},
        ),
        (
            TransferCommand("usd", "usd2", 1_501, "r"),
            InsufficientFunds,
            {"account_id": "usd", "balance": "1500"},
        ),
        (DepositCommand("usd", MAX_AMOUNT - 1_499, "r"), BalanceOverflow, {"account_id": "usd"}),
        (DepositCommand("yen", MAX_AMOUNT, "r"), BalanceOverflow, {"account_id": "yen"}),
        # The balance (1500) covers it, but branch 1 holds only 1000 of it.
        (
            WithdrawCommand("usd", 1_001, "r"),
            EscrowShortfall,
            {"account_id": "usd", "shortfall": "1"},
        ),
        (
            TransferCommand("usd", "usd2", 1_500, "r"),
            EscrowShortfall,
            {"account_id": "usd", "shortfall": "500"},
        ),
    ],
)
def test_refused_commands(
    state: LedgerState, command: Command, error: type[DbankError], metadata: dict[str, str]
) -> None:
    before = snapshot(state)
    with pytest.raises(error) as info:
        plan(state, command, branch=1)
    assert type(info.value) is error
    assert info.value.metadata == metadata
    assert snapshot(state) == before


def test_escrow_is_per_branch(state: LedgerState) -> None:
    assert plan(state, WithdrawCommand("usd", 500, "r"), branch=2)[1] == Withdrawal("usd", 500)
    with pytest.raises(EscrowShortfall) as info:
        plan(state, WithdrawCommand("usd", 501, "r"), branch=2)
    assert info.value.shortfall == 1
    assert info.value.transient
    with pytest.raises(EscrowShortfall) as info:
        plan(state, WithdrawCommand("usd", 1, "r"), branch=3)
    assert info.value.shortfall == 1


def test_insufficient_funds_message_uses_the_currency_exponent(state: LedgerState) -> None:
    with pytest.raises(InsufficientFunds) as info:
        plan(state, WithdrawCommand("kwd", 2_000, "r"), branch=1)
    assert "1.234 KWD" in info.value.message
    assert "2.000" in info.value.message
    with pytest.raises(InsufficientFunds) as info:
        plan(state, WithdrawCommand("yen", 501, "r"), branch=1)
    assert "500 JPY" in info.value.message


def test_transfer_into_a_full_account_overflows(state: LedgerState) -> None:
    originate(state, 1, "USD", Deposit("usd2", MAX_AMOUNT), 10**9)
    with pytest.raises(BalanceOverflow) as info:
        plan(state, TransferCommand("usd", "usd2", 1, "r"), branch=1)
    assert info.value.metadata == {"account_id": "usd2"}
    # The other way round is fine.
    body = plan(state, TransferCommand("usd2", "usd", MAX_AMOUNT - 1_500, "r"), branch=1)[1]
    assert body == Transfer("usd2", "usd", MAX_AMOUNT - 1_500)
