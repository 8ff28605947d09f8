"""The files of a bank's TLS directory: their names, how they are written and read, and the
errors of a directory that cannot be used.

These are start-up errors of an operator's setup, not outcomes of a request, so they stand
beside the request error tree of ``dbank.errors`` (as ``dbank.branch.ConfigError`` does)::

    PkiError                 the TLS directory cannot be used as asked
    ├── TlsMaterialError     a file is missing, unreadable, or not what its name says; the
    │                        one-line message names the file and the command that makes it
    └── KeyExists            making a key or certificate would overwrite one that exists
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
TOKEN_KEY = "tokens.key"
TOKEN_PUBLIC_KEY = "tokens.pub"
RETIRED_TOKEN_KEYS = "tokens-*.pub"

_PRIVATE_MODE = 0o600
_PUBLIC_MODE = 0o644


class PkiError(Exception):
    """The bank's TLS directory cannot be used as asked; the message is one line."""


class TlsMaterialError(PkiError):
    """A file of the TLS directory is missing, unreadable or does not hold what its name
    says. The message names the file and how to make it (``dbank certs init ...``)."""


class KeyExists(PkiError):
    """A key or certificate to make exists already: keys are never overwritten, since that
    would lock out every branch or caller that holds the old one."""


def branch_cert(n: int) -> str:
    return f"branch-{n}.crt"


def branch_key(n: int) -> str:
    return f"branch-{n}.key"


def retired_token_key(kid: str) -> str:
    return f"tokens-{kid}.pub"


def read_file(path: Path, *, how_to_make: str) -> bytes:
    """Return the bytes of ``path``; raise TlsMaterialError naming it and ``how_to_make``."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TlsMaterialError(f"{path} does not exist; {how_to_make}") from None
    except OSError as exc:
        raise TlsMaterialError(f"cannot read {path}: {exc.strerror or exc}") from None


def read_private(path: Path, *, how_to_make: str) -> bytes:
    """Return the bytes of the private key file ``path``, refusing one that users other
    than its owner may read or write (as ssh and CockroachDB do): a key others could read
    is no longer secret."""
    data = read_file(path, how_to_make=how_to_make)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise TlsMaterialError(
            f"{path} is open to other users (mode {mode:04o}); `chmod 600 {path}` if it is"
            " still secret"
        )
    return data


def refuse_existing(paths: list[Path]) -> None:
    """Raise KeyExists for the first of ``paths`` that exists, before anything is written."""
    for path in paths:
        if path.exists():
            raise KeyExists(f"{path} exists already; keys and certificates are never overwritten")


def write_new(path: Path, data: bytes, *, private: bool) -> None:
    """Create ``path`` holding ``data``; raise KeyExists if it exists.

    A private file is created with mode 0600 by the ``open`` call itself (``O_EXCL``), so
    there is no moment when another user could read it and no race with another writer.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, _PRIVATE_MODE if private else _PUBLIC_MODE)
    except FileExistsError:
        raise KeyExists(
            f"{path} exists already; keys and certificates are never overwritten"
        ) from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def replace(path: Path, data: bytes, *, private: bool) -> None:
    """Replace ``path`` with ``data`` atomically: a reader sees the old file or the new one.

    The new content goes to a fresh file (mode 0600 from creation if private) that is then
    renamed over ``path``.
    """
    staging = path.with_name(f".{path.name}.new")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    write_new(staging, data, private=private)
    os.replace(staging, path)
