"""A branch credits an account at most its share of 2^63 - 1, taken from the bank's
configuration (design §2.1), so that credits at several branches can never together pass
it at any replica."""

from __future__ import annotations

import pytest
from support.past import owned_id

from dbank.branch import Branch, BranchConfig, RequestContext
from dbank.ledger import (
    AccountType,
    BalanceOverflow,
    DepositCommand,
    OpenAccountCommand,
    credit_limit,
)

LOCAL = RequestContext(wait_all=False)


async def test_a_branch_of_three_credits_an_account_at_most_its_third() -> None:
    # Peers it has no links to: it only originates, for a bank of that shape.
    config = BranchConfig(1, peers={2: "127.0.0.1:1", 3: "127.0.0.1:2"})
    limit = credit_limit(1, config.branch_ids)
    branch = await Branch.open(config)
    try:
        account = owned_id("acct", 1, config.branch_ids)
        command = OpenAccountCommand(account, AccountType.CHECKING, "USD", "o", "open")
        await branch.open_account(command, LOCAL)
        await branch.deposit(DepositCommand(account, limit - 1, "first"), LOCAL)
        with pytest.raises(BalanceOverflow, match=f"at most {limit}"):
            await branch.deposit(DepositCommand(account, 2, "past-the-limit"), LOCAL)
        await branch.deposit(DepositCommand(account, 1, "up-to-the-limit"), LOCAL)
        assert branch.account(account).balance == limit
    finally:
        await branch.close()
