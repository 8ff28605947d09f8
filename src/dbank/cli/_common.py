"""What every ``dbank`` command shares: running a request, failing with its reason, the
options that name a branch's store, the types of addresses and branch ids, and usage
errors in one line.

A mistake in the command line is one line on standard error and exit status 2, with the
hint where to read more on the same line::

    error: --branch: the port of '127.0.0.1:99999' is not in 1-65535 (see 'dbank branch --help')
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import IO, Any, TypeVar

import click
from click.core import ParameterSource

from dbank import _event_loop as event_loop
from dbank.branch import ConfigError, check_address
from dbank.ledger import MAX_BRANCH_ID, DbankError
from dbank.store import parse_redis_url

T = TypeVar("T")

BRANCH_ID = click.IntRange(1, MAX_BRANCH_ID)
"""The type of every flag or argument that names a branch."""


class Address(click.ParamType[str]):
    """``HOST:PORT``: a host present (a name, IPv4, or IPv6 in brackets), a port in 1-65535,
    or 0-65535 where the branch listens (``listening``; port 0 takes any free port)."""

    name = "HOST:PORT"

    def __init__(self, *, listening: bool = False) -> None:
        self.listening = listening

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        try:
            return check_address(text, where=_flag(param, ctx), listening=self.listening)
        except ConfigError as exc:
            raise click.UsageError(str(exc), ctx) from None


def _flag(param: click.Parameter | None, ctx: click.Context | None) -> str:
    """How the user gave ``param``: its flag, or the environment variable it came from."""
    if param is None:
        return "the address"
    source = None if ctx is None or param.name is None else ctx.get_parameter_source(param.name)
    if source is ParameterSource.ENVIRONMENT and isinstance(param.envvar, str):
        return f"${param.envvar}"
    return max(param.opts, key=len) if param.opts else str(param.name)


class _OneLineUsageError(click.ClickException):
    """A usage error said in one line, with the hint to ``--help`` on the same line."""

    exit_code = 2

    def __init__(self, message: str, command_path: str) -> None:
        super().__init__(message)
        self.command_path = command_path

    def show(self, file: IO[Any] | None = None) -> None:
        hint = f" (see '{self.command_path} --help')" if self.command_path else ""
        message = self.format_message().removesuffix(".")
        click.echo(f"error: {message}{hint}", file=file, err=True)


@contextlib.contextmanager
def _in_one_line(command_path: str) -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # the help itself, not a mistake
    except click.UsageError as exc:
        path = exc.ctx.command_path if exc.ctx is not None else command_path
        raise _OneLineUsageError(exc.format_message(), path) from None


def _path(info_name: str | None, parent: click.Context | None) -> str:
    names = [parent.command_path if parent is not None else "", info_name or ""]
    return " ".join(name for name in names if name)


class OneLineCommand(click.Command):
    """A command whose usage errors are one line (``_OneLineUsageError``).

    Parsing happens in ``make_context`` and the command itself in ``invoke``: a usage
    error from either is said in one line. Mixed in first, it does the same for a group.
    """

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _in_one_line(_path(info_name, parent)):
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _in_one_line(ctx.command_path):
            return super().invoke(ctx)


class OneLineGroup(OneLineCommand, click.Group):
    """A group whose usage errors (no such command), and its commands', are one line."""

    command_class = OneLineCommand


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
