"""Real branch processes on stores that were changed behind their backs (design §7.3).

A byte flipped in an op, a state row and an outcome row, of a SQLite file and of a Redis
store: the branch refuses to start (one line naming the row, exit status 1) and
``dbank verify`` finds the same row. A data directory that held a branch and now has a
zero-length store is refused too. Every bank here runs with TLS and tokens.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from support.secure import PKI, BankClient, start_branch

from dbank.store import parse_redis_url
from dbank.store.redis import DIGEST_WIDTH, RedisKeys

ACCOUNT = "integrity-a"
EXIT_DEADLINE = 60.0
"""Seconds for a refused branch to exit (it checks a small store: well under one)."""


def _flip(data: bytes, at: int) -> bytes:
    """``data`` with one bit of its byte at ``at`` flipped."""
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


async def _bank_with_history(data_dir: Path, store: str | None = None) -> None:
    """Run branch 1 once: an account, a deposit of 10100 (request id ``dep-1``), stopped
    cleanly."""
    branch = start_branch(1, data_dir, store=store)
    try:
        async with BankClient(branch.address) as bank:
            await bank.create_account(account_id=ACCOUNT, owner="o")
            await bank.deposit(account_id=ACCOUNT, amount=10_100, request_id="dep-1")
    finally:
        assert branch.stop() == 0, branch.log()


def _start_refused(data_dir: Path, store: str | None = None) -> subprocess.CompletedProcess[str]:
    """``dbank branch`` on the data directory (and store), waited for until it exits."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dbank",
            "branch",
            *("--id", "1", "--listen", "127.0.0.1:0", "--data", str(data_dir)),
            *(("--store", store) if store else ()),
            *("--tls-dir", str(PKI.tls_dir), "--peer-listen", "127.0.0.1:0"),
        ],
        capture_output=True,
        text=True,
        timeout=EXIT_DEADLINE,
    )


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbank", "verify", *args],
        capture_output=True,
        text=True,
        timeout=EXIT_DEADLINE,
    )


def _assert_refused(started: subprocess.CompletedProcess[str], row: str) -> None:
    assert started.returncode == 1, (started.stdout, started.stderr)
    assert "listening on" not in started.stdout
    lines = [line for line in started.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, started.stderr  # one line, no traceback
    assert lines[0].startswith("error: STORE_CORRUPT: ")
    assert row in lines[0]


# SQLite -------------------------------------------------------------------------------------


def _flip_sqlite(path: Path, table: str, column: str, where: str) -> None:
    """Flip one byte in the middle of ``column`` of the one row of ``table`` ``where``
    selects, in place."""
    with sqlite3.connect(path) as db:
        ((value,),) = db.execute(f"SELECT {column} FROM {table} WHERE {where}").fetchall()
        if isinstance(value, int):
            changed: object = value ^ 0x04  # 10000 -> 10004: a flipped bit of the integer
        else:
            data = value if isinstance(value, bytes) else value.encode()
            flipped = _flip(data, len(data) // 2)
            changed = flipped if isinstance(value, bytes) else flipped.decode()
        db.execute(f"UPDATE {table} SET {column} = ? WHERE {where}", (changed,))
    db.close()


SQLITE_ROWS = {
    "op": (("ops", "data", "CAST(data AS TEXT) LIKE '%\"deposit\"%'"), "ops row origin=1, seq="),
    "state": (
        ("rights", "amount", f"account_id = '{ACCOUNT}' AND amount > 0"),
        f"rights row account_id='{ACCOUNT}', branch=1",
    ),
    "outcome": (("outcomes", "data", "request_id LIKE '%dep-1%'"), "outcomes row scope="),
}


@pytest.mark.parametrize("what", sorted(SQLITE_ROWS))
async def test_a_flipped_byte_in_a_sqlite_file_is_refused_at_start_and_found_by_verify(
    tmp_path: Path, what: str
) -> None:
    data_dir = tmp_path / "data"
    await _bank_with_history(data_dir)
    clean = _verify("--data", str(data_dir))
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "ops replayed" in clean.stdout
    (table, column, where), row = SQLITE_ROWS[what]
    _flip_sqlite(data_dir / "branch-1.sqlite3", table, column, where)

    _assert_refused(_start_refused(data_dir), row)
    found = _verify("--data", str(data_dir))
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"bad: {row}" in found.stdout
    assert "CORRUPT" in found.stdout


async def test_a_zero_length_store_in_a_directory_that_held_a_branch_is_refused(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    await _bank_with_history(data_dir)
    assert (data_dir / "branch-1.json").exists()
    for leftover in data_dir.glob("branch-1.sqlite3-*"):  # -wal, -shm: the file is all gone
        leftover.unlink()
    (data_dir / "branch-1.sqlite3").write_bytes(b"")

    _assert_refused(_start_refused(data_dir), "is empty (zero bytes)")
    assert (data_dir / "branch-1.sqlite3").stat().st_size == 0  # not made a new bank
    found = _verify("--data", str(data_dir))
    assert found.returncode == 1
    assert "held branch 1" in found.stdout


def test_verify_refuses_a_path_that_names_no_store_in_one_line(tmp_path: Path) -> None:
    for args in (["--data", str(tmp_path / "none")], ["--data", str(tmp_path)], []):
        refused = _verify(*args)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


# Redis --------------------------------------------------------------------------------------


def _raw(url: str) -> redis.Redis:
    address = parse_redis_url(url)
    return redis.Redis(host=address.host, port=address.port, db=address.db)


def _flip_value(value: bytes) -> bytes:
    """Flip a byte of the payload (after the digest) of a stored value."""
    return _flip(value, DIGEST_WIDTH + 1 + (len(value) - DIGEST_WIDTH - 1) // 2)


def _flip_op(raw: redis.Redis, keys: RedisKeys) -> None:
    ops = raw.lrange(keys.ops(1), 0, -1)
    (index,) = [i for i, op in enumerate(ops) if b'"deposit"' in op]
    raw.lset(keys.ops(1), index, _flip_value(ops[index]))


def _flip_field(key: Callable[[RedisKeys], str], part: bytes) -> Callable[..., None]:
    def flip(raw: redis.Redis, keys: RedisKeys) -> None:
        fields = raw.hgetall(key(keys))
        (field,) = [f for f in fields if part in f]
        raw.hset(key(keys), field, _flip_value(fields[field]))

    return flip


REDIS_ROWS: dict[str, tuple[Callable[[redis.Redis, RedisKeys], None], str]] = {
    "op": (_flip_op, "ops row origin=1, seq="),
    "state": (
        _flip_field(lambda k: k.rights, f"{ACCOUNT} 1".encode()),
        f"rights row account_id='{ACCOUNT}', branch=1",
    ),
    "outcome": (_flip_field(lambda k: k.outcomes, b"dep-1"), "outcomes row scope="),
}


@pytest.mark.parametrize("what", sorted(REDIS_ROWS))
async def test_a_flipped_byte_in_a_redis_store_is_refused_at_start_and_found_by_verify(
    tmp_path: Path, redis_url: str, what: str
) -> None:
    await _bank_with_history(tmp_path / "logs", store=redis_url)
    flip, row = REDIS_ROWS[what]
    with _raw(redis_url) as raw:
        flip(raw, RedisKeys.of_branch(1))

    _assert_refused(_start_refused(tmp_path / "logs", store=redis_url), row)
    found = _verify("--store", redis_url, "--branch-id", "1")
    assert found.returncode == 1, found.stdout + found.stderr
    assert f"bad: {row}" in found.stdout
