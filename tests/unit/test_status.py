"""The status table's edges: what a status carries back, however long the error's text."""

from __future__ import annotations

from google.rpc import error_details_pb2, status_pb2

from dbank._status import MAX_MESSAGE_CHARS, MAX_METADATA_CHARS, to_status
from dbank.errors import SHOWN_CHARS, InvalidArgument, shown


def test_a_status_stays_far_below_the_trailers_limit_whatever_the_error_says() -> None:
    error = InvalidArgument("x" * 2**20, reason="INVALID_ACCOUNT_ID", field="y" * 2**20)
    status = to_status(error)
    (_, value), *_ = [(k, v) for k, v in status.trailing_metadata if k.endswith("-bin")]
    detail = status_pb2.Status.FromString(value)
    info = error_details_pb2.ErrorInfo()
    assert detail.details[0].Unpack(info)
    assert len(status.details) == MAX_MESSAGE_CHARS
    assert status.details.endswith("...")
    assert len(info.metadata["field"]) == MAX_METADATA_CHARS
    assert info.reason == "INVALID_ACCOUNT_ID"
    assert len(value) < 16 * 1024


def test_a_short_message_is_kept_whole() -> None:
    status = to_status(InvalidArgument("short", field="account_id"))
    assert status.details == "short"


def test_shown_quotes_a_short_value_and_cuts_a_long_one() -> None:
    assert shown("abc") == "'abc'"
    long = "a" * 1000
    assert shown(long) == f"{'a' * SHOWN_CHARS!r}... (1000 characters)"
