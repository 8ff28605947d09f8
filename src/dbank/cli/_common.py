"""What every ``dbank`` command shares: running a request, failing with its reason, and
the options that name a branch's store."""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from dbank import _event_loop as event_loop
from dbank.ledger import DbankError
from dbank.store import parse_redis_url

T = TypeVar("T")


def fail(error: DbankError) -> None:
    click.echo(f"error: {error.reason}: {error.message}", err=True)
    sys.exit(1)


def run_request(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return event_loop.run(make())
    except DbankError as exc:
        fail(exc)
        raise AssertionError("unreachable") from exc


def _parse_store(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return parse_redis_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def store_options(store_help: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--store`` (with ``store_help``) and ``--unsafe-redis``, for ``branch``,
    ``cluster`` and ``run``."""

    def add(command: Callable[..., None]) -> Callable[..., None]:
        command = click.option(
            "--unsafe-redis",
            is_flag=True,
            help="Use the Redis even if its settings can lose acknowledged writes (tests"
            " only: a branch that loses ops endangers the whole bank).",
        )(command)
        return click.option(
            "--store",
            metavar="redis://HOST:PORT/DB",
            callback=_parse_store,
            help=store_help,
        )(command)

    return add
