"""Requests at the edge of what a branch takes, sent to real secure branch processes exactly
as a careless or hostile client would: bytes that are no message, strings that are not
UTF-8 or a megabyte long, enum numbers no enum has, sessions naming other banks' branches,
dates past what the store holds. Each gets ``INVALID_ARGUMENT`` with its ``ErrorInfo``
reason, nothing changes, and the branch logs no traceback."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from conftest import unique_id
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from support.secure import PKI, channel, start_branch, wait_serving

from dbank._proto import bank_pb2 as pb
from dbank._proto import replication_pb2 as rpb
from dbank._proto.bank_pb2_grpc import BankStub
from dbank.hosting import HOST, BranchProcess, free_ports
from dbank.server import REPLICATION_SERVICE

BANK_METHODS = {
    method.name: method.input_type._concrete_class
    for method in pb.DESCRIPTOR.services_by_name["Bank"].methods
}
REPLICATION_UNARY = {"FetchOps": rpb.FetchOpsRequest, "RequestRights": rpb.RequestRightsRequest}


class Refused:
    """What a refused call answered: its code, message, ErrorInfo and trailers' size."""

    def __init__(self, error: grpc.RpcError) -> None:
        self.code = error.code()
        self.message = error.details() or ""
        status = rpc_status.from_call(error)
        info = error_details_pb2.ErrorInfo()
        found = status is not None and any(d.Unpack(info) for d in status.details)
        self.reason = info.reason if found else None
        self.metadata = dict(info.metadata)
        self.trailers = sum(len(k) + len(v) for k, v in error.trailing_metadata() or ())


@pytest.fixture(scope="module")
def branches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, BranchProcess]]:
    """Two secure branches of one bank, each the other's peer."""
    root = tmp_path_factory.mktemp("edges")
    peer_ports = dict(zip((1, 2), free_ports(2), strict=True))
    started: dict[int, BranchProcess] = {}
    try:
        for i, other in ((1, 2), (2, 1)):
            started[i] = start_branch(
                i,
                root / f"data-{i}",
                peers={other: f"{HOST}:{peer_ports[other]}"},
                peer_listen=f"{HOST}:{peer_ports[i]}",
            )
        for process in started.values():
            wait_serving(process.address, service=REPLICATION_SERVICE)
        yield started
    finally:
        for process in started.values():
            if process.process.poll() is None:
                process.stop()


@pytest.fixture(scope="module")
def bank(branches: dict[int, BranchProcess]) -> Iterator[grpc.Channel]:
    """A raw channel to branch 1's customer port, as the bank's admin."""
    with channel(branches[1].address) as opened:
        yield opened


@pytest.fixture(scope="module")
def peer(branches: dict[int, BranchProcess]) -> Iterator[grpc.Channel]:
    """A raw channel to branch 1's peer port, as branch 2 (its certificate)."""
    address = branches[1].peer_address
    assert address is not None
    with grpc.secure_channel(address, PKI.peer_credentials(2)) as opened:
        yield opened


def _send(opened: grpc.Channel, method: str, data: bytes) -> Refused | bytes:
    call = opened.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        reply: bytes = call(data, timeout=10)
    except grpc.RpcError as exc:
        return Refused(exc)
    return reply


def _refused(opened: grpc.Channel, method: str, data: bytes | Message) -> Refused:
    raw = data if isinstance(data, bytes) else data.SerializeToString()
    answer = _send(opened, method, raw)
    assert isinstance(answer, Refused), f"{method} took {raw[:40]!r}"
    return answer


def _undecodable(message_type: Callable[[bytes], object], rng: random.Random) -> bytes:
    """Random bytes that are certainly not a ``message_type`` (some random bytes are)."""
    while True:
        data = rng.randbytes(rng.randint(1, 200))
        try:
            message_type(data)
        except DecodeError:
            return data


def _no_traceback(process: BranchProcess) -> None:
    log = process.log()
    assert "Traceback" not in log, log[-3000:]


def _balance(account_id: str, branch: BranchProcess) -> int:
    with channel(branch.address) as opened:
        reply = BankStub(opened).GetBalance(pb.GetBalanceRequest(account_id=account_id))
    return reply.account.balance


@pytest.fixture(scope="module")
def account(bank: grpc.Channel) -> str:
    """An account with 1,000 at branch 1, on both branches (writes wait for all)."""
    account_id = unique_id("edge")
    stub = BankStub(bank)
    stub.CreateAccount(
        pb.CreateAccountRequest(
            account_id=account_id,
            owner="edge-owner",
            type=pb.ACCOUNT_TYPE_CHECKING,
            request_id=unique_id("open"),
        ),
        timeout=10,
    )
    stub.Deposit(
        pb.DepositRequest(account_id=account_id, amount=1000, request_id=unique_id("d")),
        timeout=10,
    )
    return account_id


# Bytes that are no message ---------------------------------------------------------------


def test_random_bytes_to_every_method_are_malformed_requests(
    branches: dict[int, BranchProcess], bank: grpc.Channel, peer: grpc.Channel, account: str
) -> None:
    rng = random.Random(17)
    calls = [(bank, f"/dbank.v1.Bank/{name}", cls) for name, cls in BANK_METHODS.items()]
    calls += [(peer, f"/dbank.v1.Replication/{n}", c) for n, c in REPLICATION_UNARY.items()]
    for opened, method, message_type in calls:
        for _ in range(3):
            refused = _refused(opened, method, _undecodable(message_type.FromString, rng))
            assert (refused.code, refused.reason) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                "MALFORMED_REQUEST",
            ), method
    assert _balance(account, branches[1]) == 1000
    _no_traceback(branches[1])


def test_a_string_that_is_not_utf8_and_nesting_past_the_limit(
    branches: dict[int, BranchProcess], bank: grpc.Channel, account: str
) -> None:
    valid = pb.DepositRequest(account_id=account, amount=5, request_id="r").SerializeToString()
    not_utf8 = valid + b"\x1a\x02\xff\xfe"  # request_id (field 3) again, as bytes 0xff 0xfe
    nested = valid + b"\x2b" * 100_000  # 100,000 groups, each opened inside the last
    for data in (not_utf8, nested):
        refused = _refused(bank, "/dbank.v1.Bank/Deposit", data)
        assert (refused.code, refused.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "MALFORMED_REQUEST",
        )
    assert _balance(account, branches[1]) == 1000
    _no_traceback(branches[1])


def test_a_malformed_message_in_a_replication_stream(
    branches: dict[int, BranchProcess], peer: grpc.Channel
) -> None:
    stream = peer.stream_stream(
        "/dbank.v1.Replication/Replicate", request_serializer=None, response_deserializer=None
    )
    with pytest.raises(grpc.RpcError) as refused:
        for _ in stream(iter([b"\xff" * 16]), timeout=10):
            pass
    answer = Refused(refused.value)
    assert (answer.code, answer.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_REQUEST")
    _no_traceback(branches[1])


# Strings past their bound ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "request_message", "field"),
    [
        ("Deposit", pb.DepositRequest(account_id="a" * 2**20, amount=1), "account_id"),
        ("Deposit", pb.DepositRequest(account_id="x", amount=1, currency="U" * 2**20), "currency"),
        (
            "CreateAccount",
            pb.CreateAccountRequest(account_id="x", owner="o" * 2**20, type=1),
            "owner",
        ),
        (
            "CalculateInterest",
            pb.CalculateInterestRequest(account_id="x", annual_rate="1" * 2**20),
            "annual_rate",
        ),
        ("GetBalances", pb.GetBalancesRequest(account_ids=["x", "y" * 2**20]), "account_ids"),
        (
            "ListTransactions",
            pb.ListTransactionsRequest(account_id="x", page_token="!" * 3000),
            "page_token",
        ),
    ],
)
def test_a_megabyte_field_is_refused_without_being_repeated(
    branches: dict[int, BranchProcess],
    bank: grpc.Channel,
    method: str,
    request_message: Message,
    field: str,
) -> None:
    refused = _refused(bank, f"/dbank.v1.Bank/{method}", request_message)
    assert (refused.code, refused.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "FIELD_TOO_LONG")
    assert refused.metadata == {"field": field, "max_length": "256"}
    assert refused.trailers < 1000
    _no_traceback(branches[1])


def test_an_error_repeats_only_a_short_prefix_of_a_value(bank: grpc.Channel) -> None:
    refused = _refused(bank, "/dbank.v1.Bank/Deposit", pb.DepositRequest(account_id="!" * 200))
    assert refused.reason == "INVALID_ACCOUNT_ID"
    assert "!" * 41 not in refused.message
    assert "(200 characters)" in refused.message


# Numbers and names outside their type ----------------------------------------------------


@pytest.mark.parametrize("concern", [99, -5])
def test_an_unknown_write_concern_is_refused_and_commits_nothing(
    branches: dict[int, BranchProcess], bank: grpc.Channel, account: str, concern: int
) -> None:
    request_id = unique_id("wc")
    request = pb.DepositRequest(
        account_id=account, amount=7, request_id=request_id, write_concern=concern
    )
    refused = _refused(bank, "/dbank.v1.Bank/Deposit", request)
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_WRITE_CONCERN",
    )
    assert refused.metadata["field"] == "write_concern"
    assert _balance(account, branches[1]) == 1000
    # Nothing was recorded under the request id: the same id with a valid concern is new.
    request.write_concern = pb.WRITE_CONCERN_ALL
    stub = BankStub(bank)
    assert stub.Deposit(request, timeout=10).balance == 1007
    stub.Withdraw(
        pb.WithdrawRequest(account_id=account, amount=7, request_id=unique_id("undo")), timeout=10
    )


def test_an_unknown_account_type_is_refused(bank: grpc.Channel) -> None:
    request = pb.CreateAccountRequest(account_id=unique_id("t"), owner="o", type=7)
    refused = _refused(bank, "/dbank.v1.Bank/CreateAccount", request)
    assert (refused.reason, refused.metadata["field"]) == ("INVALID_ACCOUNT_TYPE", "type")


def test_a_session_naming_a_branch_outside_the_bank_is_refused_at_once(
    bank: grpc.Channel, account: str
) -> None:
    session = pb.VersionVector()
    session.applied[99] = 1
    request = pb.GetBalanceRequest(account_id=account, session=session)
    # Waiting for branch 99 would take the whole budget of 5 s: the deadline says it did not.
    call = bank.unary_unary("/dbank.v1.Bank/GetBalance")
    with pytest.raises(grpc.RpcError) as refused:
        call(request.SerializeToString(), timeout=2.5)
    answer = Refused(refused.value)
    assert (answer.code, answer.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_BRANCH")
    assert answer.metadata["field"] == "session"


# Dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_date", "to_date", "field"),
    [
        ("2026-W01-1", "2026-12-31", "from_date"),  # an ISO week date: not YYYY-MM-DD
        ("20260101", "2026-12-31", "from_date"),
        ("2026-01-01", "9999-12-31", "to_date"),  # past the last day an HLC can hold
        ("9999-12-30", "9999-12-31", "from_date"),
        ("2026-12-31", "2026-01-01", "to_date"),  # an empty range
    ],
)
def test_statement_dates_are_strict_and_within_what_the_store_holds(
    branches: dict[int, BranchProcess],
    bank: grpc.Channel,
    account: str,
    from_date: str,
    to_date: str,
    field: str,
) -> None:
    request = pb.GetStatementRequest(account_id=account, from_date=from_date, to_date=to_date)
    refused = _refused(bank, "/dbank.v1.Bank/GetStatement", request)
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_DATE_RANGE",
    )
    assert refused.metadata["field"] == field
    _no_traceback(branches[1])


def test_the_bank_still_replicates_after_all_of_it(
    branches: dict[int, BranchProcess], bank: grpc.Channel, account: str
) -> None:
    stub = BankStub(bank)
    stub.Deposit(
        pb.DepositRequest(account_id=account, amount=1, request_id=unique_id("after")), timeout=10
    )
    stub.Withdraw(
        pb.WithdrawRequest(account_id=account, amount=1, request_id=unique_id("undo")), timeout=10
    )
    # Writes wait for every branch (WRITE_CONCERN_ALL, the default): branch 2 has them.
    assert _balance(account, branches[2]) == 1000
    for process in branches.values():
        _no_traceback(process)


# What only a branch could send, and sent wrong -------------------------------------------


def _replicate(peer: grpc.Channel, *ops: bytes) -> Refused | list[rpb.ReplicateResponse]:
    """One Replicate stream as branch 2 (its certificate): Hello, then one batch."""
    requests = [
        rpb.ReplicateRequest(hello=rpb.Hello(branch_id=2)),
        rpb.ReplicateRequest(batch=rpb.OpBatch(ops=list(ops))),
    ]
    stream = peer.stream_stream(
        "/dbank.v1.Replication/Replicate",
        request_serializer=rpb.ReplicateRequest.SerializeToString,
        response_deserializer=rpb.ReplicateResponse.FromString,
    )
    replies = []
    try:
        for reply in stream(iter(requests), timeout=10):
            replies.append(reply)
            if len(replies) == 2:
                break
    except grpc.RpcError as exc:
        return Refused(exc)
    return replies


def _op(
    origin: int, seq: object, deps: str = "[]", hlc: object = None, amount: object = 5
) -> bytes:
    stamp = time.time_ns() // 1_000_000 << 16 if hlc is None else hlc
    return f'[{origin},{seq},{deps},{stamp},["x","r"],"USD","deposit","acct-x",{amount}]'.encode()


@pytest.mark.parametrize(
    "op",
    [
        _op(2, 0),  # seq 0 once read as "applied already", then as another op: a halt
        _op(2, -1),
        _op(2, 1, deps="[[99,1]]"),  # a dep no branch of the bank has: held for ever
        _op(2, 1, hlc="Infinity"),
        _op(2, 1, hlc="1e400"),
        _op(2, 1, amount=2**200),
        _op(0, 2),  # a second genesis op
    ],
)
def test_an_op_no_branch_could_have_made_is_malformed_and_changes_nothing(
    branches: dict[int, BranchProcess], bank: grpc.Channel, peer: grpc.Channel, op: bytes
) -> None:
    answer = _replicate(peer, op)
    assert isinstance(answer, Refused)
    assert (answer.code, answer.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_OP")
    _no_traceback(branches[1])
    # Branch 2's own ops still reach branch 1: nothing halted, nothing held in their way.
    account = unique_id("after-op")
    with channel(branches[2].address) as at_two:
        stub = BankStub(at_two)
        stub.CreateAccount(
            pb.CreateAccountRequest(
                account_id=account, owner="o", type=pb.ACCOUNT_TYPE_CHECKING, request_id="o"
            ),
            timeout=10,
        )
        reply = stub.Deposit(
            pb.DepositRequest(account_id=account, amount=9, request_id=unique_id("d")),
            timeout=10,
        )
    assert list(reply.unconfirmed_branches) == []
    assert _balance(account, branches[1]) == 9


def _forged_page_token(
    account_id: str, snapshot: list[list[int]], after: list[int], balance: int
) -> str:
    body = json.dumps([1, account_id, snapshot, after, balance], separators=(",", ":")).encode()
    raw = hashlib.sha256(body).digest()[:8] + body
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_a_page_token_with_numbers_past_the_store_is_refused(
    branches: dict[int, BranchProcess], bank: grpc.Channel, account: str
) -> None:
    stub = BankStub(bank)
    first = stub.ListTransactions(
        pb.ListTransactionsRequest(account_id=account, page_size=1), timeout=10
    )
    assert first.next_page_token
    snapshot = [[int(o), int(s)] for o, s in first.session.applied.items()]
    entry = first.entries[0]
    after = [0, entry.op_id.origin, entry.op_id.seq]
    for forged in (
        _forged_page_token(account, snapshot, after, 2**63 - 1),  # a running balance past int64
        _forged_page_token(account, snapshot, [2**63, 1, 1], 0),
        _forged_page_token(account, [[2**32, 1]], after, 0),
    ):
        request = pb.ListTransactionsRequest(account_id=account, page_size=5, page_token=forged)
        refused = _refused(bank, "/dbank.v1.Bank/ListTransactions", request)
        assert (refused.code, refused.reason) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_PAGE_TOKEN",
        )
    _no_traceback(branches[1])


def test_a_session_counting_more_genesis_ops_than_the_bank_has_is_refused_at_once(
    bank: grpc.Channel, account: str
) -> None:
    session = pb.VersionVector()
    session.applied[0] = 7
    call = bank.unary_unary("/dbank.v1.Bank/GetBalance")
    request = pb.GetBalanceRequest(account_id=account, session=session)
    with pytest.raises(grpc.RpcError) as refused:
        call(request.SerializeToString(), timeout=2.5)
    assert Refused(refused.value).reason == "UNKNOWN_BRANCH"


def test_a_retry_at_another_branch_is_confirmed_by_the_branch_that_made_it(
    branches: dict[int, BranchProcess], bank: grpc.Channel, account: str
) -> None:
    request_id = unique_id("retry")
    first = BankStub(bank).Deposit(
        pb.DepositRequest(account_id=account, amount=5, request_id=request_id), timeout=10
    )
    with channel(branches[2].address) as at_two:
        # Within 2.5 s: waiting for branch 1 to confirm its own op would take 5.
        again = BankStub(at_two).Deposit(
            pb.DepositRequest(
                account_id=account, amount=5, request_id=request_id, request_branch=1
            ),
            timeout=2.5,
        )
    assert (again.op_id, list(again.unconfirmed_branches)) == (first.op_id, [])
    BankStub(bank).Withdraw(
        pb.WithdrawRequest(account_id=account, amount=5, request_id=unique_id("undo")), timeout=10
    )
