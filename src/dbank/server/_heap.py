"""Garbage-collector settings for a process that serves a branch.

Every request allocates short-lived container objects (protobuf wrappers, futures, small
dataclasses). With CPython's default young-generation threshold of 700, a serving process
runs a collection every few requests, and every tenth of them also walks the long-lived
state. Freezing what start-up built and collecting young objects less often takes about a
tenth off the CPU time of a deposit (``benchmarks/deposits.py``). Cycles are still found,
only later.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Allocations (net of frees) of container objects between two young collections."""
OLDER_THRESHOLDS = (50, 100)


def settle_heap() -> None:
    """Call once the branch has started: what exists now lives as long as the process."""
    gc.collect()
    gc.freeze()
    collect_less_often()


def collect_less_often() -> None:
    """The thresholds alone, for a process forked from one that froze its heap before the
    fork (``gc.freeze()``): collecting there would touch, and so copy, every page the
    parent's objects share with the child."""
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
