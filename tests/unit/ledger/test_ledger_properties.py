"""Properties of planning and applying: random command sequences at one branch against a
model, and ops originated at several branches applied in random causal orders.

Amounts are drawn with the state in view (the balance, one more than it, the headroom to
2^63 - 1, ...) so that the boundaries are hit often, not only by luck.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_support import (
    Ticker,
    apply_all,
    check_invariants,
    open_account,
    originate,
    snapshot,
    totals_by_currency,
)

from dbank.ledger import (
    AccountExists,
    AccountNotFound,
    AccountType,
    Accrual,
    BalanceOverflow,
    Command,
    CurrencyMismatch,
    DbankError,
    Deposit,
    DepositCommand,
    EscrowShortfall,
    Genesis,
    Grant,
    InsufficientFunds,
    Interest,
    InterestCommand,
    LedgerState,
    Op,
    OpenAccountCommand,
    Transfer,
    TransferCommand,
    Withdrawal,
    WithdrawCommand,
    credit_limit,
    genesis_op,
    plan,
)
from dbank.ledger.clock import hlc_day
from dbank.ledger.ownership import owner_branch
from dbank.money import MAX_AMOUNT

ACCOUNTS = ("a", "b", "c", "d")
CURRENCIES = ("USD", "JPY")

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

account_ids = st.sampled_from(ACCOUNTS)
account_pairs = st.permutations(ACCOUNTS).map(lambda p: (p[0], p[1]))
# Mostly unnamed, so that most commands get past the currency check.
named_currency = st.sampled_from(("", "", "", *CURRENCIES))
# Mostly USD, so that most transfers are between accounts of one currency.
account_currency = st.sampled_from(("USD", "USD", "JPY"))


def amounts_near(*marks: int, cap: int = MAX_AMOUNT) -> st.SearchStrategy[int]:
    """Amounts in [1, cap]: small ones, any, and each mark, one off either side of it."""
    exact = sorted({m + d for m in marks for d in (-1, 0, 1) if 1 <= m + d <= cap})
    options = [st.integers(1, min(1_000, cap)), st.integers(1, cap)]
    if exact:
        options += [st.sampled_from(exact)] * 2
    return st.one_of(options)


def open_command(account_id: str, cur: str) -> OpenAccountCommand:
    return OpenAccountCommand(account_id, AccountType.SAVINGS, cur, "owner", "r")


# Opens three of the four accounts first; the fourth may be opened later, or never.
opening_commands = st.tuples(
    *(st.builds(open_command, st.just(a), account_currency) for a in "abc")
)


class Model:
    """What the bank should do, in plain dicts: account currency and balance."""

    def __init__(self) -> None:
        self.currency: dict[str, str] = {}
        self.balance: dict[str, int] = {}

    def _mismatch(self, account_id: str, named: str) -> bool:
        return bool(named) and named != self.currency[account_id]

    def violations(self, command: Command) -> set[type[DbankError]]:
        """Every refusal ``command`` deserves; empty if it must succeed."""
        match command:
            case OpenAccountCommand():
                return {AccountExists} if command.account_id in self.currency else set()
            case TransferCommand():
                return self._transfer_violations(command)
            case DepositCommand():
                found = self._lookup_violations(command.account_id, command.currency)
                if not found and self.balance[command.account_id] + command.amount > MAX_AMOUNT:
                    found.add(BalanceOverflow)
                return found
            case WithdrawCommand():
                found = self._lookup_violations(command.account_id, command.currency)
                if not found and self.balance[command.account_id] < command.amount:
                    found.add(InsufficientFunds)
                return found

    def _lookup_violations(self, account_id: str, named: str) -> set[type[DbankError]]:
        """AccountNotFound, or CurrencyMismatch, or nothing."""
        if account_id not in self.currency:
            return {AccountNotFound}
        return {CurrencyMismatch} if self._mismatch(account_id, named) else set()

    def _transfer_violations(self, command: TransferCommand) -> set[type[DbankError]]:
        source, target = command.from_account_id, command.to_account_id
        found = self._lookup_violations(source, command.currency)
        if AccountNotFound in found:
            return found
        # The source's funds are checked before the target is looked at (so that a
        # transfer the source cannot cover tells nothing about the target).
        if self.balance[source] < command.amount:
            found.add(InsufficientFunds)
        at_target = self._lookup_violations(target, command.currency)
        found |= at_target
        if AccountNotFound in at_target:
            return found
        # Any refusal that applies is fine.
        if self.currency[source] != self.currency[target]:
            found.add(CurrencyMismatch)
        if self.balance[target] + command.amount > MAX_AMOUNT:
            found.add(BalanceOverflow)
        return found

    def carry_out(self, command: Command) -> None:
        match command:
            case OpenAccountCommand():
                self.currency[command.account_id] = command.currency
                self.balance[command.account_id] = 0
            case DepositCommand():
                self.balance[command.account_id] += command.amount
            case WithdrawCommand():
                self.balance[command.account_id] -= command.amount
            case TransferCommand():
                self.balance[command.from_account_id] -= command.amount
                self.balance[command.to_account_id] += command.amount

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for account, cur in self.currency.items():
            totals[cur] = totals.get(cur, 0) + self.balance[account]
        return totals

    def draw_command(self, data: st.DataObject) -> Command:
        kind = data.draw(st.sampled_from(("open", "deposit", "withdraw", "transfer")))
        if kind == "open":
            return data.draw(st.builds(open_command, account_ids, account_currency))
        cur = data.draw(named_currency)
        if kind == "transfer":
            source, target = data.draw(account_pairs)
            have, other = self.balance.get(source, 0), self.balance.get(target, 0)
            amount = data.draw(amounts_near(have, MAX_AMOUNT - other, have // 2))
            return TransferCommand(source, target, amount, "r", cur)
        account = data.draw(account_ids)
        have = self.balance.get(account, 0)
        if kind == "deposit":
            return DepositCommand(account, data.draw(amounts_near(MAX_AMOUNT - have)), "r", cur)
        return WithdrawCommand(account, data.draw(amounts_near(have, have // 2)), "r", cur)


@PROPERTY_SETTINGS
@given(opening=opening_commands, steps=st.integers(5, 40), data=st.data())
def test_one_branch_follows_the_model_and_keeps_every_bound(
    opening: tuple[Command, ...], steps: int, data: st.DataObject
) -> None:
    branch = 7
    state = LedgerState()
    model = Model()
    tick = Ticker()
    made = 0
    for step in range(len(opening) + steps):
        command = opening[step] if step < len(opening) else model.draw_command(data)
        deserved = model.violations(command)
        before = snapshot(state)
        totals_before = totals_by_currency(state)
        refusal: DbankError | None = None
        try:
            currency, body = plan(state, command, branch=branch)
        except DbankError as exc:
            refusal = exc
        if refusal is not None:
            # EscrowShortfall is never deserved: the one branch holds every share.
            assert type(refusal) in deserved, (command, refusal, deserved)
            assert snapshot(state) == before
            continue
        assert not deserved, (command, deserved)
        op = originate(state, branch, currency, body, tick())
        model.carry_out(command)
        made += 1

        assert op.id.seq == made  # seq counts 1, 2, 3... without gaps
        assert state.version_vector()[branch] == made
        check_invariants(state)
        assert {a: state.balance(a) for a in model.balance} == model.balance
        assert set(state.accounts) == set(model.currency)
        assert totals_by_currency(state) == model.totals()
        if isinstance(body, Transfer):
            assert totals_by_currency(state) == totals_before
        # The one branch holds every share.
        assert {b for (_, b), v in state.rights.items() if v} <= {branch}


# Several branches ---------------------------------------------------------------------------

BRANCHES = (1, 2, 3)
# Each branch's first deposit into each of the three accounts opened at the start.
seed_deposits = st.lists(st.integers(0, 2**40), min_size=9, max_size=9)
GENESIS_ACCOUNT = "g"

REFUSALS = (
    AccountExists,
    AccountNotFound,
    BalanceOverflow,
    CurrencyMismatch,
    EscrowShortfall,
    InsufficientFunds,
)
ACTIONS = ("open", "deposit", "withdraw", "transfer", "interest", "grant", "borrow", "sync")
# Credits mostly, and enough debits and grants that net credits also fall below zero.
CREDIT_HEAVY = (*("deposit", "transfer", "interest", "sync") * 3, "withdraw", "grant", "borrow")


class Bank:
    """One replica and one log (in apply order) per branch; no network, no store. Every
    op is delivered with ``sync``, which asserts that it applies."""

    def __init__(self, branches: Sequence[int] = BRANCHES, genesis: Op | None = None) -> None:
        self.branches = tuple(sorted(branches))
        self.limits = {b: credit_limit(b, self.branches) for b in self.branches}
        self.replicas = {b: LedgerState() for b in self.branches}
        self.logs: dict[int, list[Op]] = {b: [] for b in self.branches}
        self.genesis = [] if genesis is None else [genesis]
        for b in self.branches:
            apply_all(self.replicas[b], self.genesis)
        self.accounts = (*ACCOUNTS, *(GENESIS_ACCOUNT for _ in self.genesis))
        self.tick = Ticker()

    def start(self, opening: Sequence[Command], deposits: Sequence[int]) -> None:
        """Open accounts at their owners, let everyone see them, then seed every share."""
        for command in opening:
            assert isinstance(command, OpenAccountCommand)
            self.write(owner_branch(command.account_id, self.branches), command)
        self.sync_all()
        amounts = iter(deposits)
        for command in opening:
            for branch in self.branches:
                if amount := next(amounts, 0):
                    self.write(branch, DepositCommand(command.account_id, amount, "r"))

    def write(self, branch: int, command: Command) -> None:
        state = self.replicas[branch]
        try:
            currency, body = plan(state, command, branch=branch, credit_limit=self.limits[branch])
        except REFUSALS:
            return
        self.logs[branch].append(originate(state, branch, currency, body, self.tick()))
        check_invariants(state, self.limits)

    def grant(self, giver: int, taker: int, account_id: str, amount: int) -> None:
        state = self.replicas[giver]
        held = state.rights_of(account_id, giver)
        if giver == taker or account_id not in state.accounts or held == 0:
            return
        body = Grant(account_id, min(amount, held), to_branch=taker)
        currency = state.account(account_id).currency
        self.logs[giver].append(originate(state, giver, currency, body, self.tick()))

    def borrow(self, branch: int, lender: int, account_id: str, amount: int) -> None:
        """Withdraw at ``branch``; if its share falls short, have ``lender`` grant the
        shortfall (as far as it can), deliver the grant, and try again."""
        command = WithdrawCommand(account_id, amount, "r")
        try:
            plan(self.replicas[branch], command, branch=branch)
        except EscrowShortfall as short:
            self.grant(lender, branch, account_id, short.shortfall)
            self.sync(lender, branch)
        except REFUSALS:
            return
        self.write(branch, command)

    def interest(self, account_id: str, amount: int) -> None:
        """Post ``amount`` of interest at the account's owner, for the day after its last
        posting (the planner takes the accrual as given)."""
        branch = owner_branch(account_id, self.branches)
        state = self.replicas[branch]
        if account_id not in state.accounts:
            return
        last = state.postings.get(account_id)
        if last is None:
            after, through = None, hlc_day(state.account(account_id).opened_hlc)
        else:
            after, through = last.op_id, last.through + dt.timedelta(days=1)
        accrual = Accrual(after, amount, state.balance(account_id))
        self.write(branch, InterestCommand(account_id, "1", through, "r", accrual))

    def sync(self, source: int, target: int, limit: int | None = None) -> None:
        """Deliver the first ``limit`` ops that ``source`` has and ``target`` lacks, in
        ``source``'s order (which is causal)."""
        replica = self.replicas[target]
        missing = [op for op in self.logs[source] if not replica.has_applied(op)]
        for op in missing[:limit]:
            assert replica.is_ready(op), (op.id, replica.version_vector())
            assert replica.apply(op) is True
            check_invariants(replica, self.limits)
            self.logs[target].append(op)

    def sync_all(self) -> None:
        for target in self.branches:
            for source in self.branches:
                self.sync(source, target)

    def step(self, data: st.DataObject, actions: Sequence[str] = ACTIONS) -> int:
        """Draw one action and carry it out; return the branch whose replica it changed."""
        kind = data.draw(st.sampled_from(actions))
        branch = data.draw(st.sampled_from(self.branches))
        other = data.draw(st.sampled_from(self.branches))
        account = data.draw(st.sampled_from(self.accounts))
        if kind == "open":
            branch = owner_branch(account, self.branches)
            self.write(branch, open_command(account, data.draw(account_currency)))
        elif kind == "sync":
            self.sync(other, branch, data.draw(st.integers(1, 8)))
        elif kind == "deposit":
            amount = data.draw(self.credit_amounts(branch, account))
            self.write(branch, DepositCommand(account, amount, "r"))
        elif kind == "interest":
            branch = owner_branch(account, self.branches)
            amount = data.draw(st.just(0) | self.credit_amounts(branch, account))
            self.interest(account, amount)
        elif kind == "transfer":
            source, target = data.draw(st.permutations(self.accounts).map(lambda p: p[:2]))
            amount = data.draw(
                self.debit_amounts(branch, source) | self.credit_amounts(branch, target)
            )
            self.write(branch, TransferCommand(source, target, amount, "r"))
        else:
            amount = data.draw(self.debit_amounts(branch, account))
            if kind == "withdraw":
                self.write(branch, WithdrawCommand(account, amount, "r"))
            elif kind == "grant":
                self.grant(branch, other, account, amount)
            else:
                self.borrow(branch, other, account, amount)
        return branch

    def debit_amounts(self, branch: int, account_id: str) -> st.SearchStrategy[int]:
        state = self.replicas[branch]
        held, balance = state.rights_of(account_id, branch), state.balance(account_id)
        return amounts_near(held, balance, held // 2)

    def credit_amounts(self, branch: int, account_id: str) -> st.SearchStrategy[int]:
        """Amounts near what the account may still take here: what is left of this
        branch's credit limit, and of 2^63 - 1."""
        state = self.replicas[branch]
        room = self.limits[branch] - state.credit_of(account_id, branch)
        return amounts_near(room, MAX_AMOUNT - state.balance(account_id))

    def all_ops(self) -> list[Op]:
        """Every op of the bank, the genesis op first."""
        own = [op for b in self.branches for op in self.logs[b] if op.id.origin == b]
        return self.genesis + own

    def check_replay(self, first: random.Random, second: random.Random) -> None:
        """Every op, replayed in two random causal orders and delivered to every branch,
        applies, and all of them end in one state."""
        ops = self.all_ops()
        for b in self.branches:
            own = [op.id.seq for op in self.logs[b] if op.id.origin == b]
            assert own == list(range(1, len(own) + 1))  # seq counts 1, 2, 3...
        one = replay_in_random_causal_order(ops, first, self.limits)
        other = replay_in_random_causal_order(ops, second, self.limits)
        assert snapshot(one) == snapshot(other)
        assert totals_by_currency(one) == expected_totals(ops)
        self.sync_all()
        for b in self.branches:
            assert snapshot(self.replicas[b]) == snapshot(one)


def replay_in_random_causal_order(
    ops: Sequence[Op], rnd: random.Random, limits: Mapping[int, int]
) -> LedgerState:
    replica = LedgerState()
    waiting = list(ops)
    while waiting:
        ready = [op for op in waiting if replica.is_ready(op)]
        assert ready, "the ops are not causally closed"
        op = rnd.choice(ready)
        waiting.remove(op)
        totals_before = totals_by_currency(replica)
        assert replica.apply(op) is True
        check_invariants(replica, limits)
        if isinstance(op.body, Transfer | Grant):
            assert totals_by_currency(replica) == totals_before
    return replica


def expected_totals(ops: Sequence[Op]) -> dict[str, int]:
    """Per currency: what came in minus what went out."""
    totals: dict[str, int] = {}
    for op in ops:
        change = 0
        if isinstance(op.body, Deposit | Interest | Genesis):
            change = op.body.amount
        elif isinstance(op.body, Withdrawal):
            change = -op.body.amount
        totals[op.currency] = totals.get(op.currency, 0) + change
    return totals


@PROPERTY_SETTINGS
@given(
    opening=opening_commands,
    deposits=seed_deposits,
    steps=st.integers(5, 50),
    data=st.data(),
    first=st.randoms(use_true_random=False),
    second=st.randoms(use_true_random=False),
)
def test_ops_of_several_branches_converge_in_any_causal_order(
    opening: tuple[Command, ...],
    deposits: list[int],
    steps: int,
    data: st.DataObject,
    first: random.Random,
    second: random.Random,
) -> None:
    bank = Bank()
    bank.start(opening, deposits)
    for _ in range(steps):
        bank.step(data)
    bank.check_replay(first, second)


@PROPERTY_SETTINGS
@given(
    branches=st.sets(st.integers(1, 9), min_size=2, max_size=5),
    opening=opening_commands,
    genesis_balance=st.one_of(st.just(0), amounts_near(MAX_AMOUNT, MAX_AMOUNT // 2)),
    steps=st.integers(5, 60),
    data=st.data(),
    first=st.randoms(use_true_random=False),
    second=st.randoms(use_true_random=False),
)
def test_concurrent_credits_at_several_branches_apply_everywhere_and_stay_under_the_max(
    branches: set[int],
    opening: tuple[Command, ...],
    genesis_balance: int,
    steps: int,
    data: st.DataObject,
    first: random.Random,
    second: random.Random,
) -> None:
    """Deposits, incoming transfers and interest at every branch, each sized to what its
    origin sees is left of its credit limit or of 2^63 - 1, delivered in random partial
    orders: every op a branch commits applies at every replica, and no balance ever
    passes 2^63 - 1 (``Bank.sync`` and the replays check both after every op)."""
    genesis = None
    if genesis_balance:
        genesis = genesis_op(
            account_id=GENESIS_ACCOUNT,
            currency="USD",
            owner="o",
            balance=genesis_balance,
            branch_ids=branches,
            type=AccountType.SAVINGS,
        )
    bank = Bank(sorted(branches), genesis)
    bank.start(opening, [])
    for _ in range(steps):
        bank.step(data, CREDIT_HEAVY)
    bank.check_replay(first, second)


def test_a_grant_lets_a_branch_spend_what_another_held() -> None:
    bank = Bank()
    owner = owner_branch("a", BRANCHES)
    other = next(b for b in BRANCHES if b != owner)
    bank.start([open_command("a", "USD")], [100 if b == owner else 0 for b in BRANCHES])
    assert bank.replicas[other].balance("a") == 0  # not delivered yet
    bank.sync(owner, other)
    with pytest.raises(EscrowShortfall) as info:
        plan(bank.replicas[other], WithdrawCommand("a", 60, "r"), branch=other)
    assert info.value.shortfall == 60
    assert info.value.metadata == {"account_id": "a", "shortfall": "60"}
    bank.borrow(other, owner, "a", 60)
    assert bank.replicas[other].balance("a") == 40
    assert bank.replicas[other].rights_of("a", other) == 0
    assert bank.replicas[other].rights_of("a", owner) == 40
    bank.sync(other, owner)
    assert snapshot(bank.replicas[owner]) == snapshot(bank.replicas[other])


def test_concurrent_credits_at_two_branches_never_stop_replication() -> None:
    replicas = {1: LedgerState(), 2: LedgerState()}
    tick = Ticker()
    opening = open_account(replicas[1], 1, "a", "USD", tick())
    assert replicas[2].apply(opening)
    made: dict[int, list[Op]] = {1: [], 2: []}
    for branch, amount in ((1, MAX_AMOUNT), (2, 1)):
        state = replicas[branch]
        command = DepositCommand("a", amount, f"r{branch}")
        try:
            limit = credit_limit(branch, replicas)
            currency, body = plan(state, command, branch=branch, credit_limit=limit)
        except BalanceOverflow:
            continue  # refused at its origin: past that branch's credit limit
        made[branch].append(originate(state, branch, currency, body, tick()))
    # Whatever each branch committed must apply at the other.
    for source, target in ((1, 2), (2, 1)):
        for op in made[source]:
            assert replicas[target].apply(op) is True
    check_invariants(replicas[1])
    assert snapshot(replicas[1]) == snapshot(replicas[2])
    # Branch 1 may add at most half of 2^63 - 1 (rounded up); branch 2's deposit is in.
    assert (len(made[1]), len(made[2])) == (0, 1)
