"""Hybrid logical clocks and the owner branch of an account id."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbank.ledger import HybridLogicalClock
from dbank.ledger.clock import LOGICAL_BITS, hlc_datetime
from dbank.ledger.ownership import owner_branch


class FakeWall:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_tick_follows_the_wall_clock() -> None:
    wall = FakeWall(1_000)
    clock = HybridLogicalClock(wall)
    assert clock.tick() == 1_000 << LOGICAL_BITS
    assert clock.tick() == (1_000 << LOGICAL_BITS) + 1
    wall.ms = 2_000
    assert clock.tick() == 2_000 << LOGICAL_BITS
    assert clock.last == 2_000 << LOGICAL_BITS


def test_tick_never_goes_back_when_the_wall_clock_does() -> None:
    wall = FakeWall(5_000)
    clock = HybridLogicalClock(wall)
    first = clock.tick()
    wall.ms = 10
    assert clock.tick() == first + 1


def test_observed_timestamps_come_before_later_ticks() -> None:
    clock = HybridLogicalClock(FakeWall(1), last=0)
    remote = 9_999 << LOGICAL_BITS
    clock.observe(remote)
    assert clock.last == remote
    assert clock.tick() == remote + 1
    clock.observe(5)  # an old timestamp changes nothing
    assert clock.tick() == remote + 2


def test_a_restored_clock_continues_after_its_last_timestamp() -> None:
    clock = HybridLogicalClock(FakeWall(0), last=12_345)
    assert clock.tick() == 12_346


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**40), st.booleans(), st.integers(0, 2**56))))
def test_ticks_strictly_increase_and_never_lag_the_wall(
    events: list[tuple[int, bool, int]],
) -> None:
    wall = FakeWall(0)
    clock = HybridLogicalClock(wall)
    seen = 0
    for ms, observe, remote in events:
        wall.ms = ms
        if observe:
            clock.observe(remote)
            seen = max(seen, remote)
        stamp = clock.tick()
        assert stamp > seen
        assert stamp >= ms << LOGICAL_BITS
        seen = stamp


def test_hlc_datetime_is_the_utc_wall_time() -> None:
    moment = dt.datetime(2024, 2, 29, 23, 59, 59, 123_000, tzinfo=dt.UTC)
    ms = int(moment.timestamp() * 1000)
    assert hlc_datetime((ms << LOGICAL_BITS) + 77) == moment
    assert hlc_datetime(0) == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# Ownership ----------------------------------------------------------------------------------

IDS = [f"acct-{i}" for i in range(3_000)]


def test_owner_is_one_of_the_branches_and_ignores_their_order() -> None:
    for account_id in IDS[:200]:
        owner = owner_branch(account_id, [3, 1, 2])
        assert owner in (1, 2, 3)
        assert owner == owner_branch(account_id, [1, 2, 3])
        assert owner == owner_branch(account_id, (2, 3, 1, 1))
        assert owner == owner_branch(account_id, iter([3, 2, 1]))


def test_a_single_branch_owns_everything() -> None:
    assert {owner_branch(a, [42]) for a in IDS[:100]} == {42}


def test_no_branches_is_an_error() -> None:
    with pytest.raises(ValueError, match="no branches"):
        owner_branch("a", [])


@pytest.mark.parametrize("branches", [[1, 2], [1, 2, 3], [2, 5, 7, 11, 13]])
def test_owners_spread_over_the_branches(branches: list[int]) -> None:
    counts = Counter(owner_branch(a, branches) for a in IDS)
    assert set(counts) == set(branches)
    fair = len(IDS) / len(branches)
    for branch in branches:
        # Expected within a few standard deviations (about sqrt(fair)) of fair.
        assert abs(counts[branch] - fair) < 6 * fair**0.5, counts


def test_owner_does_not_depend_on_the_process() -> None:
    # Python's own str hash changes per process; the owner must not.
    code = (
        "from dbank.ledger.ownership import owner_branch\n"
        "print([owner_branch(f'acct-{i}', [1, 2, 3, 4]) for i in range(64)])\n"
    )
    expected = str([owner_branch(f"acct-{i}", [1, 2, 3, 4]) for i in range(64)])
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        run = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert run.stdout.strip() == expected
