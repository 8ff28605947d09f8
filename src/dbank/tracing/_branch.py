"""What a branch records: the customer requests it serves and the ops it replicates.

A branch records only when it is given a trace directory (``BranchConfig.trace_dir``):
its server opens the trace at start (``open_branch_trace``, which creates the file), hands
it to its interceptor, replication links and streams, and closes it at stop. Without a
directory there is no trace object at all, and every hook on the request and replication
paths is one ``None`` check.

An op belongs to a customer request if its request id is tagged (``tagged_request_id``);
others (a grant, an untagged client's write) tick the clock when they travel but are not
recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dbank.ledger import Deposit, Op, Withdrawal
from dbank.ledger.codec import decode_op
from dbank.tracing._events import Role, Step
from dbank.tracing._files import TraceFile, branch_file
from dbank.tracing._recorder import Recorder
from dbank.tracing._tags import CustomerRequest, request_of

__all__ = ["BranchTrace", "Traced", "open_branch_trace"]

Traced = tuple[int, str]
"""An op of a customer request: ``(request, interface)``."""

_INTERFACES: dict[type, str] = {Deposit: "deposit", Withdrawal: "withdraw"}

_RECORDING: set[Path] = set()
"""The trace files open in this process (several branches may share one): two recorders
of one file would spoil it."""


def open_branch_trace(directory: Path | None, branch_id: int) -> BranchTrace | None:
    """Start recording for branch ``branch_id`` into ``directory``; ``None`` without one.

    Raises:
        RuntimeError: this process records for that branch and directory already.
        OSError: the file cannot be created.
    """
    if directory is None:
        return None
    path = branch_file(directory, branch_id)
    if path in _RECORDING:
        raise RuntimeError(f"branch {branch_id} is recording into {path} already")
    trace = BranchTrace(branch_id, TraceFile(path))
    _RECORDING.add(path)
    return trace


class BranchTrace:
    """One branch's Lamport clock and events. Every method is one step of the protocol:
    it ticks the clock as that step's send or receive, records the step's events, and
    returns the stamp a message sent now carries."""

    def __init__(self, branch_id: int, file: TraceFile) -> None:
        self._file = file
        self._recorder = Recorder(Role.BRANCH, branch_id, file)
        self._executed: set[str] = set()
        """Request ids whose ``EXECUTED`` is recorded: at the first propagation of the
        request's op (the op is durable by then), else at the reply."""

    @property
    def branch_id(self) -> int:
        return self._recorder.pid

    # Customer requests (the server's Lamport interceptor) ------------------------------

    def request_received(self, stamp: int, who: CustomerRequest, interface: str) -> None:
        customer, request = who
        clock = self._recorder.clock.receive(stamp)
        self._recorder.record(clock, request, interface, Step.REQUEST_RECEIVED, customer)

    def replying(self, who: CustomerRequest, interface: str, request_id: str) -> int:
        """The reply's stamp, after recording the request's execution if no propagation
        did (a query, a refused write, a bank of one branch), and the reply."""
        customer, request = who
        self._executed_once(request, interface, request_id)
        clock = self._recorder.clock.tick()
        self._recorder.record(clock, request, interface, Step.REPLY_SENT, customer)
        return clock

    def _executed_once(self, request: int, interface: str, request_id: str) -> None:
        if request_id:
            if request_id in self._executed:
                return
            self._executed.add(request_id)
        self._recorder.record(self._recorder.clock.tick(), request, interface, Step.EXECUTED)

    # Replication out (the link to ``peer``) --------------------------------------------

    def sending(self, ops: Sequence[Op], peer: int) -> int:
        """The stamp of a batch of ``ops`` about to go to ``peer``."""
        clock = self._recorder.clock
        sent = False
        for op in ops:
            traced = _traced(op)
            if traced is None:
                continue
            request, interface = traced
            if op.id.origin == self.branch_id:
                self._executed_once(request, interface, op.request_id)
            self._recorder.record(clock.tick(), request, interface, Step.PROPAGATION_SENT, peer)
            sent = True
        return clock.time if sent else clock.tick()

    def acked(self, ops: Sequence[Op], stamp: int, peer: int) -> None:
        """``peer`` acknowledged the batch of ``ops`` with ``stamp``."""
        self._received(list(filter(None, map(_traced, ops))), stamp, peer, Step.ACK_RECEIVED)

    # Replication in (the stream from ``peer``) -----------------------------------------

    def received(self, encoded: Sequence[bytes], stamp: int, peer: int) -> list[Traced]:
        """A batch came from ``peer``; returns its traced ops, for ``acking``."""
        traced = [t for t in map(_traced, map(decode_op, encoded)) if t is not None]
        self._received(traced, stamp, peer, Step.PROPAGATION_RECEIVED)
        return traced

    def acking(self, received: Sequence[Traced], peer: int) -> int:
        """The batch is durable here: the stamp of its acknowledgement to ``peer``."""
        clock = self._recorder.clock
        for request, interface in received:
            self._recorder.record(clock.tick(), request, interface, Step.PROPAGATION_EXECUTED)
        return clock.tick()

    def _received(self, traced: Sequence[Traced], stamp: int, peer: int, step: Step) -> None:
        # One message, one receive; its ops' events follow it one tick apart.
        clock = self._recorder.clock
        time = clock.receive(stamp)
        for position, (request, interface) in enumerate(traced):
            self._recorder.record(
                time if position == 0 else clock.tick(), request, interface, step, peer
            )

    def close(self) -> None:
        """Stop recording; the file holds every event recorded."""
        _RECORDING.discard(self._file.path)
        self._file.close()


def _traced(op: Op) -> Traced | None:
    request = request_of(op.request_id)
    if request is None:
        return None
    return request, _INTERFACES.get(type(op.body), type(op.body).__name__.lower())
