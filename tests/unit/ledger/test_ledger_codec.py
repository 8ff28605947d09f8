"""The canonical bytes of ops and outcomes: exact round trips, one encoding per value."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbank.errors import ERROR_CLASSES
from dbank.ledger import (
    AccountType,
    Deposit,
    Genesis,
    Grant,
    InsufficientFunds,
    Interest,
    Internal,
    Op,
    OpenAccount,
    OpId,
    Outcome,
    Transfer,
    VersionVector,
    Withdrawal,
)
from dbank.ledger.codec import (
    decode_op,
    decode_outcome,
    encode_op,
    encode_outcome,
    op_digest,
)
from dbank.money import MAX_AMOUNT

SETTINGS = settings(max_examples=150, deadline=None)

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789_.:-", min_size=1, max_size=64)
amounts = st.integers(1, MAX_AMOUNT)
branches = st.integers(1, 2**31)
bodies = st.one_of(
    st.builds(OpenAccount, ids, st.sampled_from(AccountType), st.sampled_from(["USD", "JPY"]), ids),
    st.builds(Deposit, ids, amounts),
    st.builds(Withdrawal, ids, amounts),
    st.builds(Transfer, ids, ids, amounts),
    st.builds(Grant, ids, amounts, branches),
    st.builds(
        Interest,
        ids,
        st.integers(0, MAX_AMOUNT),
        st.dates(),
        st.sampled_from(["0", "4.25", "100"]),
        st.integers(0, MAX_AMOUNT),
    ),
    st.builds(
        Genesis,
        ids,
        st.sampled_from(AccountType),
        st.sampled_from(["USD", "JPY"]),
        ids,
        branches,
        st.lists(st.tuples(branches, amounts), max_size=4).map(tuple),
    ),
)
vectors = st.dictionaries(branches, st.integers(0, 2**40), max_size=5).map(VersionVector)
ops = st.builds(
    Op,
    id=st.builds(OpId, st.integers(0, 2**31), st.integers(1, 2**40)),
    deps=vectors,
    hlc=st.integers(0, 2**63 - 1),
    request_id=st.text(max_size=64),
    currency=st.sampled_from(["USD", "JPY", "KWD", "CLF"]),
    body=bodies,
    caller=st.one_of(st.just(""), ids),
)
metadata = st.dictionaries(
    st.sampled_from(["account_id", "balance", "field", "ünïcode"]), st.text(max_size=20), max_size=3
)
outcomes = st.one_of(
    st.builds(
        Outcome,
        fingerprint=st.text(max_size=80),
        op_id=st.builds(OpId, st.integers(0, 2**31), st.integers(1, 2**40)),
        balances=st.lists(st.tuples(ids, st.integers(0, MAX_AMOUNT)), max_size=2).map(tuple),
    ),
    st.builds(
        lambda fp, cls, message, md: Outcome.failure(fp, cls(message, **md)),
        st.text(max_size=80),
        st.sampled_from(ERROR_CLASSES),
        st.text(max_size=40),
        metadata,
    ),
)

EXAMPLES = [
    OpenAccount("acct-1", AccountType.SAVINGS, "JPY", "alice"),
    Deposit("acct-1", 1),
    Withdrawal("acct-1", MAX_AMOUNT),
    Transfer("acct-1", "acct-2", 12_345),
    Grant("acct-1", 99, to_branch=3),
]


def op_with(body: object, **changes: object) -> Op:
    fields: dict[str, object] = {
        "id": OpId(2, 5),
        "deps": VersionVector({1: 3, 2: 4}),
        "hlc": 123_456_789 << 16,
        "request_id": "req-ü",
        "currency": "JPY",
        "body": body,
    }
    fields.update(changes)
    return Op(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("body", EXAMPLES, ids=lambda b: type(b).__name__)
def test_every_op_kind_round_trips(body: object) -> None:
    op = op_with(body)
    data = encode_op(op)
    decoded = decode_op(data)
    assert decoded == op
    assert type(decoded.body) is type(body)
    assert encode_op(decoded) == data


def test_an_op_without_a_caller_keeps_the_plain_request_id() -> None:
    # Ops of --insecure banks (and every op stored before callers) keep their bytes.
    plain = json.loads(encode_op(op_with(Deposit("acct-1", 1))))
    assert plain[4] == "req-ü"
    called = json.loads(encode_op(op_with(Deposit("acct-1", 1), caller="alice")))
    assert called[4] == ["alice", "req-ü"]


@SETTINGS
@given(ops)
def test_any_op_round_trips_to_the_same_bytes(op: Op) -> None:
    data = encode_op(op)
    assert isinstance(data, bytes)
    decoded = decode_op(data)
    assert decoded == op
    assert encode_op(decoded) == data


@SETTINGS
@given(ops, st.randoms(use_true_random=False))
def test_equal_ops_encode_to_equal_bytes(op: Op, rnd: random.Random) -> None:
    # The same vector, built from its entries in another order and with a zero entry.
    entries = [*op.deps.items(), (2**32, 0)]
    rnd.shuffle(entries)
    twin = Op(
        OpId(op.id.origin, op.id.seq),
        VersionVector(entries),
        op.hlc,
        op.request_id,
        op.currency,
        dataclasses.replace(op.body),
        op.caller,
    )
    assert twin == op
    assert twin.body is not op.body
    assert encode_op(twin) == encode_op(op)


def test_encoding_is_compact_ascii_json() -> None:
    data = encode_op(op_with(OpenAccount("acct 1", AccountType.SAVINGS, "JPY", "ünï")))
    data.decode("ascii")
    json.loads(data)
    assert b", " not in data
    assert b": " not in data


@pytest.mark.parametrize(
    "changed",
    [
        op_with(Deposit("acct-1", 6)),
        op_with(Withdrawal("acct-1", 5)),
        op_with(Deposit("acct-2", 5)),
        op_with(Deposit("acct-1", 5), id=OpId(2, 6)),
        op_with(Deposit("acct-1", 5), deps=VersionVector({1: 3, 2: 4, 3: 1})),
        op_with(Deposit("acct-1", 5), hlc=1),
        op_with(Deposit("acct-1", 5), request_id="other"),
        op_with(Deposit("acct-1", 5), currency="USD"),
    ],
)
def test_any_change_changes_the_digest(changed: Op) -> None:
    base = encode_op(op_with(Deposit("acct-1", 5)))
    assert op_digest(encode_op(changed)) != op_digest(base)
    assert len(op_digest(base)) == 64


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"null",
        b"[]",
        b"{}",
        b'{"kind": "deposit"}',
        encode_op(op_with(Deposit("a", 1))).replace(b'"deposit"', b'"robbery"'),
        encode_op(op_with(Deposit("a", 1)))[:-1],
        encode_op(op_with(Deposit("a", 1)))[:-3] + b"]",
        encode_op(op_with(Deposit("a", 1))) + b"x",
        encode_op(op_with(Grant("a", 1, 2))).replace(b'"grant"', b'"deposit"'),
        encode_op(op_with(Deposit("a", 1))).replace(b'"deposit"', b'"grant"'),
        encode_op(op_with(OpenAccount("a", AccountType.SAVINGS, "USD", "o"))).replace(
            b'"savings"', b'"gold"'
        ),
    ],
)
def test_garbage_is_not_an_op(data: bytes) -> None:
    with pytest.raises(Internal):
        decode_op(data)


# Written against the positional encoding of codec.py:
# [origin, seq, deps, hlc, request_id, currency, kind, *body fields].


def test_a_short_open_op_is_not_an_op() -> None:
    with pytest.raises(Internal):
        decode_op(b'[1,1,[],0,"r","USD","open","acct"]')


@pytest.mark.parametrize(
    "data",
    [
        b'[1,1,[],0,"r","USD","deposit","a","5"]',
        b'[1,1,[],0,"r","USD","deposit",7,5]',
        b'[1,1,[],0,"r","USD","grant","a",5,"2"]',
        b'[1,1,[],0,"r","USD","deposit","a",true]',
    ],
)
def test_a_body_field_of_the_wrong_type_is_not_an_op(data: bytes) -> None:
    with pytest.raises(Internal):
        decode_op(data)


@pytest.mark.parametrize(
    "data",
    [
        b'[2,0,[],0,"r","USD","deposit","a",5]',  # seq 0: read as "applied already"
        b'[2,-1,[],0,"r","USD","deposit","a",5]',
        b'[4294967296,1,[],0,"r","USD","deposit","a",5]',  # origin beyond uint32
        b'[2,1,[[99,0]],0,"r","USD","deposit","a",5]',  # a dep on no op
        b'[2,9223372036854775808,[],0,"r","USD","deposit","a",5]',
        b'[2,1,[],9223372036854775808,"r","USD","deposit","a",5]',  # hlc beyond int64
        b'[2,1,[],-1,"r","USD","deposit","a",5]',
        b'[2,1,[],Infinity,"r","USD","deposit","a",5]',
        b'[2,1,[],1e400,"r","USD","deposit","a",5]',
        b'[NaN,1,[],0,"r","USD","deposit","a",5]',
        b'[2,1,[],0,"r","USD","deposit","a",0]',  # a deposit of nothing
        b'[2,1,[],0,"r","USD","deposit","a",9223372036854775808]',
        b'[2,1,[],0,"r","USD","deposit","' + b"a" * 257 + b'",5]',
    ],
)
def test_numbers_no_branch_could_have_made_are_not_an_op(data: bytes) -> None:
    with pytest.raises(Internal):
        decode_op(data)


# Outcomes -----------------------------------------------------------------------------------


def test_success_outcome_round_trips() -> None:
    outcome = Outcome("Transfer|a|b|5", OpId(1, 9), (("a", 10), ("b", 5)))
    data = encode_outcome(outcome)
    decoded = decode_outcome(data)
    assert decoded == outcome
    assert decoded.error() is None
    assert decoded.balance("b") == 5
    assert encode_outcome(decoded) == data


def test_failure_outcome_round_trips_to_the_same_error() -> None:
    error = InsufficientFunds("account 'a' has 1.00 USD", account_id="a", balance="100")
    outcome = Outcome.failure("Withdraw|a|500", error)
    decoded = decode_outcome(encode_outcome(outcome))
    assert decoded == outcome
    assert decoded.op_id is None
    again = decoded.error()
    assert type(again) is InsufficientFunds
    assert again.message == error.message
    assert again.reason == "INSUFFICIENT_FUNDS"
    assert again.metadata == {"account_id": "a", "balance": "100"}


def test_outcome_with_op_id_zero_origin_round_trips() -> None:
    outcome = Outcome("fp", OpId(0, 1))
    assert decode_outcome(encode_outcome(outcome)) == outcome


@SETTINGS
@given(outcomes)
def test_any_outcome_round_trips_to_the_same_bytes(outcome: Outcome) -> None:
    data = encode_outcome(outcome)
    decoded = decode_outcome(data)
    assert decoded == outcome
    assert encode_outcome(decoded) == data
    error, again = outcome.error(), decoded.error()
    assert type(error) is type(again)
    if error is not None and again is not None:
        assert (again.reason, again.message, again.metadata) == (
            error.reason,
            error.message,
            error.metadata,
        )


@pytest.mark.parametrize("data", [b"", b"[]", b"{}", b'{"fingerprint": "x", "error": [1]}'])
def test_garbage_is_not_an_outcome(data: bytes) -> None:
    with pytest.raises(Internal):
        decode_outcome(data)
