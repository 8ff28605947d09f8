"""Which peers a branch streams its ops to from the start."""

from __future__ import annotations

import math

import pytest

from dbank.replication import FULL_MESH_BRANCHES, stream_targets


def _reachable(start: int, ids: list[int]) -> set[int]:
    seen, frontier = {start}, [start]
    while frontier:
        for target in stream_targets(frontier.pop(), ids):
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    return seen


@pytest.mark.parametrize("size", range(1, FULL_MESH_BRANCHES + 1))
def test_a_small_bank_streams_every_op_to_every_branch(size: int) -> None:
    ids = list(range(1, size + 1))
    for branch in ids:
        assert stream_targets(branch, ids) == [i for i in ids if i != branch]


@pytest.mark.parametrize("size", [9, 12, 20, 50, 64, 100])
def test_a_large_bank_streams_to_log2_peers_and_reaches_everyone(size: int) -> None:
    ids = [7 * i + 3 for i in range(size)]  # any ids: only their order counts
    for branch in ids:
        targets = stream_targets(branch, ids)
        assert len(targets) == math.ceil(math.log2(size))
        assert branch not in targets
        assert _reachable(branch, ids) == set(ids)
    # Every branch is streamed to by as many as it streams to.
    incoming = {i: sum(i in stream_targets(j, ids) for j in ids) for i in ids}
    assert set(incoming.values()) == {math.ceil(math.log2(size))}


def test_fifty_branches_start_with_300_streams_instead_of_2450() -> None:
    ids = list(range(1, 51))
    assert sum(len(stream_targets(i, ids)) for i in ids) == 300
    assert stream_targets(1, ids) == [2, 3, 5, 9, 17, 33]
    assert stream_targets(50, ids) == [1, 2, 4, 8, 16, 32]
