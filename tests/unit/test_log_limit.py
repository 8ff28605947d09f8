"""``RepeatLimiter``: a repeated line logged once, then counted."""

from __future__ import annotations

import asyncio
import logging

import pytest

from dbank._log_limit import RepeatLimiter
from dbank.branch import Writer
from dbank.ledger import (
    AccountType,
    HybridLogicalClock,
    LedgerState,
    OpenAccountCommand,
    Unavailable,
)
from dbank.store import Commit, MemoryStore

LOGGER = "dbank.test.log_limit"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> RepeatLimiter:
    caplog.set_level(logging.INFO, logger=LOGGER)
    return RepeatLimiter(logging.getLogger(LOGGER), window=10.0, clock=clock)


def test_the_first_line_is_logged_and_repeats_are_counted_into_one_line(
    limiter: RepeatLimiter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    for attempt in range(241):
        limiter.warning(("refused", 2), "refused branch %d: %s", 2, f"attempt {attempt}")
        clock.now += 0.04
    assert _lines(caplog) == ["refused branch 2: attempt 0"]
    clock.now = 1010.0
    limiter.warning(("refused", 2), "refused branch %d: %s", 2, "attempt 241")
    # The window is over: the count, with the latest occurrence's words; this occurrence
    # opens the next window and is counted there.
    assert _lines(caplog) == [
        "refused branch 2: attempt 0",
        "refused branch 2: attempt 240 (240 more times in the last 10 s)",
    ]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in caplog.records)


def test_keys_are_counted_apart(limiter: RepeatLimiter, caplog: pytest.LogCaptureFixture) -> None:
    for _ in range(3):
        limiter.warning(("refused", 2), "branch %d refused", 2)
        limiter.warning(("refused", 3), "branch %d refused", 3)
    assert _lines(caplog) == ["branch 2 refused", "branch 3 refused"]
    limiter.flush()
    assert _lines(caplog)[2:] == [
        "branch 2 refused (2 more times in the last 0 s)",
        "branch 3 refused (2 more times in the last 0 s)",
    ]


def test_a_key_quiet_for_a_whole_window_is_logged_at_once_again(
    limiter: RepeatLimiter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    limiter.info("lost", "link lost")
    clock.now += 10.5
    limiter.info("lost", "link lost")
    clock.now += 25
    limiter.info("lost", "link lost")
    assert _lines(caplog) == ["link lost"] * 3
    limiter.flush()
    assert _lines(caplog) == ["link lost"] * 3  # nothing was counted


def test_repeats_that_go_on_give_one_count_line_per_window(
    limiter: RepeatLimiter, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(35):  # one a second
        limiter.warning("full", "disk full")
        clock.now += 1.0
    # The first window holds the line logged and 9 repeats, each later one 10 repeats.
    assert _lines(caplog) == [
        "disk full",
        "disk full (9 more times in the last 10 s)",
        "disk full (10 more times in the last 10 s)",
        "disk full (10 more times in the last 10 s)",
    ]


async def test_the_count_is_written_by_a_timer_when_the_repeats_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    logger = logging.getLogger(LOGGER)
    counted = asyncio.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "more times" in record.getMessage():
                counted.set()

    seen = Seen()
    logger.addHandler(seen)
    try:
        limiter = RepeatLimiter(logger, window=0.2)
        for _ in range(5):
            limiter.warning("refused", "refused")
        async with asyncio.timeout(5):
            await counted.wait()
    finally:
        logger.removeHandler(seen)
    assert _lines(caplog) == ["refused", "refused (4 more times in the last 0 s)"]


class FullDisk(MemoryStore):
    """A store whose every commit fails as SQLite's does on a full disk."""

    async def commit(self, commit: Commit) -> None:
        raise Unavailable("sqlite store could not commit: database or disk is full")


async def test_a_full_disk_is_one_line_without_traceback_then_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dbank.branch")
    writer = Writer(1, LedgerState(), FullDisk(), HybridLogicalClock(lambda: 1_700_000_000_000))
    writer.start()
    try:
        for i in range(30):  # one batch each
            with pytest.raises(Unavailable, match="disk is full"):
                await writer.submit(
                    OpenAccountCommand(f"a{i}", AccountType.CHECKING, "USD", "o", "r")
                )
    finally:
        await writer.stop()  # says the count not yet said
    records = [r for r in caplog.records if r.name == "dbank.branch._writer"]
    assert [r.getMessage() for r in records] == [
        "writer batch failed; reloading state from the store: sqlite store could not commit:"
        " database or disk is full",
        "writer batch failed; reloading state from the store: sqlite store could not commit:"
        " database or disk is full (29 more times in the last 0 s)",
    ]
    assert all(r.exc_info is None and r.levelno == logging.WARNING for r in records)
