"""Reading a scenario file: bytes, JSON, variant, typed entries, one checked ``Scenario``.

Each step stops at the first problem with one ``ScenarioError`` naming the file and the
place, in this order: the file cannot be read or is empty; the text is not JSON (line and
column); the document is not a list of entries; an entry's shape or types are wrong for
the file's variant (see ``_detect`` and ``_schema``); the branches are missing, listed
twice or disagree on the opening balance; a deposit or withdraw has no positive money, or
more than 2^63 - 1; an event runs at a branch the file does not list; a deposit would take
the account past what the bank can hold (``_check_credits``).

A query's ``money`` (P1 classic's placeholder; tolerated in P2 and P3) must be a whole
number and is otherwise ignored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from dbank.ledger import escrow_shares
from dbank.money import MAX_AMOUNT
from dbank.scenario._detect import detect_variant, reason
from dbank.scenario._errors import ScenarioError, json_path, show_value
from dbank.scenario._messages import scenario_error
from dbank.scenario._scenario import Customer, Event, Interface, Scenario, Variant
from dbank.scenario._schema import CUSTOMER_MODELS, BranchEntry, CustomerEntry, EventEntry

__all__ = ["load_scenario"]

_Location = tuple[int | str, ...]


def load_scenario(path: Path) -> Scenario:
    """Read, check and normalise the scenario file at ``path``.

    Returns:
        The scenario, in any input variant (``Scenario.variant`` says which). Reading has
        no other effect; nothing is started.

    Raises:
        ScenarioError: the file cannot be read, is not JSON, or is not a valid scenario;
            its message is one line naming the file and the place of the first problem.
    """
    file = str(path)
    entries = _top_level(file, _parse(file, path))
    variant = detect_variant(entries)
    branches: list[tuple[int, BranchEntry]] = []
    customers: list[tuple[int, CustomerEntry]] = []
    for index, raw in enumerate(entries):
        entry = _validate(file, index, raw, variant)
        if isinstance(entry, BranchEntry):
            branches.append((index, entry))
        else:
            customers.append((index, entry))
    opening_balance = _opening_balance(file, branches)
    known = frozenset(branch.id for _, branch in branches)
    scenario = Scenario(
        variant=variant,
        opening_balance=opening_balance,
        branches=tuple(branch.id for _, branch in branches),
        customers=tuple(_customer(file, index, entry, known) for index, entry in customers),
    )
    places = [
        (index, entry.EVENTS_FIELD, position)
        for index, entry in customers
        for position in range(len(entry.events))
    ]
    _check_credits(file, scenario, places)
    return scenario


def _parse(file: str, path: Path) -> object:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(file, "$", f"cannot read the file: {exc.strerror}") from exc
    if not data.strip():
        raise ScenarioError(file, "$", "the file is empty")
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ScenarioError(file, where, f"malformed JSON: {exc.msg}") from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError(file, "$", f"not UTF-8 text: {exc.reason}") from exc
    except RecursionError:
        raise ScenarioError(file, "$", "malformed JSON: nested too deeply") from None


def _top_level(file: str, document: object) -> list[object]:
    if not isinstance(document, list):
        problem = f"expected a list of customer and branch entries, not {show_value(document)}"
        raise ScenarioError(file, "$", problem)
    return document


def _validate(file: str, index: int, raw: object, variant: Variant) -> BranchEntry | CustomerEntry:
    if not isinstance(raw, dict):
        problem = f'expected an entry with "type" "customer" or "branch", not {show_value(raw)}'
        raise ScenarioError(file, json_path((index,)), problem)
    kind = raw.get("type")
    model: type[BranchEntry | CustomerEntry]
    if kind == "branch":
        model = BranchEntry
    elif kind == "customer":
        model = CUSTOMER_MODELS[variant]
    else:
        problem = (
            "required member is missing"
            if "type" not in raw
            else f"unknown entry type {show_value(kind)}"
        )
        where = json_path((index, "type"))
        raise ScenarioError(file, where, f'{problem}: expected "customer" or "branch"')
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise scenario_error(file, (index,), exc, reason(variant)) from None


def _opening_balance(file: str, branches: Sequence[tuple[int, BranchEntry]]) -> int:
    """The balance every branch opens with, once they are known to be distinct and agree."""
    if not branches:
        raise ScenarioError(file, "$", 'the file lists no branches (entries of "type" "branch")')
    first_at: dict[int, int] = {}
    for index, branch in branches:
        if branch.id in first_at:
            earlier = json_path((first_at[branch.id],))
            problem = f"branch {branch.id} is listed twice (first at {earlier})"
            raise ScenarioError(file, json_path((index, "id")), problem)
        first_at[branch.id] = index
    first_index, first = branches[0]
    for index, branch in branches:
        if branch.balance != first.balance:
            problem = (
                f"branch {branch.id} opens with {branch.balance} but branch {first.id} "
                f"(at {json_path((first_index,))}) with {first.balance}: "
                "all branches must list the same opening balance"
            )
            raise ScenarioError(file, json_path((index, "balance")), problem)
    return first.balance


def _customer(file: str, index: int, entry: CustomerEntry, known: frozenset[int]) -> Customer:
    if entry.ID_IS_BRANCH and entry.id not in known:
        problem = f"customer {entry.id} talks to branch {entry.id}, which the file does not list"
        raise ScenarioError(file, json_path((index, "id")), problem)
    events = tuple(
        _event(file, (index, entry.EVENTS_FIELD, position), event, entry.id, known)
        for position, event in enumerate(entry.events)
    )
    return Customer(id=entry.id, events=events)


def _event(
    file: str, location: _Location, event: EventEntry, customer_id: int, known: frozenset[int]
) -> Event:
    interface = Interface(event.interface)
    money = 0
    if interface is not Interface.QUERY:
        if event.money is None or event.money <= 0:
            problem = f"{interface} needs a positive whole amount of money"
            if event.money is not None:
                problem += f", not {event.money}"
            raise ScenarioError(file, json_path((*location, "money")), problem)
        if event.money > MAX_AMOUNT:
            problem = f"{interface} moves at most {MAX_AMOUNT} (int64), not {event.money}"
            raise ScenarioError(file, json_path((*location, "money")), problem)
        money = event.money
    if event.named_branch is None:
        branch = customer_id  # checked with its customer entry
    else:
        member, branch = event.named_branch
        if branch not in known:
            problem = f"branch {branch} is not one of the file's branches"
            raise ScenarioError(file, json_path((*location, member)), problem)
    return Event(interface=interface, money=money, branch=branch, id=event.event_id)


def _check_credits(file: str, scenario: Scenario, places: Sequence[_Location]) -> None:
    """Refuse a deposit that the bank would refuse with ``BalanceOverflow`` mid-run.

    Events run one after another, so the balance before each is the reference model's:
    the opening balance plus the deposits so far, less the withdraws that succeeded. A
    deposit may take neither the balance past 2^63 - 1 nor its branch's net credit (the
    branch's genesis share, plus its deposits, less its withdraws) past the branch's
    credit limit (``dbank.ledger.credit_limit``, its share of 2^63 - 1).
    """
    branches = scenario.branches
    limits = escrow_shares(MAX_AMOUNT, branches)  # every branch's credit_limit, at once
    credits = escrow_shares(scenario.opening_balance, branches)
    balance = scenario.opening_balance
    for location, event in zip(places, scenario.events, strict=True):
        money, branch = event.money, event.branch
        if event.interface is Interface.DEPOSIT:
            if balance > MAX_AMOUNT - money:
                problem = (
                    f"this deposit would take the balance to {balance + money}, past the"
                    f" most an account holds ({MAX_AMOUNT}, int64)"
                )
                raise ScenarioError(file, json_path((*location, "money")), problem)
            if credits[branch] > limits[branch] - money:
                problem = (
                    f"this deposit would take what branch {branch} added to the account, net,"
                    f" to {credits[branch] + money}, past its share of int64 ({limits[branch]})"
                )
                raise ScenarioError(file, json_path((*location, "money")), problem)
            balance += money
            credits[branch] += money
        elif event.interface is Interface.WITHDRAW and money <= balance:
            balance -= money
            credits[branch] -= money
