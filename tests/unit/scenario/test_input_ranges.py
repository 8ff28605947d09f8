"""Numbers a scenario file may hold only within what the bank carries: ids within
uint32 (branch ids are uint32 on the wire), money and balances within int64, and no deposit
that the bank would refuse mid-run with ``BalanceOverflow``. Each is one ``ScenarioError``
naming the entry, raised while the file is read, before anything starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbank.ledger import credit_limit
from dbank.money import MAX_AMOUNT
from dbank.scenario import Interface, Scenario, ScenarioError, load_scenario, run_model

UINT32_MAX = 2**32 - 1


def branch(branch_id: int = 1, balance: int = 400) -> dict[str, object]:
    return {"id": branch_id, "type": "branch", "balance": balance}


def customer(*events: object, cid: int = 1) -> dict[str, object]:
    return {"id": cid, "type": "customer", "events": list(events)}


def requests(*events: object, cid: int = 1) -> dict[str, object]:
    return {"id": cid, "type": "customer", "customer-requests": list(events)}


def deposit(money: int, **more: object) -> dict[str, object]:
    return {"id": 1, "interface": "deposit", "money": money, **more}


def withdraw(money: int, **more: object) -> dict[str, object]:
    return {"id": 2, "interface": "withdraw", "money": money, **more}


QUERY = {"id": 3, "interface": "query"}


def load(tmp_path: Path, *entries: object) -> Scenario:
    path = tmp_path / "input.json"
    path.write_text(json.dumps(list(entries)))
    return load_scenario(path)


def refused(tmp_path: Path, *entries: object) -> ScenarioError:
    with pytest.raises(ScenarioError) as caught:
        load(tmp_path, *entries)
    assert "\n" not in str(caught.value)
    return caught.value


# Exactly as the issue measured them ----------------------------------------------------------


def test_a_deposit_of_99999999999999999999999(tmp_path: Path) -> None:
    error = refused(tmp_path, customer(deposit(99999999999999999999999)), branch())
    assert error.where == "$[0].events[0].money"
    assert error.problem == (
        "deposit moves at most 9223372036854775807 (int64), not 99999999999999999999999"
    )


def test_a_branch_id_of_2_to_the_40(tmp_path: Path) -> None:
    error = refused(tmp_path, branch(2**40), customer(QUERY, cid=2**40))
    assert error.where == "$[0].id"
    assert error.problem == (
        f"an id must be at most {UINT32_MAX} (the bank's uint32 range), not {2**40}"
    )


def test_a_branch_balance_of_10_to_the_30(tmp_path: Path) -> None:
    error = refused(tmp_path, customer(QUERY), branch(balance=10**30))
    assert error.where == "$[1].balance"
    assert error.problem == (
        f"the opening balance must be at most {MAX_AMOUNT} (the bank's int64 range), not {10**30}"
    )


# Every id member ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "where"),
    [
        ((branch(), customer(QUERY, cid=2**32)), "$[1].id"),
        ((branch(), customer({"id": 2**32, "interface": "query"})), "$[1].events[0].id"),
        (
            (branch(), requests({"customer-request-id": 2**32, "interface": "query"})),
            "$[1]['customer-requests'][0]['customer-request-id']",
        ),
        ((branch(), customer({"interface": "query", "dest": 2**32}, cid=7)), "$[1].events[0].dest"),
        (
            (branch(), customer({"interface": "query", "branch": 2**32}, cid=7)),
            "$[1].events[0].branch",
        ),
    ],
)
def test_every_id_is_within_uint32(tmp_path: Path, entries: tuple[object, ...], where: str) -> None:
    error = refused(tmp_path, *entries)
    assert error.where == where
    assert f"at most {UINT32_MAX}" in error.problem


def test_the_largest_ids_and_amounts_are_taken(tmp_path: Path) -> None:
    scenario = load(
        tmp_path,
        branch(UINT32_MAX, balance=MAX_AMOUNT),
        customer(withdraw(MAX_AMOUNT, id=UINT32_MAX), cid=UINT32_MAX),
    )
    assert scenario.branches == (UINT32_MAX,)
    assert scenario.opening_balance == MAX_AMOUNT


def test_a_withdraw_beyond_int64_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, branch(), customer(withdraw(2**63)))
    assert error.where == "$[1].events[0].money"
    assert error.problem.startswith("withdraw moves at most 9223372036854775807")


def test_a_query_placeholder_is_not_an_amount(tmp_path: Path) -> None:
    # P1 classic queries carry a placeholder "money" that is read and ignored.
    load(tmp_path, branch(), customer({"id": 1, "interface": "query", "money": 10**30}))


# Overflow over the whole run ----------------------------------------------------------------


def test_deposits_that_together_pass_int64_name_the_first_that_would(tmp_path: Path) -> None:
    error = refused(
        tmp_path,
        branch(balance=400),
        customer(deposit(MAX_AMOUNT - 401), deposit(1), deposit(1)),
    )
    assert error.where == "$[1].events[2].money"
    assert "past the most an account holds" in error.problem


def test_the_opening_balance_counts_once_however_many_branches_list_it(tmp_path: Path) -> None:
    # Every branch entry lists the same opening balance of the one shared account: the
    # branches share it out, they do not each add it.
    half = MAX_AMOUNT // 2
    scenario = load(tmp_path, branch(1, half), branch(2, half), customer(QUERY))
    assert scenario.opening_balance == half


def test_a_withdraw_in_between_makes_room(tmp_path: Path) -> None:
    load(
        tmp_path,
        branch(1, 0),
        customer(deposit(MAX_AMOUNT), withdraw(MAX_AMOUNT), deposit(MAX_AMOUNT)),
    )


def test_a_withdraw_that_fails_makes_no_room(tmp_path: Path) -> None:
    error = refused(
        tmp_path,
        branch(1, 0),
        customer(deposit(MAX_AMOUNT), withdraw(MAX_AMOUNT), withdraw(1), deposit(MAX_AMOUNT)),
        customer(deposit(1)),
    )
    # The second withdraw fails (the balance is 0 by then), so it frees nothing.
    assert error.where == "$[2].events[0].money"


def test_a_branch_may_not_add_more_than_its_credit_limit(tmp_path: Path) -> None:
    # A deposit at branch 1, withdrawn at branch 2: the balance is back to 0, but branch 1
    # has added half of int64, net, which is all its credit limit allows.
    limit = credit_limit(1, [1, 2])
    error = refused(
        tmp_path,
        branch(1, 0),
        branch(2, 0),
        customer(deposit(limit)),
        customer(withdraw(limit), cid=2),
        customer(deposit(10)),
    )
    assert error.where == "$[4].events[0].money"
    assert f"branch 1 added to the account, net, to {limit + 10}" in error.problem


def test_the_opening_share_counts_toward_the_credit_limit(tmp_path: Path) -> None:
    # Branches 1 and 2 open with 2^61 each; branch 2 withdraws everything. Branch 1 may then
    # add what its credit limit (2^62) leaves above its opening share, and no more.
    limit = credit_limit(1, [1, 2])
    assert limit == 2**62
    opening = (branch(1, 2**62), branch(2, 2**62), customer(withdraw(2**62), cid=2))
    load(tmp_path, *opening, customer(deposit(2**61)))
    error = refused(tmp_path, *opening, customer(deposit(2**61 + 1)))
    assert error.where == "$[3].events[0].money"
    assert f"past its share of int64 ({limit})" in error.problem


def test_a_scenario_that_fits_runs_as_the_model_says(tmp_path: Path) -> None:
    scenario = load(
        tmp_path, branch(1, 5), customer(deposit(MAX_AMOUNT - 5), QUERY, withdraw(MAX_AMOUNT))
    )
    results = run_model(scenario)
    assert [r.event.interface for r in results] == [
        Interface.DEPOSIT,
        Interface.QUERY,
        Interface.WITHDRAW,
    ]
    assert results[1].balance == MAX_AMOUNT
