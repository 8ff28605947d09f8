"""The checkers of ``dbank check`` on histories written by hand: each passes what the bank
promises and finds each kind of broken promise, with its size."""

from __future__ import annotations

import pytest

from dbank.check import History, Kind, Outcome, Replica, Verdict, check

MS = 1_000_000


def _verdict(name: str, history: History, replicas: dict[int, Replica] | None = None) -> Verdict:
    """The verdict of the checker ``name`` among all of ``check``'s."""
    (verdict,) = [v for v in check(history, replicas) if v.name == name]
    return verdict


def _history() -> History:
    return History("USD", {"a": 100, "b": 100, "own-0": 10}, ("a", "b"), {0: "own-0"})


def _write(
    history: History,
    kind: Kind,
    accounts: tuple[str, ...],
    amount: int,
    outcome: Outcome,
    *,
    at: int,
    took: int = 1,
    request_id: str | None = None,
    op_id: str = "",
    worker: int = 0,
) -> None:
    op = history.invoke(
        worker, kind, 1, request_id or f"r{len(history.operations)}", accounts, amount, "LOCAL"
    )
    op.invoked_ns = at * MS
    history.complete(op, outcome, op_id=op_id)
    op.completed_ns = (at + took) * MS


def _read(
    history: History,
    accounts: tuple[str, ...],
    balances: tuple[int, ...],
    *,
    at: int,
    shares: tuple[int, ...] | None = None,
    worker: int = 0,
    branch: int = 1,
) -> None:
    op = history.invoke(worker, Kind.READ, branch, "", accounts)
    op.invoked_ns = at * MS
    history.complete(
        op, Outcome.OK, balances=balances, withdrawable=shares or tuple(0 for _ in balances)
    )
    op.completed_ns = (at + 1) * MS


def _replica(balances: dict[str, int], entries: dict[str, list[tuple[str, str]]]) -> Replica:
    return Replica(balances, entries)


def test_a_history_the_bank_could_give_passes_every_checker() -> None:
    history = _history()
    _write(history, Kind.TRANSFER, ("a", "b"), 30, Outcome.OK, at=0, op_id="1.1")
    _write(history, Kind.DEPOSIT, ("a",), 5, Outcome.INFO, at=2, request_id="d", op_id="")
    _write(history, Kind.DEPOSIT, ("a",), 5, Outcome.OK, at=3, request_id="d", op_id="1.2")
    _write(history, Kind.WITHDRAW, ("b",), 500, Outcome.FAIL, at=5)
    _write(history, Kind.DEPOSIT, ("own-0",), 7, Outcome.OK, at=6, op_id="1.3")
    _read(history, ("a", "b"), (70, 130), at=1)
    _read(history, ("a", "b"), (75, 130), at=8, shares=(40, 60))
    _read(history, ("own-0",), (17,), at=9)
    entries = {
        "a": [("r0", "1.1"), ("d", "1.2")],
        "b": [("r0", "1.1")],
        "own-0": [("r4", "1.3")],
    }
    replicas = {
        1: _replica({"a": 75, "b": 130, "own-0": 17}, entries),
        2: _replica({"a": 75, "b": 130, "own-0": 17}, entries),
    }
    verdicts = check(history, replicas)
    assert [(v.name, v.anomalies) for v in verdicts if not v.ok] == []
    assert all(v.checked for v in verdicts)


def test_a_negative_balance_or_escrow_share_is_found() -> None:
    history = _history()
    _read(history, ("a", "b"), (-5, 205), at=1, shares=(0, -3))
    verdict = _verdict("no_negative", history, {1: _replica({"a": -1}, {})})
    assert [a.size for a in verdict.anomalies] == [5, 3, 1]


def test_money_that_appears_from_nowhere_is_found() -> None:
    history = _history()
    _write(history, Kind.DEPOSIT, ("a",), 10, Outcome.OK, at=0)
    _write(history, Kind.DEPOSIT, ("b",), 50, Outcome.FAIL, at=0)  # refused: never counts
    _read(history, ("a", "b"), (110, 100), at=2)  # 210: fine
    _read(history, ("a", "b"), (160, 100), at=3)  # 260: 50 over what any write allows
    verdict = _verdict("read_totals", history)
    assert verdict.checked == 2
    assert [a.size for a in verdict.anomalies] == [50]
    assert verdict.anomalies[0].operation == 3


def test_a_write_invoked_after_the_read_answered_does_not_excuse_it() -> None:
    history = _history()
    _read(history, ("a", "b"), (90, 100), at=0)
    _write(history, Kind.WITHDRAW, ("a",), 10, Outcome.OK, at=5)
    assert [a.size for a in _verdict("read_totals", history).anomalies] == [10]


def test_a_read_that_misses_its_own_acknowledged_write_breaks_the_session() -> None:
    history = _history()
    _write(history, Kind.DEPOSIT, ("own-0",), 7, Outcome.OK, at=0)
    _write(history, Kind.WITHDRAW, ("own-0",), 3, Outcome.INFO, at=2)  # may or may not
    _read(history, ("own-0",), (17,), at=5)
    _read(history, ("own-0",), (14,), at=6)
    _read(history, ("own-0",), (10,), at=7)  # lost the deposit: stale
    verdict = _verdict("sessions", history)
    assert verdict.checked == 3
    assert [a.size for a in verdict.anomalies] == [4]


@pytest.mark.parametrize(
    ("held", "size"),
    [({"a": 70, "b": 130, "own-0": 10}, 0), ({"a": 70, "b": 100, "own-0": 10}, 30)],
)
def test_final_balances_must_be_exactly_the_acknowledged_writes(
    held: dict[str, int], size: int
) -> None:
    history = _history()
    _write(history, Kind.TRANSFER, ("a", "b"), 30, Outcome.OK, at=0)
    verdict = _verdict("final_balances", history, {1: _replica(held, {})})
    assert [a.size for a in verdict.anomalies] == ([size] if size else [])


def test_a_request_never_settled_is_an_anomaly_of_the_final_state() -> None:
    history = _history()
    _write(history, Kind.DEPOSIT, ("a",), 1, Outcome.INFO, at=0)
    held = {"a": 100, "b": 100, "own-0": 10}
    verdict = _verdict("final_balances", history, {1: _replica(held, {})})
    assert [a.description for a in verdict.anomalies] == ["request r0 was never settled"]


def test_a_request_applied_twice_is_found() -> None:
    replicas = {1: _replica({}, {"a": [("r1", "1.1"), ("r2", "1.2"), ("r1", "2.1")]})}
    verdict = _verdict("no_duplicates", _history(), replicas)
    assert verdict.checked == 3
    assert [a.description for a in verdict.anomalies] == ["branch 1: request r1 is 2 times in a"]


def test_an_acknowledged_write_missing_at_a_replica_is_found() -> None:
    history = _history()
    _write(history, Kind.TRANSFER, ("a", "b"), 1, Outcome.OK, at=0, op_id="2.7")
    replicas = {
        1: _replica({}, {"a": [("r0", "2.7")], "b": [("r0", "2.7")]}),
        2: _replica({}, {"a": [("r0", "2.7")], "b": []}),
    }
    verdict = _verdict("acknowledged_everywhere", history, replicas)
    assert verdict.checked == 4
    assert [a.description for a in verdict.anomalies] == [
        "branch 2 lacks acknowledged transfer 2.7 of b"
    ]


def test_replicas_that_differ_have_not_converged() -> None:
    replicas = {
        1: _replica({"a": 5}, {"a": [("r0", "1.1")]}),
        2: _replica({"a": 4}, {"a": [("r0", "1.1"), ("r1", "1.2")]}),
    }
    verdict = _verdict("converged", _history(), replicas)
    assert [a.size for a in verdict.anomalies] == [1, 1]


def test_an_unanswered_write_settled_by_a_retry_elsewhere_counts_once() -> None:
    history = _history()
    _write(history, Kind.DEPOSIT, ("a",), 20, Outcome.INFO, at=0, request_id="d")
    _read(history, ("a", "b"), (120, 100), at=3)  # it was applied: allowed
    _write(history, Kind.DEPOSIT, ("a",), 20, Outcome.OK, at=5, request_id="d", op_id="1.1")
    _read(history, ("a", "b"), (140, 100), at=9)  # twice: 20 more than any write allows
    entries = {"a": [("d", "1.1")], "b": [], "own-0": []}
    held = {"a": 120, "b": 100, "own-0": 10}
    verdicts = {v.name: v for v in check(history, {1: _replica(held, entries)})}
    assert [a.size for a in verdicts["read_totals"].anomalies] == [20]
    assert verdicts["final_balances"].ok
    assert verdicts["acknowledged_everywhere"].ok


def test_a_session_that_goes_back_in_time_breaks_monotonic_reads() -> None:
    history = _history()
    _write(history, Kind.DEPOSIT, ("own-0",), 5, Outcome.INFO, at=0)  # may or may not
    _read(history, ("own-0",), (15,), at=2)  # shows it
    _read(history, ("own-0",), (15,), at=4)
    _read(history, ("own-0",), (10,), at=6)  # no longer: back in time
    verdict = _verdict("sessions", history)
    assert verdict.checked == 3
    assert [a.operation for a in verdict.anomalies] == [3]


def test_a_session_may_show_an_unsettled_write_late_but_never_lose_it() -> None:
    history = _history()
    _write(history, Kind.DEPOSIT, ("own-0",), 5, Outcome.INFO, at=0)
    _write(history, Kind.WITHDRAW, ("own-0",), 2, Outcome.INFO, at=2)
    _read(history, ("own-0",), (10,), at=4)  # neither yet
    _read(history, ("own-0",), (8,), at=5)  # the withdrawal
    _read(history, ("own-0",), (13,), at=6)  # both
    assert _verdict("sessions", history).ok
