"""The branch's side of the bank's network: its links to every peer, and the requests it
makes of them (``dbank.branch.Network``): borrowing escrow, confirming writes, pulling ops,
forwarding account openings to their owner branch and retried writes to their request's
branch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable

import grpc

from dbank._log_limit import RepeatLimiter
from dbank._proto import bank_pb2
from dbank._proto import replication_pb2 as pb
from dbank._wire import (
    ACCOUNT_TYPE_TO_WIRE,
    op_id_from_wire,
    vector_from_wire,
    vector_to_wire,
)
from dbank.branch import Branch, RequestContext, Streams, WriteResult
from dbank.ledger import (
    DbankError,
    DepositCommand,
    InterestCommand,
    OpenAccountCommand,
    OpId,
    TransferCommand,
    VersionVector,
    WithdrawCommand,
)
from dbank.replication._forward import forward_write
from dbank.replication._inbound import InboundStreams
from dbank.replication._link import OutboundLink
from dbank.replication._peer import READY_WAIT, Peer
from dbank.security import forwarded_metadata
from dbank.tracing import BranchTrace

log = logging.getLogger(__name__)

FETCH_LIMIT = 2000
RECOVERY_WAIT = 3.0
"""How long a starting branch waits for its peers' first answer before it originates."""
CATCH_UP_EVERY = 0.5
"""While some peer streams nothing to this branch, how often it fetches what it lacks from
the others: a stream that breaks usually comes back sooner."""
CATCH_UP_WAIT = 5.0
CANCEL_AGAIN_AFTER = 0.5
"""How long ``close`` waits for a cancelled task before it cancels it again."""
CATCH_UP_IDLE = 2.0
"""The longest pause between two catch-up rounds that bring nothing (large banks only)."""
SOURCE_HEAD_START = 0.25
"""How long a pull for a session token asks only the branch the token came from, before
it asks every peer too."""
FULL_MESH_BRANCHES = 8
"""Banks of up to this many branches stream every op to every branch from the start (a
link per ordered pair). A larger bank starts with about log2(n) links per branch
(``stream_targets``), and everything else travels by catch-up or on demand: a full mesh of
50 branches is 2,450 connections, and their TLS handshakes were most of what a short-lived
bank of 50 spent."""


def stream_targets(branch_id: int, branch_ids: Iterable[int]) -> list[int]:
    """The peers ``branch_id`` streams its own ops to from the start: all of them in a bank
    of up to ``FULL_MESH_BRANCHES``; else, with the ids in order around a ring, the ones
    1, 2, 4, 8... places after it, so that every branch is a few hops from every other."""
    ordered = sorted(set(branch_ids) | {branch_id})
    if len(ordered) <= FULL_MESH_BRANCHES:
        return [i for i in ordered if i != branch_id]
    at, size = ordered.index(branch_id), len(ordered)
    targets, step = set(), 1
    while step < size:
        targets.add(ordered[(at + step) % size])
        step *= 2
    return sorted(targets)


class Replicator:
    """Implements ``Network`` for a branch. ``await start()``, then ``await close()``."""

    def __init__(
        self,
        branch: Branch,
        on_links_changed: Callable[[], None] = lambda: None,
        trace: BranchTrace | None = None,
        *,
        commit_notices: Callable[[], AsyncIterator[None]] | None = None,
        channel_credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """``commit_notices``: given when other processes may serve the same branch from
        the same store (``SharedStore.commit_notices``). This replica then takes in their
        commits (``Branch.refresh``) whenever the store tells of one, once attached, and
        before it pulls from peers. ``channel_credentials``: mutual TLS to the peers
        (None: plaintext, for ``--insecure`` banks)."""
        self._branch = branch
        self._commit_notices = commit_notices
        self._peers = {
            peer_id: Peer.connect(peer_id, address, channel_credentials)
            for peer_id, address in sorted(branch.config.peers.items())
        }
        self._on_links_changed = on_links_changed
        self._trace = trace
        self._on_demand = branch.config.streams is Streams.ON_DEMAND
        targets = [] if self._on_demand else stream_targets(branch.branch_id, self._peers)
        self.links = {
            peer_id: OutboundLink(branch, self._peers[peer_id], on_links_changed, trace)
            for peer_id in targets
        }
        """The streams of this branch's ops: to ``stream_targets`` from the start (unless
        the branch streams on demand), to any other peer once a write waits for its
        confirmation (``confirm``)."""
        self._started = False
        self._idle = CATCH_UP_EVERY / 2
        self.inbound = InboundStreams()
        """The peers streaming to this branch; the Replication servicer keeps it."""
        self._heard: dict[int, VersionVector] = {}
        self._quiet = RepeatLimiter(log)
        """Lines that repeat while a fault lasts (a peer that does not answer borrows, a
        store that fails), each logged once and then counted."""
        self._tasks: list[asyncio.Task[None]] = []

    def attach(self) -> None:
        """Be the branch's network (borrowing, forwarding, pulling) without links: how a
        process serves that does not hold its branch's replication lease."""
        if self._branch.network is self:
            return
        self._branch.attach_network(self)
        if self._commit_notices is not None:
            notices = self._commit_notices()
            self._tasks.append(asyncio.create_task(self._take_in_commits(notices), name="take-in"))

    async def start(self) -> None:
        """Attach to the branch and open the links. Until the peers have said how much of
        this branch's own log they hold, and any surplus has been fetched back, the branch
        originates nothing (design §4, I3)."""
        self.attach()
        self._branch.pause_origination()
        self._started = True
        for link in self.links.values():
            self._run(link)
        self._tasks.append(asyncio.create_task(self._recover_own_log(), name="recover"))
        for peer_id in self._branch.config.connect_early & self._peers.keys():
            self._peers[peer_id].connect_now()
        if not self._on_demand:
            self._tasks.append(asyncio.create_task(self._catch_up(), name="catch-up"))

    async def close(self) -> None:
        self._started = False  # no stream opens on demand from now on
        # Cancelled again until done: on Python 3.11 a cancellation that lands as an
        # ``asyncio.timeout`` inside the task expires can be taken for the timeout and
        # lost, and the task (a catch-up waiting for a peer that went away) lives on.
        pending = [task for task in self._tasks if not task.done()]
        while pending:
            for task in pending:
                task.cancel()
            _, still = await asyncio.wait(pending, timeout=CANCEL_AGAIN_AFTER)
            pending = list(still)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(peer.close() for peer in self._peers.values()))

    def _run(self, link: OutboundLink) -> None:
        self._tasks.append(asyncio.create_task(link.run(), name=f"link-{link.peer.branch_id}"))

    def _link_to(self, peer_id: int) -> OutboundLink | None:
        """The stream to ``peer_id``, opened now if this branch had none (only once it runs
        its links: a process without the replication lease streams nothing)."""
        link = self.links.get(peer_id)
        if link is None and self._started:
            peer = self._peers[peer_id]
            link = OutboundLink(self._branch, peer, self._on_links_changed, self._trace)
            self.links[peer_id] = link
            self._run(link)
        return link

    def peer(self, peer_id: int) -> Peer:
        """The peer ``peer_id`` as this branch reaches it (its channel, its stubs)."""
        return self._peers[peer_id]

    def all_connected(self) -> bool:
        return all(link.connected for link in self.links.values())

    async def _recover_own_log(self) -> None:
        try:
            await self._first_attempts()
            me = self._branch.branch_id
            # (A copy: a write at ALL may open a stream meanwhile.)
            for link in list(self.links.values()):
                held = link.acked.vector[me]
                if link.connected and held > self._branch.version_vector[me]:
                    log.warning(
                        "branch %d holds %d of our ops, we hold %d: fetching them back",
                        link.peer.branch_id,
                        held,
                        self._branch.version_vector[me],
                    )
                    await self._pull_from(link.peer, VersionVector({me: held}), RECOVERY_WAIT)
        finally:
            self._branch.resume_origination()

    async def _first_attempts(self) -> None:
        """Wait until every link made its first connection attempt (up to
        ``RECOVERY_WAIT``)."""
        attempts = [asyncio.create_task(link.attempted.wait()) for link in self.links.values()]
        if attempts:
            await asyncio.wait(attempts, timeout=RECOVERY_WAIT)
            for attempt in attempts:
                attempt.cancel()

    async def _take_in_commits(self, notices: AsyncIterator[None]) -> None:
        """Take in the ops other processes serving this branch committed to the shared
        store whenever it tells of them, so that the links send them too and reads show
        them."""
        async for _ in notices:
            try:
                await self._branch.refresh()
            except DbankError as exc:
                self._quiet.warning(
                    ("take-in", exc.reason), "cannot take in other processes' commits: %s", exc
                )

    async def _catch_up(self) -> None:
        """While some peer's stream to this branch is down, fetch what this branch lacks
        from the peers it can reach, one per round: first one known to be ahead on a silent
        peer's ops, else the next in turn. Ops of a peer that is cut off from this branch,
        or gone, still arrive through anyone who has them."""
        turn = 0
        # While the links make their first connections no peer is reachable yet: that is
        # not the state in which to ask every peer at once (with 50 branches starting on
        # two cores, TLS handshakes take seconds, and 50 such rounds of 49 connections
        # each made a secure run three times the connections of a plaintext one).
        await self._first_attempts()
        while True:
            silent = self.inbound.silent(self._peers)
            if not silent:
                await self.inbound.wait_closed()
                continue
            await asyncio.sleep(CATCH_UP_EVERY)
            silent = self.inbound.silent(self._peers)
            # (An idle stream learns that its peer went away only when it next sends; the
            # channel knows at once.)
            reachable = [
                link.peer for link in self.links.values() if link.connected and link.peer.up()
            ]
            mine = self._branch.version_vector
            if silent and not reachable and len(self._peers) >= FULL_MESH_BRANCHES:
                # None of the few peers this branch streams to is up, but others may be and
                # hold what it lacks: ask every silent one at once, each call waiting only a
                # little for its connection (a rare state, for as long as it lasts).
                others = [peer for peer in self._peers.values() if peer.branch_id in silent]
                pulls = (
                    self._pull_from(p, None, CATCH_UP_WAIT, ready_within=READY_WAIT) for p in others
                )
                await asyncio.gather(*pulls)
                continue
            if not silent or not reachable:
                continue
            ahead = [
                peer
                for peer in reachable
                if any(self._heard.get(peer.branch_id, mine)[o] > mine[o] for o in silent)
            ]
            if ahead:
                source = ahead[0]
            else:
                source = reachable[turn % len(reachable)]
                turn += 1
            # A peer without a stream of ours may be down: wait for it only a little.
            await self._pull_from(source, None, CATCH_UP_WAIT, ready_within=READY_WAIT)
            if len(self._peers) >= FULL_MESH_BRANCHES and self._branch.version_vector == mine:
                await self._idle_after_empty_round(mine)

    async def _idle_after_empty_round(self, mine: VersionVector) -> None:
        """In a bank without a stream per pair some peers never stream to this branch, so
        catch-up never ends: after a round that brought nothing, wait longer before the
        next (up to ``CATCH_UP_IDLE``), unless some op arrives meanwhile, which says the
        bank is busy again. A quiet bank of 50 then asks 25 times a second, not 100."""
        self._idle = min(self._idle * 2, CATCH_UP_IDLE)
        busy = await self._branch.committed.wait_for(lambda v: v != mine, self._idle)
        if busy:
            self._idle = CATCH_UP_EVERY

    # Network ------------------------------------------------------------------------------

    async def borrow(self, account_id: str, shortfall: int, within: float) -> list[int]:
        borrow_id = f"{self._branch.branch_id}-{uuid.uuid4().hex}"
        deadline = time.monotonic() + within

        async def ask(peer: Peer) -> None:
            request = pb.RequestRightsRequest(
                branch_id=self._branch.branch_id,
                account_id=account_id,
                shortfall=shortfall,
                borrow_id=borrow_id,
            )
            reply = await peer.call(
                peer.replication.RequestRights, request, _left(deadline), ready_within=READY_WAIT
            )
            if reply.granted > 0:
                # The rights are ours only once the Grant op is applied here, causally.
                wanted = await self._branch.receive([reply.grant_op])
                if not self._branch.version_vector.covers(wanted):
                    await self._pull_from(peer, wanted, _left(deadline))

        peers = list(self._peers.values())
        results = await asyncio.gather(*(ask(p) for p in peers), return_exceptions=True)
        unreachable = []
        for peer, result in zip(peers, results, strict=True):
            if isinstance(result, BaseException):
                self._quiet.info(
                    ("borrow", peer.branch_id),
                    "branch %d did not answer a borrow: %s",
                    peer.branch_id,
                    result,
                )
                unreachable.append(peer.branch_id)
        return unreachable

    async def confirm(self, op_id: OpId, within: float) -> list[int]:
        if not self._peers:
            return []  # a bank of one branch: nothing to wait for
        if not self._started:
            # A process without the replication lease streams nothing: no one confirms.
            return sorted(p for p in self._peers if p != op_id.origin)
        # Every branch is to confirm: a peer this branch did not stream to yet gets a
        # stream now, and a stream still making its first connection is waited for; one
        # that was up and is down is not (the write answers without that branch).
        # (The op's own origin has it: a retry forwarded here confirms an op of a peer.)
        links = {p: self._link_to(p) for p in self._peers if p != op_id.origin}
        deadline = time.monotonic() + within

        async def confirms(link: OutboundLink | None) -> bool:
            if link is None:
                return False
            if not link.attempted.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(within):
                        await link.attempted.wait()
            return link.connected and await link.confirms(op_id, _left(deadline))

        confirmed = await asyncio.gather(*(confirms(link) for link in links.values()))
        return sorted(i for i, ok in zip(links, confirmed, strict=True) if not ok)

    async def pull(self, wanted: VersionVector, within: float, *, source: int = 0) -> None:
        if self._commit_notices is not None:
            # Another process of this branch may have committed what the caller saw: the
            # store has it at once, the peers only once some link has carried it.
            with contextlib.suppress(DbankError):
                await self._branch.refresh()
            if self._branch.version_vector.covers(wanted):
                return
        deadline = time.monotonic() + within
        first = self._peers.get(source)
        pulls: list[asyncio.Task[None]] = []
        try:
            if first is not None:
                # The token's source held all of it: one fetch there usually covers it,
                # and costs one connection instead of one to every peer.
                pulls.append(asyncio.create_task(self._pull_from(first, wanted, within)))
                await asyncio.wait(pulls, timeout=min(SOURCE_HEAD_START, within))
                if self._branch.version_vector.covers(wanted):
                    return
            others = [peer for peer in self._peers.values() if peer is not first]
            for peer in others:
                pulls.append(asyncio.create_task(self._pull_from(peer, wanted, _left(deadline))))
            await asyncio.gather(*pulls, return_exceptions=True)
        finally:
            for pull in pulls:
                pull.cancel()

    async def sealed_count(self, branch: int, hlc: int, within: float) -> int:
        deadline = time.monotonic() + within
        request = pb.FetchOpsRequest(
            branch_id=self._branch.branch_id,
            have=vector_to_wire(self._branch.version_vector),
            limit=FETCH_LIMIT,
            seal_hlc=hlc,
        )
        peer = self._peers[branch]
        reply = await peer.call(peer.replication.FetchOps, request, within, ready_within=READY_WAIT)
        await self._branch.receive(reply.ops)
        count = vector_from_wire(reply.applied)[branch]
        await self._pull_from(peer, VersionVector({branch: count}), _left(deadline))
        return count

    async def open_at_owner(
        self, owner: int, command: OpenAccountCommand, within: float
    ) -> tuple[OpId, VersionVector]:
        request = bank_pb2.CreateAccountRequest(
            account_id=command.account_id,
            type=ACCOUNT_TYPE_TO_WIRE[command.type],
            currency=command.currency,
            owner=command.owner,
            request_id=command.request_id,
            write_concern=bank_pb2.WRITE_CONCERN_ALL,
        )
        peer = self._peers[owner]
        reply = await peer.call(
            peer.bank.CreateAccount, request, within, metadata=forwarded_metadata()
        )
        return op_id_from_wire(reply.op_id), vector_from_wire(reply.session)

    async def interest_at_owner(
        self, owner: int, command: InterestCommand, within: float
    ) -> tuple[OpId, VersionVector]:
        request = bank_pb2.CalculateInterestRequest(
            account_id=command.account_id,
            annual_rate=command.annual_rate,
            as_of=command.as_of.isoformat(),
            request_id=command.request_id,
            write_concern=bank_pb2.WRITE_CONCERN_ALL,
        )
        peer = self._peers[owner]
        reply = await peer.call(
            peer.bank.CalculateInterest, request, within, metadata=forwarded_metadata()
        )
        return op_id_from_wire(reply.op_id), vector_from_wire(reply.session)

    async def forward(
        self,
        branch: int,
        command: DepositCommand | WithdrawCommand | TransferCommand,
        context: RequestContext,
    ) -> WriteResult:
        return await forward_write(
            self._peers[branch], command, context.session, context.wait_all, context.budget
        )

    async def _pull_from(
        self,
        peer: Peer,
        wanted: VersionVector | None,
        within: float,
        *,
        ready_within: float | None = None,
    ) -> None:
        """Fetch ops from ``peer`` until this replica covers ``wanted`` (None: until the
        peer has nothing more to give), the peer has nothing more to give, or time is up;
        waiting for its connection at most ``ready_within`` seconds, if given."""
        deadline = time.monotonic() + within
        while _left(deadline) > 0:
            if wanted is not None and self._branch.version_vector.covers(wanted):
                return
            have = self._branch.version_vector
            request = pb.FetchOpsRequest(
                branch_id=self._branch.branch_id, have=vector_to_wire(have), limit=FETCH_LIMIT
            )
            try:
                reply = await peer.call(
                    peer.replication.FetchOps,
                    request,
                    _left(deadline),
                    ready_within=ready_within,
                )
                self._heard[peer.branch_id] = vector_from_wire(reply.applied)
                if not reply.ops:
                    return
                await self._branch.receive(reply.ops)
            except DbankError as exc:
                log.debug("pulling from branch %d failed: %s", peer.branch_id, exc)
                self._heard.pop(peer.branch_id, None)  # not the one to ask next time
                return
            if self._branch.version_vector == have:
                return


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
