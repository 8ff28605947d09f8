"""``dbank verify``: check a branch's store offline, as a branch checks it at start and
more (design §7.3)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from dbank import _event_loop as event_loop
from dbank.cli._common import BRANCH_ID, OneLineCommand
from dbank.store import (
    RedisAddress,
    StoreSpec,
    StoreUnusable,
    Verification,
    parse_redis_url,
    verify_store,
)

_STORE_FILE = re.compile(r"branch-([1-9][0-9]*)\.(?:sqlite3|json)")


class _BadInput(click.ClickException):
    """A flag or path that names no store: one line, exit status 2."""

    exit_code = 2


@click.command(cls=OneLineCommand)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="A data directory: check each branch's SQLite file in it (branch-N.sqlite3), and"
    " that every branch it remembers (branch-N.json) still has one.",
)
@click.option(
    "--store", metavar="redis://HOST:PORT/DB", help="Check a branch's keys in this Redis."
)
@click.option(
    "--branch-id",
    type=BRANCH_ID,
    help="Only this branch (needed with --store).",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Only what a branch checks at start: every row's digest and the version vector"
    " against the ops; without it the ops are also replayed and compared with the state.",
)
def verify(data_dir: Path | None, store: str | None, branch_id: int | None, quick: bool) -> None:
    """Check that a branch's store holds what was written, and say what was found.

    Every op, state and outcome row is checked against its digest, each origin's ops
    against the version vector, and (unless --quick) the ops are decoded and replayed:
    the state they give must be the stored state, and the history index must hold
    exactly them. Prints what was checked and each bad row. Exit status 0 when every
    store is sound, 1 when one is not, 2 for a flag or path that names no store.
    """
    specs = _specs(data_dir, store, branch_id)
    corrupt = False
    for spec in specs:
        try:
            found = event_loop.run(verify_store(spec, replay=not quick))
        except StoreUnusable as exc:
            raise _BadInput(exc.message) from None
        _report(found)
        corrupt = corrupt or not found.ok
    sys.exit(1 if corrupt else 0)


def _specs(data_dir: Path | None, store: str | None, branch_id: int | None) -> list[StoreSpec]:
    if (data_dir is None) == (store is None):
        raise _BadInput("give --data DIR or --store URL (one of them)")
    if store is not None:
        if branch_id is None:
            raise _BadInput("--store needs --branch-id N: which branch's keys to check")
        address = _redis(store)
        return [StoreSpec(branch_id, redis=address)]
    assert data_dir is not None
    if not data_dir.is_dir():
        raise _BadInput(f"--data {data_dir}: no such directory")
    ids = sorted(
        {int(m.group(1)) for p in data_dir.iterdir() if (m := _STORE_FILE.fullmatch(p.name))}
    )
    if branch_id is not None:
        ids = [branch_id]
    if not ids:
        raise _BadInput(f"--data {data_dir}: no branch's store (branch-N.sqlite3) in it")
    return [StoreSpec(i, path=data_dir / f"branch-{i}.sqlite3") for i in ids]


def _redis(url: str) -> RedisAddress:
    try:
        return parse_redis_url(url)
    except ValueError as exc:
        raise _BadInput(f"--store: {exc}") from None


def _report(found: Verification) -> None:
    rows = ", ".join(f"{count} {table}" for table, count in sorted(found.rows.items()))
    replayed = f"; {found.replayed} ops replayed" if found.replayed else ""
    click.echo(f"checked {found.store}: {rows or 'no rows'}{replayed}")
    for problem in found.problems:
        click.echo(f"  bad: {problem}")
    if found.more:
        click.echo(f"  and {found.more} more bad rows")
    verdict = "ok" if found.ok else f"CORRUPT ({len(found.problems) + found.more} problems)"
    click.echo(f"{found.store}: {verdict}")
