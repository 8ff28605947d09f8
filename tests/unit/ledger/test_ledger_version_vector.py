"""Version vectors: zero entries mean nothing, and covers/missing/merge agree."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dbank.ledger import OpId, VersionVector

SETTINGS = settings(max_examples=150, deadline=None)
entries = st.dictionaries(st.integers(0, 6), st.integers(0, 5), max_size=7)
vectors = entries.map(VersionVector)


def test_missing_origins_count_zero_and_zero_entries_are_dropped() -> None:
    vv = VersionVector({1: 3, 2: 0, 5: 1})
    assert vv[1] == 3
    assert vv[2] == 0
    assert vv[9] == 0
    assert 2 not in vv
    assert 1 in vv
    assert list(vv) == [1, 5]
    assert len(vv) == 2
    assert dict(vv) == {1: 3, 5: 1}
    assert vv == VersionVector({5: 1, 1: 3})
    assert vv == VersionVector([(5, 1), (1, 3), (7, 0)])
    assert hash(vv) == hash(VersionVector({5: 1, 1: 3, 2: 0}))
    assert VersionVector() == VersionVector({3: 0})
    assert len(VersionVector()) == 0
    assert vv != VersionVector({1: 3})


def test_iterates_in_origin_order() -> None:
    assert list(VersionVector({9: 1, 2: 2, 5: 3}).items()) == [(2, 2), (5, 3), (9, 1)]


def test_is_immutable_snapshot_of_its_source() -> None:
    source = {1: 1}
    vv = VersionVector(source)
    source[1] = 7
    source[2] = 1
    assert dict(vv) == {1: 1}


def test_covers_and_missing_by_example() -> None:
    vv = VersionVector({1: 3, 2: 1})
    assert vv.covers({1: 3})
    assert vv.covers({1: 2, 2: 1, 3: 0})
    assert vv.covers({})
    assert not vv.covers({1: 4})
    assert not vv.covers({3: 1})
    assert vv.missing({1: 5, 2: 1, 3: 2}) == {1: 5, 3: 2}
    assert vv.missing({1: 3}) == {}


def test_merge_by_example() -> None:
    merged = VersionVector({1: 3, 2: 1}).merge({2: 4, 3: 1})
    assert merged == VersionVector({1: 3, 2: 4, 3: 1})


@SETTINGS
@given(vectors, vectors)
def test_covers_matches_pointwise_order_and_missing(a: VersionVector, b: VersionVector) -> None:
    origins = set(a) | set(b)
    assert a.covers(b) == all(a[o] >= b[o] for o in origins)
    assert a.covers(b) == (a.missing(b) == {})
    assert all(a[o] < s for o, s in a.missing(b).items())
    assert a.covers(a)


@SETTINGS
@given(vectors, vectors, vectors)
def test_merge_is_the_least_upper_bound(
    a: VersionVector, b: VersionVector, c: VersionVector
) -> None:
    m = a.merge(b)
    assert m == b.merge(a)
    assert m.covers(a)
    assert m.covers(b)
    assert a.merge(a) == a
    assert m.merge(c) == a.merge(b.merge(c))
    for o in set(a) | set(b):
        assert m[o] == max(a[o], b[o])
    if c.covers(a) and c.covers(b):
        assert c.covers(m)


@SETTINGS
@given(entries, entries)
def test_equality_ignores_zeros(x: dict[int, int], y: dict[int, int]) -> None:
    same = {o: s for o, s in x.items() if s} == {o: s for o, s in y.items() if s}
    assert (VersionVector(x) == VersionVector(y)) == same
    if same:
        assert hash(VersionVector(x)) == hash(VersionVector(y))


def test_op_ids_order_by_origin_then_seq() -> None:
    assert sorted([OpId(2, 1), OpId(1, 10), OpId(1, 2)]) == [OpId(1, 2), OpId(1, 10), OpId(2, 1)]
    assert str(OpId(3, 14)) == "3:14"
    assert OpId(1, 1) == OpId(1, 1)
    assert len({OpId(1, 1), OpId(1, 1), OpId(1, 2)}) == 2
