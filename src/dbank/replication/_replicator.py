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
from collections.abc import AsyncIterator, Callable

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
from dbank.branch import Branch, RequestContext, WriteResult
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
        self.links = {
            peer_id: OutboundLink(branch, peer, on_links_changed, trace)
            for peer_id, peer in self._peers.items()
        }
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
        for link in self.links.values():
            self._tasks.append(asyncio.create_task(link.run(), name=f"link-{link.peer.branch_id}"))
        self._tasks.append(asyncio.create_task(self._recover_own_log(), name="recover"))
        self._tasks.append(asyncio.create_task(self._catch_up(), name="catch-up"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(peer.close() for peer in self._peers.values()))

    def all_connected(self) -> bool:
        return all(link.connected for link in self.links.values())

    async def _recover_own_log(self) -> None:
        try:
            attempts = [asyncio.create_task(link.attempted.wait()) for link in self.links.values()]
            if attempts:
                await asyncio.wait(attempts, timeout=RECOVERY_WAIT)
                for attempt in attempts:
                    attempt.cancel()
            me = self._branch.branch_id
            for link in self.links.values():
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
        while True:
            silent = self.inbound.silent(self._peers)
            if not silent:
                await self.inbound.wait_closed()
                continue
            await asyncio.sleep(CATCH_UP_EVERY)
            silent = self.inbound.silent(self._peers)
            reachable = [link.peer for link in self.links.values() if link.connected]
            if not silent or not reachable:
                continue
            mine = self._branch.version_vector
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
            await self._pull_from(source, None, CATCH_UP_WAIT)

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
        if not self.links:
            return []  # a bank of one branch: nothing to wait for
        connected = [link for link in self.links.values() if link.connected]
        confirmed = await asyncio.gather(*(link.confirms(op_id, within) for link in connected))
        missing = {
            link.peer.branch_id for link, ok in zip(connected, confirmed, strict=True) if not ok
        }
        missing.update(link.peer.branch_id for link in self.links.values() if link not in connected)
        return sorted(missing)

    async def pull(self, wanted: VersionVector, within: float) -> None:
        if self._commit_notices is not None:
            # Another process of this branch may have committed what the caller saw: the
            # store has it at once, the peers only once some link has carried it.
            with contextlib.suppress(DbankError):
                await self._branch.refresh()
            if self._branch.version_vector.covers(wanted):
                return
        pulls = [self._pull_from(peer, wanted, within) for peer in self._peers.values()]
        await asyncio.gather(*pulls, return_exceptions=True)

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

    async def _pull_from(self, peer: Peer, wanted: VersionVector | None, within: float) -> None:
        """Fetch ops from ``peer`` until this replica covers ``wanted`` (None: until the
        peer has nothing more to give), the peer has nothing more to give, or time is up."""
        deadline = time.monotonic() + within
        while _left(deadline) > 0:
            if wanted is not None and self._branch.version_vector.covers(wanted):
                return
            have = self._branch.version_vector
            request = pb.FetchOpsRequest(
                branch_id=self._branch.branch_id, have=vector_to_wire(have), limit=FETCH_LIMIT
            )
            try:
                reply = await peer.call(peer.replication.FetchOps, request, _left(deadline))
                self._heard[peer.branch_id] = vector_from_wire(reply.applied)
                if not reply.ops:
                    return
                await self._branch.receive(reply.ops)
            except DbankError as exc:
                log.debug("pulling from branch %d failed: %s", peer.branch_id, exc)
                return
            if self._branch.version_vector == have:
                return


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())
