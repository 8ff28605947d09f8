"""``dbank certs`` and ``dbank token``: the bank's PKI and callers' tokens (design §11).

A mistake in the flags or a TLS directory that cannot be used exits with status 2 and one
line naming the problem.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from dbank.cli._common import OneLineGroup
from dbank.ledger import MAX_BRANCH_ID
from dbank.security import (
    PkiError,
    Role,
    add_branch,
    init_pki,
    issue_token,
    load_token_signing_key,
    rotate_token_key,
)

_TTL = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_TTL_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_BRANCH_ID = click.IntRange(1, MAX_BRANCH_ID)


class _TlsDirProblem(click.ClickException):
    """The TLS directory cannot be used as asked: a mistake in the setup."""

    exit_code = 2


def _branch_list(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        ids = [int(part) for part in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a list like 1,2,3") from None
    if not all(1 <= n <= MAX_BRANCH_ID for n in ids):
        raise click.BadParameter(f"branch ids are from 1 to {MAX_BRANCH_ID}")
    if len(set(ids)) != len(ids):
        raise click.BadParameter("a branch id is named twice")
    return ids


def _ttl(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    match = _TTL.fullmatch(value.strip())
    if match is None:
        raise click.BadParameter(f"{value!r} is not a duration like 30m, 8h or 7d")
    return timedelta(**{_TTL_UNITS[match.group(2)]: int(match.group(1))})


_directory = click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
_hosts = click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="NAME",
    help="Another DNS name or IP address the branch is reached at (repeatable);"
    " localhost, 127.0.0.1 and ::1 are always in.",
)


@click.group(cls=OneLineGroup)
def certs() -> None:
    """Make the bank's CA, branch certificates and token signing keys."""


@certs.command("init")
@_directory
@click.option(
    "--branches",
    required=True,
    callback=_branch_list,
    metavar="1,2,3",
    help="The branches to make certificates for.",
)
@_hosts
def init_command(directory: Path, branches: list[int], hosts: tuple[str, ...]) -> None:
    """Make a TLS directory: the bank's CA, a certificate for each branch, and the token
    signing pair. Refuses to overwrite any key."""
    try:
        init_pki(directory, branches, hosts)
    except (PkiError, ValueError) as exc:
        raise _TlsDirProblem(str(exc)) from None
    listed = ",".join(str(n) for n in branches)
    click.echo(f"made the bank's CA, branches {listed} and the token key in {directory}")


@certs.command("add-branch")
@_directory
@click.argument("n", metavar="N", type=_BRANCH_ID)
@_hosts
def add_branch_command(directory: Path, n: int, hosts: tuple[str, ...]) -> None:
    """Make the certificate and key of branch N, signed by the directory's CA."""
    try:
        add_branch(directory, n, hosts)
    except (PkiError, ValueError) as exc:
        raise _TlsDirProblem(str(exc)) from None
    click.echo(f"made branch {n} in {directory}")


@certs.command("rotate-token-key")
@_directory
def rotate_command(directory: Path) -> None:
    """Sign new tokens with a new key; tokens of the old key stay valid at every branch
    given the directory's tokens.pub and tokens-*.pub."""
    try:
        retired, new = rotate_token_key(directory)
    except PkiError as exc:
        raise _TlsDirProblem(str(exc)) from None
    click.echo(f"new token key {new}; the old key {retired} is kept in tokens-{retired}.pub")


@click.group(cls=OneLineGroup)
def token() -> None:
    """Issue callers' tokens."""


@token.command("issue")
@click.option(
    "--tls-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    envvar="DBANK_TLS_DIR",
    help="The TLS directory holding tokens.key.  [env: DBANK_TLS_DIR]",
)
@click.option("--subject", required=True, help="Who the token is for (an account owner).")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option(
    "--ttl",
    default="8h",
    show_default=True,
    callback=_ttl,
    help="How long the token is valid: 30m, 8h, 7d...",
)
def issue_command(tls_dir: Path, subject: str, role: str, ttl: timedelta) -> None:
    """Print a token for SUBJECT in ROLE, alone on stdout."""
    try:
        key = load_token_signing_key(tls_dir)
    except PkiError as exc:
        raise _TlsDirProblem(str(exc)) from None
    try:
        issued = issue_token(key, subject=subject, role=role, ttl=ttl, now=datetime.now(UTC))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(issued)
