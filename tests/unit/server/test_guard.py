"""The edge's checks of a parsed request, and the parse that never raises."""

from __future__ import annotations

import pytest

from dbank._proto import bank_pb2 as pb
from dbank._proto import replication_pb2 as rpb
from dbank.errors import InvalidArgument
from dbank.server import MAX_STRING_CHARS, Malformed, check_request, parsing_safely


def _refusal(request: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as refused:
        check_request(request)  # type: ignore[arg-type]
    return refused.value


def test_a_request_within_its_bounds_passes() -> None:
    check_request(pb.DepositRequest(account_id="a" * MAX_STRING_CHARS, amount=1))
    check_request(pb.GetBalancesRequest(account_ids=["a", "b"]))
    check_request(pb.CreateAccountRequest(type=pb.ACCOUNT_TYPE_SAVINGS))


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        (pb.DepositRequest(account_id="a" * (MAX_STRING_CHARS + 1)), "account_id"),
        (pb.TransferRequest(to_account_id="b" * 10_000), "to_account_id"),
        (pb.GetBalancesRequest(account_ids=["ok", "x" * 300]), "account_ids"),
        (rpb.RequestRightsRequest(borrow_id="z" * 300), "borrow_id"),
    ],
)
def test_a_string_past_the_bound_is_refused_by_name(request_message: object, field: str) -> None:
    refused = _refusal(request_message)
    assert refused.reason == "FIELD_TOO_LONG"
    assert refused.metadata == {"field": field, "max_length": str(MAX_STRING_CHARS)}
    assert len(refused.message) < 100


@pytest.mark.parametrize(
    ("request_message", "reason", "field"),
    [
        (pb.DepositRequest(write_concern=99), "INVALID_WRITE_CONCERN", "write_concern"),
        (pb.WithdrawRequest(write_concern=-5), "INVALID_WRITE_CONCERN", "write_concern"),
        (pb.CreateAccountRequest(type=7), "INVALID_ACCOUNT_TYPE", "type"),
    ],
)
def test_an_enum_number_no_value_has_is_refused(
    request_message: object, reason: str, field: str
) -> None:
    refused = _refusal(request_message)
    assert (refused.reason, refused.metadata["field"]) == (reason, field)


def test_strings_inside_nested_messages_are_bounded_too() -> None:
    request = rpb.ReplicateRequest(hello=rpb.Hello(branch_id=1))
    check_request(request)
    # Every message type's plan is built from its descriptor: a nested string is found.
    nested = pb.GetStatementResponse(entries=[pb.Entry(request_id="r" * 300)])
    assert _refusal(nested).metadata["field"] == "entries.request_id"


@pytest.mark.parametrize(
    "data",
    [
        b"\xff" * 16,  # field number and wire type that no message has
        b"\x2b" * 100_000,  # 100,000 nested groups
        pb.DepositRequest(account_id="a").SerializeToString() + b"\x1a\x02\xff\xfe",  # not UTF-8
    ],
)
def test_the_guarded_parse_gives_malformed_instead_of_raising(data: bytes) -> None:
    parsed = parsing_safely(pb.DepositRequest.FromString)(data)
    assert parsed == Malformed("dbank.v1.DepositRequest")


def test_the_guarded_parse_gives_the_message_when_it_parses() -> None:
    request = pb.DepositRequest(account_id="a", amount=5)
    assert parsing_safely(pb.DepositRequest.FromString)(request.SerializeToString()) == request
