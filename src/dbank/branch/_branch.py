"""A branch: its replica of the bank, its writer and its store, free of any wire protocol.

The gRPC servicers call these methods. Every request first waits until this replica covers
the caller's session token; each write returns only once it is durable (and, with
``wait_all``, applied by the other connected branches), each read answers from the
committed state of this branch's replica. Every answer carries the replica's version
vector: the caller's next session token.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dbank.branch._config import BranchConfig
from dbank.branch._history import (
    HistoryPage,
    HistoryReader,
    InterestResult,
    StatementResult,
)
from dbank.branch._network import Network, NoPeers
from dbank.branch._request import RequestContext, WriteResult
from dbank.branch._watch import VectorWatch
from dbank.branch._writer import Writer, batch_aborted
from dbank.ledger import (
    Aborted,
    AccountNotFound,
    AccountRecord,
    AlreadyPosted,
    BranchesUnreachable,
    DayNotClosed,
    DbankError,
    DepositCommand,
    EscrowShortfall,
    GrantCommand,
    HybridLogicalClock,
    Interest,
    InterestCommand,
    InterestPosting,
    Internal,
    InvalidArgument,
    LedgerState,
    NothingToGrant,
    Op,
    OpenAccountCommand,
    OpId,
    Outcome,
    PageToken,
    PermissionDenied,
    ReplicationHalted,
    SessionNotCovered,
    StaleAccrual,
    TransferCommand,
    Unavailable,
    VersionVector,
    WithdrawCommand,
    credit_limit,
)
from dbank.ledger.clock import LOGICAL_BITS, WallClock, day_start_hlc
from dbank.ledger.codec import decode_op, encode_op
from dbank.ledger.commands import check_id
from dbank.ledger.history import bounded_page_size
from dbank.ledger.interest import check_past, parse_rate, period_for, posted_already
from dbank.ledger.ownership import owner_branch
from dbank.ledger.state import GENESIS_ORIGIN
from dbank.ledger.statement import check_range
from dbank.store import Store, open_store, remember_branch

MAX_ACCOUNTS_PER_READ = 1000
INT64_MAX = 2**63 - 1
INTEREST_ATTEMPTS = 3
"""How often the owner computes a posting again when another posting beat it to commit."""


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account as this replica sees it."""

    record: AccountRecord
    balance: int
    withdrawable_here: int


@dataclass(frozen=True, slots=True)
class Reading:
    """Accounts read from one state of the replica, and that state's vector."""

    accounts: list[AccountView]
    session: VersionVector


BatchCommand = DepositCommand | WithdrawCommand | TransferCommand
"""What a batch entry may be."""

MAX_BATCH_ENTRIES = 8000
"""The most entries one batch takes (TigerBeetle takes 8,189 transfers per request)."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Each entry's write or error, in order, and the replica's state after the batch;
    ``unconfirmed`` as for ``WriteResult``."""

    results: tuple[WriteResult | DbankError, ...]
    session: VersionVector
    unconfirmed: tuple[int, ...] = ()


_NOT_YET = Aborted("not decided yet")
"""A batch entry's place until it is decided (never answered)."""


def _check_batch(entries: Sequence[BatchCommand | DbankError]) -> None:
    """Raises ``InvalidArgument``: no entries, too many, or a request id used twice."""
    if not 1 <= len(entries) <= MAX_BATCH_ENTRIES:
        raise InvalidArgument(
            f"a batch holds 1-{MAX_BATCH_ENTRIES} entries, not {len(entries)}",
            reason="BATCH_TOO_LARGE",
            field="entries",
            max_entries=str(MAX_BATCH_ENTRIES),
        )
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if isinstance(entry, DbankError):
            continue
        first = seen.setdefault(entry.request_id, index)
        if first != index:
            raise InvalidArgument(
                f"entries {first} and {index} have the same request id",
                reason="BATCH_REQUEST_ID_REPEATED",
                field=f"entries[{index}]",
            )


def _unreachable_if_short(
    decision: Outcome | DbankError, unreachable: Mapping[str, list[int]]
) -> Outcome | DbankError:
    """A decision still short of escrow that unreachable branches may hold says so."""
    if not isinstance(decision, EscrowShortfall) or decision.account_id not in unreachable:
        return decision
    names = ",".join(str(b) for b in unreachable[decision.account_id])
    return BranchesUnreachable(
        f"account {decision.account_id!r} needs escrow that branches {names} may hold, and"
        " they cannot be reached",
        account_id=decision.account_id,
        branches=names,
    )


def _debited(command: BatchCommand) -> str:
    """The account whose escrow share a command spends."""
    return command.from_account_id if isinstance(command, TransferCommand) else command.account_id


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Branch:
    """Create with ``await Branch.open(config)``; ``await close()`` when done."""

    def __init__(
        self, config: BranchConfig, store: Store, writer: Writer, wall_ms: WallClock = _wall_ms
    ) -> None:
        self.config = config
        self._writer = writer
        self._wall_ms = wall_ms
        self._network: Network = NoPeers()
        self._store = store
        self._borrowing: dict[str, list[int]] = {}

    @classmethod
    async def open(
        cls, config: BranchConfig, store: Store | None = None, *, wall_ms: WallClock = _wall_ms
    ) -> Branch:
        """Load the branch's state from its store and start its writer. ``wall_ms`` is the
        wall clock its HLC follows and its "today" comes from (tests set their own)."""
        if store is None:
            store = await open_store(config.store_spec)
        try:
            # The directory now remembers it held this branch's store, of this bank.
            await remember_branch(config.store_spec, config.genesis_digest)
        except BaseException:
            await store.close()
            raise
        snapshot = await store.load()
        clock = HybridLogicalClock(wall_ms, snapshot.last_hlc)
        limit = credit_limit(config.branch_id, config.branch_ids)
        writer = Writer(config.branch_id, snapshot.state, store, clock, credit_limit=limit)
        writer.start()
        branch = cls(config, store, writer, wall_ms)
        if config.genesis is not None:
            try:
                await branch._apply_genesis(config.genesis)
            except BaseException:
                await branch.close()
                raise
        return branch

    async def _apply_genesis(self, genesis: Op) -> None:
        """Apply the bank's genesis op first of all; a store that holds another one
        belongs to another bank."""
        if not self._writer.state.has_applied(genesis):
            await self._writer.apply_remote([genesis])
        if await self.op(genesis.id) != genesis:
            raise Unavailable(
                f"branch {self.branch_id}: its store belongs to another bank (genesis differs)",
                reason="GENESIS_MISMATCH",
            )

    async def close(self) -> None:
        """Finish the writes already accepted, then release the store."""
        await self._writer.stop()
        await self._store.close()

    @property
    def branch_id(self) -> int:
        return self.config.branch_id

    @property
    def version_vector(self) -> VersionVector:
        """The committed (durable) state of this replica."""
        return self._writer.committed.vector

    @property
    def committed(self) -> VectorWatch:
        """The committed version vector, to wait on (``VectorWatch.wait_for``)."""
        return self._writer.committed

    @property
    def state(self) -> LedgerState:
        """The replica's state as applied so far: read it, never change it."""
        return self._writer.state

    @property
    def network(self) -> Network:
        """How this branch reaches the others (``NoPeers`` until one is attached)."""
        return self._network

    def attach_network(self, network: Network) -> None:
        """Reach the other branches through ``network`` from now on."""
        self._network = network

    # Replication's hooks into the writer -----------------------------------------------

    def pause_origination(self) -> None:
        """Originate no op until ``resume_origination``: reads and remote ops go on. While
        a restarted branch fetches back ops of its own that its peers hold (I3)."""
        self._writer.pause_origination()

    def resume_origination(self) -> None:
        self._writer.resume_origination()

    async def refresh(self) -> None:
        """Take in what other processes serving this branch committed to a shared store.

        Raises:
            Unavailable: the store cannot be read.
        """
        await self._writer.refresh()

    async def seal(self, hlc: int) -> None:
        """Move this branch's clock past ``hlc``, so that every op it originates from now
        on is later (how a peer closes a day at a branch that writes nothing).

        Raises:
            InvalidArgument: ``CLOCK_AHEAD`` (see ``check_clock``).
        """
        self.check_clock(hlc, what="the seal")
        await self._writer.seal(hlc)

    def check_clock(self, hlc: int, *, what: str) -> None:
        """Refuse a timestamp from elsewhere that this branch's clock would have to jump
        to: more than ``config.max_clock_offset_ms`` ahead of its wall clock, or outside
        int64. Without this, one far-future value would date every later op after it.

        Raises:
            InvalidArgument: ``CLOCK_AHEAD``.
        """
        limit = (self._wall_ms() + self.config.max_clock_offset_ms) << LOGICAL_BITS
        if not 0 <= hlc <= min(limit, INT64_MAX):
            raise InvalidArgument(
                f"{what} is dated {hlc}, more than {self.config.max_clock_offset_ms} ms"
                " ahead of this branch's clock (or outside int64)",
                reason="CLOCK_AHEAD",
            )

    # Sessions --------------------------------------------------------------------------

    async def cover(self, session: VersionVector, within: float, *, source: int = 0) -> None:
        """Wait until this replica covers ``session``, pulling from peers if need be:
        first from ``source``, the branch the token came from (0: unknown).

        Raises:
            InvalidArgument: ``UNKNOWN_BRANCH``, the session names a branch that is not
                one of this bank's (no wait could ever cover it).
            SessionNotCovered: not within ``within`` seconds.
        """
        watch = self._writer.committed
        if watch.covers(session):
            return
        strangers = sorted(
            o for o in session if o != GENESIS_ORIGIN and o not in self.config.branch_ids
        )
        if strangers:
            raise InvalidArgument(
                f"the session names branch {strangers[0]}, which is not a branch of this bank",
                reason="UNKNOWN_BRANCH",
                field="session",
            )
        if session[GENESIS_ORIGIN] > (0 if self.config.genesis is None else 1):
            raise InvalidArgument(
                f"the session counts {session[GENESIS_ORIGIN]} genesis ops; this bank has"
                f" {0 if self.config.genesis is None else 1}",
                reason="UNKNOWN_BRANCH",
                field="session",
            )
        # Replication usually delivers within milliseconds; pulling in parallel covers a
        # stream that is down or behind.
        pulling = _background(self._network.pull(session, within, source=source))
        try:
            covered = await watch.wait_for(lambda v: v.covers(session), within)
        finally:
            pulling.cancel()
        if not covered:
            missing = ",".join(str(o) for o in watch.vector.missing(session))
            raise SessionNotCovered(
                f"this branch has not yet applied the ops of branches {missing} that the"
                " session has seen; retry, or ask another branch",
                missing=missing,
            )

    # Reads ---------------------------------------------------------------------------

    def owner_of(self, account_id: str) -> str | None:
        """The account's owner, or None if this replica has no such account."""
        try:
            return self._writer.state.account(account_id).owner
        except AccountNotFound:
            return None

    def account(self, account_id: str) -> AccountView:
        """Raises ``AccountNotFound``."""
        return self._views([account_id])[0]

    async def read(self, account_ids: Sequence[str], context: RequestContext) -> Reading:
        """Several accounts read from one committed state (no await in between), once the
        replica covers the session.

        Raises:
            InvalidArgument: no ids, more than 1000, or repeated ids.
            AccountNotFound: for the first unknown id.
            SessionNotCovered.
        """
        if not 1 <= len(account_ids) <= MAX_ACCOUNTS_PER_READ:
            raise InvalidArgument(
                f"ask for 1-{MAX_ACCOUNTS_PER_READ} accounts, not {len(account_ids)}",
                reason="TOO_MANY_ACCOUNTS",
                field="account_ids",
            )
        if len(set(account_ids)) != len(account_ids):
            raise InvalidArgument(
                "account ids repeat", reason="INVALID_ACCOUNT_ID", field="account_ids"
            )
        for account_id in account_ids:
            check_id(account_id, field="account_id")
        await self.cover(context.session, context.budget, source=context.session_source)
        return Reading(self._views(account_ids), self.version_vector)

    def _views(self, account_ids: Sequence[str]) -> list[AccountView]:
        state = self._writer.state
        views = []
        for account_id in account_ids:
            record = state.account(account_id)
            views.append(
                AccountView(
                    record,
                    state.balance(account_id),
                    state.rights_of(account_id, self.branch_id),
                )
            )
        return views

    # Writes --------------------------------------------------------------------------

    async def open_account(
        self, command: OpenAccountCommand, context: RequestContext
    ) -> tuple[AccountView, OpId, VersionVector, tuple[int, ...]]:
        """Open an account, durably; idempotent by (account_id, request_id). Another
        branch than the account id's owner forwards the request to the owner (which waits
        for every branch). Returns the account, the op, this replica's state, and the
        branches that had not confirmed the op when write concern ``ALL`` stopped waiting.

        Raises:
            AccountExists, RequestIdReused, Unavailable.
        """
        await self.cover(context.session, context.budget, source=context.session_source)
        owner = owner_branch(command.account_id, self.config.branch_ids)
        if owner != self.branch_id:
            op_id, session = await self._network.open_at_owner(owner, command, context.budget)
            await self.cover(session, context.budget)
            return self.account(command.account_id), op_id, self.version_vector, ()
        outcome = await self._writer.submit(command)
        op_id = _op_id(outcome)
        unconfirmed: list[int] = []
        if context.wait_all:
            unconfirmed = await self._network.confirm(op_id, context.budget)
        view = self.account(command.account_id)
        return view, op_id, self.version_vector, tuple(unconfirmed)

    async def deposit(self, command: DepositCommand, context: RequestContext) -> WriteResult:
        """Raises AccountNotFound, CurrencyMismatch, BalanceOverflow, RequestIdReused."""
        return await self._write(command, context)

    async def withdraw(self, command: WithdrawCommand, context: RequestContext) -> WriteResult:
        """Raises AccountNotFound, CurrencyMismatch, InsufficientFunds, RequestIdReused,
        EscrowShortfall (retry), BranchesUnreachable."""
        return await self._write(command, context)

    async def transfer(self, command: TransferCommand, context: RequestContext) -> WriteResult:
        """Raises AccountNotFound, CurrencyMismatch, InsufficientFunds, BalanceOverflow,
        RequestIdReused, EscrowShortfall (retry), BranchesUnreachable."""
        return await self._write(command, context)

    async def _write(
        self, command: DepositCommand | WithdrawCommand | TransferCommand, context: RequestContext
    ) -> WriteResult:
        owner = context.request_branch
        if owner and owner not in self.config.branch_ids:
            raise InvalidArgument(
                f"request_branch {owner} is not a branch of this bank",
                reason="UNKNOWN_BRANCH",
                field="request_branch",
            )
        await self.cover(context.session, context.budget, source=context.session_source)
        if owner and owner != self.branch_id:
            # The request id is that branch's to decide (design §3.1): answer here only
            # if its op has replicated here already.
            decided = await self._writer.decided(command)
            if decided is None:
                return await self._network.forward(owner, command, context)
            outcome = decided
        else:
            outcome = await self._originate(command, context.budget)
        op_id = _op_id(outcome)
        unconfirmed: list[int] = []
        if context.wait_all:
            unconfirmed = await self._network.confirm(op_id, context.budget)
        account_id = outcome.balances[0][0]
        currency = self._writer.state.account(account_id).currency
        return WriteResult(
            op_id,
            outcome.balances,
            currency,
            self.version_vector,
            tuple(unconfirmed),
            answered_by=self.branch_id,
        )

    async def _originate(
        self, command: DepositCommand | WithdrawCommand | TransferCommand, within: float
    ) -> Outcome:
        """Submit the command; if this branch's escrow falls short, borrow and submit again
        (the writer goes on meanwhile: it never waits on the network)."""
        alone = not self.config.peers
        try:
            return await self._writer.submit(command, final=alone)
        except EscrowShortfall as short:
            if alone:
                raise
            account_id, shortfall = short.account_id, short.shortfall
        amount = command.amount
        self._writer.hold(account_id, amount)
        self._borrowing.setdefault(account_id, []).append(shortfall)
        try:
            unreachable = await self._network.borrow(account_id, shortfall, within)
            try:
                return await self._writer.submit(
                    command, final=not unreachable, hold=(account_id, amount)
                )
            except EscrowShortfall:
                if not unreachable:
                    raise
            names = ",".join(str(b) for b in unreachable)
            raise BranchesUnreachable(
                f"account {account_id!r} needs escrow that branches {names} may hold, and"
                " they cannot be reached",
                account_id=account_id,
                branches=names,
            )
        finally:
            self._borrowing[account_id].remove(shortfall)
            if not self._borrowing[account_id]:
                del self._borrowing[account_id]
            self._writer.release(account_id, amount)

    async def batch(
        self,
        entries: Sequence[BatchCommand | DbankError],
        context: RequestContext,
        *,
        atomic: bool = False,
    ) -> BatchResult:
        """Carry out many writes in one writer batch and one durable transaction, in their
        order; an entry given as an error (it did not parse) is refused as it is. Escrow
        that this branch lacks is borrowed once per account, for the whole batch's
        shortfall, and the entries that fell short are decided again with it. With
        ``atomic``, every entry is applied or none (see ``Writer.submit_many``).

        Raises:
            InvalidArgument: no entries, more than ``MAX_BATCH_ENTRIES``, or a request id
                that two entries share (``BATCH_REQUEST_ID_REPEATED``).
            SessionNotCovered.
        """
        _check_batch(entries)
        await self.cover(context.session, context.budget, source=context.session_source)
        wanted = [i for i, e in enumerate(entries) if not isinstance(e, DbankError)]
        decisions: list[Outcome | DbankError] = [
            e if isinstance(e, DbankError) else _NOT_YET for e in entries
        ]
        if atomic and len(wanted) < len(entries):
            refused = next(i for i, e in enumerate(entries) if isinstance(e, DbankError))
            aborted = batch_aborted(refused)  # one error for all: it says the same to each
            decisions = [d if d is not _NOT_YET else aborted for d in decisions]
        elif wanted:
            commands = [e for e in entries if not isinstance(e, DbankError)]
            decided = await self._originate_many(commands, atomic, context)
            for i, decision in zip(wanted, decided, strict=True):
                decisions[i] = decision
        unconfirmed: list[int] = []
        made = [d.op_id for d in decisions if isinstance(d, Outcome) and d.op_id is not None]
        if context.wait_all and made:
            unconfirmed = await self._network.confirm(max(made), context.budget)
        session = self.version_vector
        results = [self._written(decision, session) for decision in decisions]
        return BatchResult(tuple(results), session, tuple(unconfirmed))

    def _written(
        self, decision: Outcome | DbankError, session: VersionVector
    ) -> WriteResult | DbankError:
        if isinstance(decision, DbankError):
            return decision
        currency = self._writer.state.account(decision.balances[0][0]).currency
        return WriteResult(
            _op_id(decision), decision.balances, currency, session, answered_by=self.branch_id
        )

    async def _originate_many(
        self, commands: list[BatchCommand], atomic: bool, context: RequestContext
    ) -> list[Outcome | DbankError]:
        """``_originate`` for a batch: one borrowing round for every account that entries
        fell short on, asking at once for what the entries decided again will spend there
        beyond this branch's spare share."""
        alone = not self.config.peers
        decisions = await self._writer.submit_many(commands, atomic=atomic, final=alone)
        short = [i for i, d in enumerate(decisions) if isinstance(d, EscrowShortfall)]
        if alone or not short:
            return decisions
        again = list(range(len(commands))) if atomic else short
        short_on = {_debited(commands[i]) for i in short}
        holds: dict[str, int] = {}
        for i in again:
            debited = _debited(commands[i])
            if not isinstance(commands[i], DepositCommand) and debited in short_on:
                holds[debited] = holds.get(debited, 0) + commands[i].amount
        # What the entries decided again will spend, less what this branch has to spare
        # now (the first pass committed the others): the one borrowing per account.
        needs = {a: need for a in holds if (need := holds[a] - max(0, self._writer.spare(a))) > 0}
        for account_id, amount in holds.items():
            self._writer.hold(account_id, amount)
        for account_id, need in needs.items():
            self._borrowing.setdefault(account_id, []).append(need)
        try:
            asked = await asyncio.gather(
                *(self._network.borrow(a, need, context.budget) for a, need in needs.items())
            )
            unreachable = {a: names for a, names in zip(needs, asked, strict=True) if names}
            retried = await self._writer.submit_many(
                [commands[i] for i in again], atomic=atomic, final=not unreachable, holds=holds
            )
        finally:
            for account_id, need in needs.items():
                self._borrowing[account_id].remove(need)
                if not self._borrowing[account_id]:
                    del self._borrowing[account_id]
            for account_id, amount in holds.items():
                self._writer.release(account_id, amount)
        for i, decision in zip(again, retried, strict=True):
            decisions[i] = _unreachable_if_short(decision, unreachable)
        return decisions

    # Replication -----------------------------------------------------------------------

    async def grant(
        self, account_id: str, to_branch: int, shortfall: int, borrow_id: str
    ) -> Op | None:
        """Answer a borrowing branch: originate a grant of up to ``shortfall`` of this
        branch's spare escrow share of the account, or None for nothing (design §2.3).

        A branch that is itself borrowing on the account for a larger amount (ties broken
        by the larger branch id) grants nothing, so two borrowers cannot ping-pong.
        """
        waiting = self._borrowing.get(account_id)
        if waiting and (max(waiting), self.branch_id) > (shortfall, to_branch):
            return None
        command = GrantCommand(account_id, to_branch, shortfall, borrow_id)
        try:
            outcome = await self._writer.submit(command)
        except NothingToGrant:
            return None
        return await self.op(_op_id(outcome))

    async def op(self, op_id: OpId) -> Op:
        """A committed op of this replica."""
        found = self._writer.recent.get(op_id.origin, op_id.seq)
        if found is None:
            stored = await self._store.read_ops(op_id.origin, op_id.seq - 1, 1)
            if not stored:
                raise Internal(f"op {op_id} is not stored")
            found = stored[0]
        return found

    async def ops_lacking(self, have: VersionVector, limit: int) -> list[Op]:
        """Up to ``limit`` committed ops that a replica at ``have`` lacks, in an order
        that applies causally (HLC order, which extends causal order; design §4)."""
        mine = self.version_vector
        found: list[Op] = []
        for origin, count in mine.items():
            if have[origin] < count:
                found.extend(await self.ops_of(origin, have[origin], limit))
        # Each origin's run is cut at ``limit``, so the first ``limit`` in HLC order are
        # closed under deps among the lacking ops.
        found.sort(key=lambda op: (op.hlc, op.id))
        return found[:limit]

    async def ops_of(self, origin: int, after: int, limit: int) -> list[Op]:
        """Up to ``limit`` committed ops of ``origin`` with seq > ``after``, in seq order."""
        ops = self._writer.recent.after(origin, after, limit)
        if ops is None:
            ops = await self._store.read_ops(origin, after, limit)
        return ops

    async def encoded_ops_of(self, origin: int, after: int, limit: int) -> list[tuple[Op, bytes]]:
        """``ops_of``, each op with its canonical bytes (made once however many peers
        they are sent to)."""
        found = self._writer.recent.encoded_after(origin, after, limit)
        if found is None:
            found = [(op, encode_op(op)) for op in await self._store.read_ops(origin, after, limit)]
        return found

    async def receive(self, encoded: Sequence[bytes], *, origin: int = 0) -> VersionVector:
        """Apply ops other branches sent, as their canonical bytes; returns once they are
        durable here (or held back for missing deps), with the highest op id of each origin
        among them (what the sender will want acknowledged). ``origin``, if given, is the
        only origin the ops may have (a branch streams only its own ops).

        Nothing of the batch is applied if one op is refused.

        Raises:
            PermissionDenied: ``ORIGIN_MISMATCH``, an op of another origin than ``origin``.
            InvalidArgument: ``CLOCK_AHEAD``, an op dated more than the bank's maximum
                clock offset ahead of this branch's clock.
            ReplicationHalted: an op reuses an applied op's id with other content, or its
                origin's ops are refused already.
            InvalidArgument: ``MALFORMED_OP``, bytes that are not a canonical op.
        """
        ops = []
        highest: dict[int, int] = {}
        state = self._writer.state
        try:
            decoded = [decode_op(data) for data in encoded]
        except Internal as exc:
            raise InvalidArgument(
                f"a received op is not an op ({exc.message})", reason="MALFORMED_OP"
            ) from None
        bank = {GENESIS_ORIGIN, *self.config.branch_ids}
        for op in decoded:
            strangers = sorted({op.id.origin, *op.deps} - bank)
            if strangers or (op.id.origin == GENESIS_ORIGIN and op.id.seq != 1):
                # An op no branch of this bank could have made: held for its deps, it
                # would wait forever (and keep the real op of its id out).
                raise InvalidArgument(
                    f"op {op.id} names branch {strangers[0] if strangers else 0}, which has"
                    " no such op in this bank",
                    reason="MALFORMED_OP",
                )
            if origin and op.id.origin != origin:
                raise PermissionDenied(
                    f"branch {origin} sent op {op.id} of branch {op.id.origin}: a branch"
                    " streams only its own ops",
                    reason="ORIGIN_MISMATCH",
                )
            self.check_clock(op.hlc, what=f"op {op.id}")
        for op, data in zip(decoded, encoded, strict=True):
            if encode_op(op) != data:
                raise InvalidArgument(f"op {op.id} is not in canonical form", reason="MALFORMED_OP")
            highest[op.id.origin] = max(highest.get(op.id.origin, 0), op.id.seq)
            if state.has_applied(op):
                await self._check_same(op)
                continue
            ops.append(op)
        if ops:
            await self._writer.apply_remote(ops)
        return VersionVector(highest)

    async def _check_same(self, op: Op) -> None:
        # Both sides are canonical, so equal values mean equal bytes.
        if await self.op(op.id) != op:
            reason = f"op {op.id} arrived again with other content"
            self._writer.halt(op.id.origin, reason)
            raise ReplicationHalted(reason, origin=str(op.id.origin))

    # Interest, history and statements (design §6) ---------------------------------------

    async def calculate_interest(
        self, command: InterestCommand, context: RequestContext
    ) -> InterestResult:
        """Post a savings account's interest through ``command.as_of``, durably, once per
        day: a day posted already returns its posting and adds nothing. Idempotent by
        (account_id, request_id). Only the account's owner branch posts; another branch
        forwards the request there and answers once its replica has the op.

        Raises:
            InvalidArgument: ``INVALID_AS_OF`` (today or later, or before the opening day).
            AccountNotFound, WrongAccountType, RequestIdReused.
            DayNotClosed: some branch may still write ops dated ``as_of`` or earlier.
            Unavailable, StaleAccrual (retry).
        """
        await self.cover(context.session, context.budget, source=context.session_source)
        check_past(command.as_of, self._today())
        owner = owner_branch(command.account_id, self.config.branch_ids)
        if owner != self.branch_id:
            op_id, session = await self._network.interest_at_owner(owner, command, context.budget)
            await self.cover(session, context.budget)
            return await self._posting(command, op_id)
        for _ in range(INTEREST_ATTEMPTS):
            try:
                outcome = await self._writer.submit(await self._accrued(command, context.budget))
            except AlreadyPosted as done:
                return await self._posting(command, done.posting.op_id)
            except StaleAccrual:
                continue  # another posting committed since the accrual was read
            op_id = _op_id(outcome)
            unconfirmed: list[int] = []
            if context.wait_all:
                unconfirmed = await self._network.confirm(op_id, context.budget)
            return await self._posting(command, op_id, tuple(unconfirmed))
        raise StaleAccrual(
            f"account {command.account_id!r}: interest postings keep changing; retry",
            account_id=command.account_id,
        )

    async def _accrued(self, command: InterestCommand, within: float) -> InterestCommand:
        """``command`` with the interest it credits, read once every op of its days is
        here; unchanged if the day is posted already (the writer answers that)."""
        state = self._writer.state
        record = state.account(command.account_id)
        if posted_already(state.postings.get(command.account_id), command.as_of):
            return command
        # Refuse what no wait can mend (account type, a day before the opening) first.
        period_for(record.type, record.opened_hlc, None, command.as_of)
        await self._close_day(command.as_of, within)
        # The last posting and the snapshot are read together, after the day closed.
        state = self._writer.state
        last = state.postings.get(command.account_id)
        if posted_already(last, command.as_of):
            return command
        period = period_for(record.type, record.opened_hlc, last, command.as_of)
        rate = parse_rate(command.annual_rate)
        reader = HistoryReader(self._store)
        accrual = await reader.accrual(command.account_id, period, rate, self.version_vector)
        return dataclasses.replace(command, accrual=accrual)

    async def _close_day(self, day: dt.date, within: float) -> None:
        """Return once this replica holds every op dated ``day`` or earlier, from every
        branch: each branch's ops come in seq order with rising HLCs, so once one of its
        ops later than the end of ``day`` is here, all its earlier ones are too; a branch
        with none is asked to seal its clock past the day and say how many ops it has.

        Raises:
            DayNotClosed: naming the branches with no op here later than ``day``.
        """
        end = day_start_hlc(day + dt.timedelta(days=1))

        async def open_branches() -> list[int]:
            vector = self.version_vector
            found = []
            for branch in self.config.branch_ids:
                if branch == self.branch_id:
                    continue  # its clock is past the day: the day is over here
                seq = vector[branch]
                if seq == 0 or (await self.op(OpId(branch, seq))).hlc < end:
                    found.append(branch)
            return found

        waiting = await open_branches()
        if waiting:
            # A branch that has written nothing since the day does not hold it open: once
            # its clock is sealed past the day, every op of the day it has is here.
            counts = await asyncio.gather(
                *(self._network.sealed_count(b, end, within) for b in waiting),
                return_exceptions=True,
            )
            for count in counts:
                if isinstance(count, BaseException) and not isinstance(count, DbankError):
                    raise count  # a bug, not a branch out of reach
            vector = self.version_vector
            waiting = [
                b
                for b, count in zip(waiting, counts, strict=True)
                if not isinstance(count, int) or vector[b] < count
            ]
        if waiting:
            names = ",".join(str(b) for b in waiting)
            raise DayNotClosed(
                f"{day.isoformat()} is not closed: branches {names} could not be reached to"
                " say they have no more ops of that day, and none of theirs later than that"
                " day has reached this branch yet; retry once they are reachable",
                branches=names,
            )

    def _today(self) -> dt.date:
        """Today (UTC) by the wall clock the branch's HLC follows."""
        return dt.datetime.fromtimestamp(self._wall_ms() / 1000, tz=dt.UTC).date()

    async def _posting(
        self, command: InterestCommand, op_id: OpId, unconfirmed: tuple[int, ...] = ()
    ) -> InterestResult:
        op = await self.op(op_id)
        body = op.body
        if not isinstance(body, Interest):
            raise Internal(f"op {op_id} is not an interest posting")
        posting = InterestPosting(body.through, op.id, body.amount, body.rate, body.day_balance)
        posted_now = op.request_id == command.request_id and op.caller == command.caller
        return InterestResult(
            body.account_id, op.currency, posting, posted_now, self.version_vector, unconfirmed
        )

    async def list_transactions(
        self, account_id: str, page_size: int, page_token: str, context: RequestContext
    ) -> HistoryPage:
        """One page of the account's history, oldest first, with the running balance. The
        first page fixes a snapshot of this replica; the token carries it, so later pages
        (at any branch, which first covers it) neither lose nor repeat an entry while
        writes go on. AIP-158: ``page_size`` 0 means 100, at most 1000.

        Raises:
            InvalidArgument: ``INVALID_PAGE_SIZE``, ``INVALID_PAGE_TOKEN``.
            AccountNotFound, SessionNotCovered.
        """
        check_id(account_id, field="account_id")
        size = bounded_page_size(page_size)
        token = PageToken.decode(page_token, account_id) if page_token else None
        await self.cover(context.session, context.budget, source=context.session_source)
        if token is not None:
            await self.cover(token.snapshot, context.budget)
        record = self._writer.state.account(account_id)
        snapshot = token.snapshot if token is not None else self.version_vector
        page = await HistoryReader(self._store).page(account_id, size, token, snapshot)
        next_token = page.next_token.encode() if page.next_token is not None else ""
        return HistoryPage(
            account_id, record.currency, page.entries, next_token, self.version_vector
        )

    async def statement(
        self, account_id: str, first_day: dt.date, last_day: dt.date, context: RequestContext
    ) -> StatementResult:
        """The account's statement for ``first_day`` to ``last_day`` (UTC, both included),
        read from one state of this replica: closing = opening + the entries' changes.
        Days not yet over may still gain entries from other branches.

        Raises:
            InvalidArgument: ``INVALID_DATE_RANGE``, ``RANGE_TOO_LARGE``.
            AccountNotFound, SessionNotCovered.
        """
        check_id(account_id, field="account_id")
        check_range(first_day, last_day)
        await self.cover(context.session, context.budget, source=context.session_source)
        state = self._writer.state
        record = state.account(account_id)
        balance, snapshot = state.balance(account_id), self.version_vector
        reader = HistoryReader(self._store)
        statement = await reader.statement(
            account_id,
            record.currency,
            (first_day, last_day),
            balance_now=balance,
            snapshot=snapshot,
        )
        return StatementResult(statement, snapshot)


def _op_id(outcome: Outcome) -> OpId:
    if outcome.op_id is None:
        raise Internal("a successful outcome without an op")
    return outcome.op_id


def _background(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    task = asyncio.create_task(coroutine)
    # Best-effort work: a failure is logged by the network layer, not raised here.
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task
