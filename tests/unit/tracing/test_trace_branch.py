"""What a branch records, step by step, as the server, its links and its streams call it.

Two branches' traces are driven through one deposit the way the real protocol drives
them (request, batch out, batch in, ack, reply), with the stamps passed between them as
the messages would carry them; the files they write are then read back.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dbank.ledger import Deposit, Grant, Op, OpId, VersionVector
from dbank.ledger.codec import encode_op
from dbank.tracing import (
    CustomerTrace,
    Role,
    Step,
    TraceEvent,
    TraceMissing,
    open_branch_trace,
    read_trace,
    request_of,
    tagged_request_id,
)


def _op(origin: int, seq: int, request_id: str, amount: int = 10) -> Op:
    return Op(
        OpId(origin, seq),
        VersionVector({origin: seq - 1}),
        1_000 + seq,
        request_id,
        "JPY",
        Deposit("account", amount),
    )


def test_one_deposit_through_two_branches(tmp_path: Path) -> None:
    one, two = open_branch_trace(tmp_path, 1), open_branch_trace(tmp_path, 2)
    assert one is not None
    assert two is not None
    deposit = _op(1, 1, tagged_request_id(7))
    grant = Op(OpId(1, 2), VersionVector({1: 1}), 1_002, "borrow", "JPY", Grant("account", 5, 2))

    one.request_received(3, (4, 7), "deposit")  # customer 4 sent request 7 at 3
    batch = one.sending([deposit, grant], peer=2)
    received = two.received([encode_op(deposit), encode_op(grant)], batch, peer=1)
    ack = two.acking(received, peer=1)
    one.acked([deposit, grant], ack, peer=2)
    reply = one.replying((4, 7), "deposit", deposit.request_id)
    one.close()
    two.close()

    events = _branch_events(tmp_path)
    assert [(e.pid, e.clock, e.step, e.peer) for e in events] == [
        (1, 4, Step.REQUEST_RECEIVED, 4),
        (1, 5, Step.EXECUTED, None),  # at the first propagation: the op is durable
        (1, 6, Step.PROPAGATION_SENT, 2),  # the grant is no customer's: not recorded
        (1, 10, Step.ACK_RECEIVED, 2),  # the ack was sent at 9, after the execution at 8
        (1, 11, Step.REPLY_SENT, 4),
        (2, 7, Step.PROPAGATION_RECEIVED, 1),
        (2, 8, Step.PROPAGATION_EXECUTED, None),
    ]
    assert (batch, ack, reply) == (6, 9, 11)
    assert {(e.request, e.interface) for e in events} == {(7, "deposit")}


def test_a_request_that_never_propagates_is_executed_before_its_reply(tmp_path: Path) -> None:
    trace = open_branch_trace(tmp_path, 1)
    assert trace is not None
    trace.request_received(0, (1, 2), "query")
    trace.replying((1, 2), "query", "")
    trace.request_received(0, (1, 3), "withdraw")
    trace.replying((1, 3), "withdraw", tagged_request_id(3))  # refused: no op
    trace.close()
    assert [(e.request, e.clock, e.step) for e in _branch_events(tmp_path, [1])] == [
        (2, 1, Step.REQUEST_RECEIVED),
        (2, 2, Step.EXECUTED),
        (2, 3, Step.REPLY_SENT),
        (3, 4, Step.REQUEST_RECEIVED),
        (3, 5, Step.EXECUTED),
        (3, 6, Step.REPLY_SENT),
    ]


def test_an_op_sent_to_several_peers_is_executed_once(tmp_path: Path) -> None:
    trace = open_branch_trace(tmp_path, 1)
    assert trace is not None
    deposit = _op(1, 1, tagged_request_id(5))
    trace.sending([deposit], peer=2)
    trace.sending([deposit], peer=3)
    trace.replying((9, 5), "deposit", deposit.request_id)
    trace.close()
    steps = [e.step for e in _branch_events(tmp_path, [1])]
    assert steps.count(Step.EXECUTED) == 1
    assert steps[0] is Step.EXECUTED


def test_a_batch_without_traced_ops_still_ticks(tmp_path: Path) -> None:
    trace = open_branch_trace(tmp_path, 1)
    assert trace is not None
    assert trace.sending([_op(1, 1, "not-a-customer-request")], peer=2) == 1
    assert trace.acking(trace.received([], 5, peer=2), peer=2) == 7
    trace.close()
    assert _branch_events(tmp_path, [1]) == []


def test_a_branch_records_into_one_directory_once_at_a_time(tmp_path: Path) -> None:
    trace = open_branch_trace(tmp_path, 1)
    assert trace is not None
    with pytest.raises(RuntimeError, match="already"):
        open_branch_trace(tmp_path, 1)
    trace.close()
    again = open_branch_trace(tmp_path, 1)
    assert again is not None
    again.close()
    assert open_branch_trace(None, 1) is None


def test_customers_stamp_only_the_calls_of_a_request(tmp_path: Path) -> None:
    customers = CustomerTrace(tmp_path)
    assert customers.sending() == ()  # outside a request: no stamp
    with customers.request(customer=2, request=9, interface="deposit", branch=3) as request_id:
        assert request_of(request_id) == 9
        metadata = dict(customers.sending())
        customers.replied([("dbank-lamport", "5")])
    with customers.request(customer=2, request=10, interface="query", branch=1):
        second = dict(customers.sending())
        customers.replied(None)  # an answer without a stamp is a receipt all the same
    customers.close()
    assert metadata == {"dbank-lamport": "1", "dbank-customer-request": "2/9"}
    assert second["dbank-lamport"] == "7"
    assert read_trace(tmp_path, []) == [
        TraceEvent(Role.CUSTOMER, 2, 1, 9, "deposit", Step.REQUEST_SENT, 3),
        TraceEvent(Role.CUSTOMER, 2, 7, 10, "query", Step.REQUEST_SENT, 1),
    ]


def test_a_missing_or_broken_file_is_reported(tmp_path: Path) -> None:
    CustomerTrace(tmp_path).close()
    with pytest.raises(TraceMissing, match=r"branch-1\.jsonl: cannot read"):
        read_trace(tmp_path, [1])
    (tmp_path / "branch-1.jsonl").write_text("garbage\n")
    with pytest.raises(TraceMissing, match="not a trace event"):
        read_trace(tmp_path, [1])


def _branch_events(directory: Path, branch_ids: list[int] | None = None) -> list[TraceEvent]:
    CustomerTrace(directory).close()  # read_trace wants the customers' file too
    return read_trace(directory, branch_ids or [1, 2])
