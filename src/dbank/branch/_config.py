"""What a branch needs to know to run, from flags or from a bank's TOML file.

A bank file names every branch once, so that all branches read the same list::

    [branches.1]
    listen = "127.0.0.1:7001"
    data = "data/branch-1"

    [branches.2]
    listen = "127.0.0.1:7002"
    data = "data/branch-2"

Each branch's peers are the other entries' ``listen`` addresses. A branch keeps its state in
a SQLite file under ``data`` unless its entry names a Redis store instead::

    [branches.3]
    listen = "127.0.0.1:7003"
    store = "redis://127.0.0.1:6390/0"

A secure bank names its TLS directory (``dbank certs init``) once, and each branch the
address it serves its peers on (mutual TLS); peers then dial ``peer_listen``::

    tls_dir = "certs"

    [branches.1]
    listen = "127.0.0.1:7001"
    peer_listen = "127.0.0.1:7101"
"""

from __future__ import annotations

import enum
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import pydantic

from dbank.ledger import MAX_BRANCH_ID, Op, genesis_digest
from dbank.store import RedisAddress, StoreSpec, parse_redis_url


class Streams(enum.Enum):
    """When a branch streams its ops to its peers (design §4)."""

    ALWAYS = "always"
    """From the start, to its stream targets (every peer in a small bank, a few in a large
    one), and it fetches what it lacks from them while some peer streams nothing to it
    (catch-up): the replicas converge on their own. Every bank that serves customers."""
    ON_DEMAND = "on-demand"
    """Only when a request needs it: a session pull, a borrow's grant, a write at ``ALL``
    (which opens its streams then). Nothing travels in the background, so replicas
    converge only as far as requests carry ops. For a short-lived bank that one client
    drives with one session (``dbank run``), where every request's session already
    brings every earlier write to the branch that serves it."""


class ConfigError(ValueError):
    """A configuration that cannot work; the message names the file or flag and the place."""


@dataclass(frozen=True, slots=True)
class BranchConfig:
    """Attributes:
    branch_id: this branch's id, a positive integer unique in the bank.
    listen: the ``HOST:PORT`` the gRPC server binds (port 0 picks a free port).
    data_dir: where the branch's SQLite file lives; None keeps everything in memory
        (tests only: nothing survives a restart).
    peers: the other branches, id to ``HOST:PORT``.
    store: the Redis that keeps the branch's state instead of a SQLite file.
    unsafe_redis: use that Redis even if its settings can lose acknowledged writes.
    genesis: the bank's genesis op (``dbank.ledger.genesis_op``), if it has one: applied
        before anything else, and its digest must match every peer's.
    trace_dir: where to write the branch's Lamport trace when it stops (``dbank.tracing``);
        None records nothing.
    tls_dir: the bank's TLS material (``dbank certs init``): the branch serves only TLS,
        verifies callers' tokens, and serves its peers on ``peer_listen`` with mutual TLS.
        None: plaintext and no authentication (``--insecure``; development only).
    peer_listen: the ``HOST:PORT`` where the branch serves its peers (mutual TLS); with
        ``tls_dir`` only. ``peers`` then name the peers' ``peer_listen`` addresses.
    max_clock_offset_ms: how far ahead of this branch's clock a timestamp from elsewhere
        may be (an op's HLC, a seal); anything later is refused.
    streams: when the branch streams its ops to its peers (``Streams``).
    connect_early: peers to connect to while the branch starts, before a request needs
        them; the others are connected when first needed. ``dbank run`` names the peers
        each branch's events will fetch from: the handshakes (mutual TLS) are then made
        while every branch starts at once, not one by one on the events' path.
    """

    branch_id: int
    listen: str = "127.0.0.1:0"
    data_dir: Path | None = None
    peers: dict[int, str] = field(default_factory=dict)
    store: RedisAddress | None = None
    unsafe_redis: bool = False
    genesis: Op | None = None
    trace_dir: Path | None = None
    tls_dir: Path | None = None
    peer_listen: str | None = None
    max_clock_offset_ms: int = 500
    streams: Streams = Streams.ALWAYS
    connect_early: frozenset[int] = frozenset()
    genesis_digest: str = field(init=False, repr=False, compare=False)
    """What this branch says in Hello: "" for a bank with no genesis op. Computed once:
    encoding and hashing the genesis op (every branch's share of the opening balance) on
    every Hello cost a tenth of a starting branch's Python time in a bank of 50."""

    def __post_init__(self) -> None:
        digest = "" if self.genesis is None else genesis_digest(self.genesis)
        object.__setattr__(self, "genesis_digest", digest)

    @property
    def branch_ids(self) -> list[int]:
        """Every branch of the bank, sorted."""
        return sorted({self.branch_id, *self.peers})

    @property
    def store_path(self) -> Path | None:
        if self.data_dir is None:
            return None
        return self.data_dir / f"branch-{self.branch_id}.sqlite3"

    @property
    def store_spec(self) -> StoreSpec:
        """The store this branch keeps its state in (``dbank.store.open_store``)."""
        return StoreSpec(
            branch_id=self.branch_id,
            path=None if self.store is not None else self.store_path,
            redis=self.store,
            unsafe_redis=self.unsafe_redis,
            replicated=bool(self.peers),
        )


PORT_MAX = 65535

_PORT = re.compile(r"[0-9]+")
_HOST = re.compile(r"[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\]")
"""A host name, an IPv4 address, or an IPv6 address in brackets (``[::1]``)."""
_BARE_IPV6 = re.compile(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")
_SHOWN_CHARS = 40


def _shown(text: str) -> str:
    """``text`` quoted for a message, cut short: a flag can be arbitrarily long."""
    quoted = repr(text)
    return quoted if len(quoted) <= _SHOWN_CHARS else quoted[: _SHOWN_CHARS - 4] + "...'"


def address_problem(text: str, *, listening: bool = False) -> str | None:
    """What is wrong with ``text`` as ``HOST:PORT``, or None if nothing is.

    The host must be present: a name, an IPv4 address or an IPv6 address in brackets. The
    port is 1-65535, or 0-65535 for an address to ``listening`` on (port 0 asks for any
    free port).
    """
    host, sep, port = text.rpartition(":")
    shown = _shown(text)
    if not sep or not _PORT.fullmatch(port):
        return f"expected HOST:PORT, got {shown}"
    if not host:
        return f"no host in {shown}: expected HOST:PORT"
    if not _HOST.fullmatch(host):
        if _BARE_IPV6.fullmatch(host):
            return f"expected HOST:PORT with an IPv6 host in brackets ([::1]:7001), got {shown}"
        return f"expected HOST:PORT with a host name or address, got {shown}"
    low = 0 if listening else 1
    if len(port) > len(str(PORT_MAX)) or not low <= int(port) <= PORT_MAX:
        return f"the port of {shown} is not in {low}-{PORT_MAX}"
    return None


def check_address(text: str, *, where: str, listening: bool = False) -> str:
    """Return ``text`` if it is ``HOST:PORT`` (``address_problem``): a host present, and a
    port in 1-65535, or 0-65535 for an address to listen on.

    Raises:
        ConfigError: naming ``where`` and the problem.
    """
    problem = address_problem(text, listening=listening)
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
    return text


def check_store_url(text: str, *, where: str = "--store") -> RedisAddress:
    """The Redis that ``redis://HOST:PORT/DB`` names."""
    try:
        return parse_redis_url(text)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse_peers(text: str, *, where: str = "--peers") -> dict[int, str]:
    """Parse ``1=HOST:PORT,3=HOST:PORT`` into ``{1: "HOST:PORT", 3: "HOST:PORT"}``."""
    peers: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        branch_id, sep, address = item.partition("=")
        branch_id = branch_id.strip()
        if not sep or not branch_id.isascii() or not branch_id.isdigit():
            raise ConfigError(f"{where}: expected ID=HOST:PORT, got {_shown(item)}")
        if len(branch_id) > len(str(MAX_BRANCH_ID)) or not 1 <= int(branch_id) <= MAX_BRANCH_ID:
            problem = f"the branch id of {_shown(item)} is not in 1-{MAX_BRANCH_ID}"
            raise ConfigError(f"{where}: {problem}")
        if int(branch_id) in peers:
            raise ConfigError(f"{where}: branch {int(branch_id)} is named twice")
        peers[int(branch_id)] = check_address(address.strip(), where=where)
    return peers


_BranchId = Annotated[int, pydantic.Field(ge=1, le=MAX_BRANCH_ID)]


class _BranchEntry(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    listen: str
    peer_listen: str | None = None
    data: Path | None = None
    store: str | None = None
    unsafe_redis: bool = False


class _BankFile(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    branches: dict[_BranchId, _BranchEntry] = pydantic.Field(min_length=1)
    tls_dir: Path | None = None


def load_bank_file(path: Path, branch_id: int) -> BranchConfig:
    """The configuration of branch ``branch_id`` from the bank file at ``path``; a relative
    ``data`` directory is taken relative to the file.

    Raises:
        ConfigError: the file cannot be read, is not TOML, or does not fit the format.
    """
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        bank = _BankFile.model_validate(raw)
    except pydantic.ValidationError as exc:
        error = exc.errors()[0]
        *parts, last = error["loc"] or ("",)
        if parts[:1] == ["branches"] and last == "[key]":  # the N of [branches.N]
            place = ".".join(str(part) for part in parts)
            problem = f"a branch id is from 1 to {MAX_BRANCH_ID}"
            raise ConfigError(f"{path}: {place}: {problem}, got {_shown(str(parts[-1]))}") from None
        place = ".".join(str(part) for part in error["loc"])
        raise ConfigError(f"{path}: {place}: {error['msg']}") from None
    entry = bank.branches.get(branch_id)
    if entry is None:
        raise ConfigError(f"{path}: no [branches.{branch_id}] entry")
    _check_addresses(path, bank, branch_id)
    data = (
        entry.data if entry.data is None or entry.data.is_absolute() else path.parent / entry.data
    )
    store = (
        None
        if entry.store is None
        else check_store_url(entry.store, where=f"{path}: branches.{branch_id}.store")
    )
    return BranchConfig(
        branch_id=branch_id,
        listen=entry.listen,
        data_dir=data,
        peers={i: b.peer_listen or b.listen for i, b in bank.branches.items() if i != branch_id},
        store=store,
        unsafe_redis=entry.unsafe_redis,
        tls_dir=_relative_to(path, bank.tls_dir),
        peer_listen=entry.peer_listen,
    )


def _check_addresses(path: Path, bank: _BankFile, branch_id: int) -> None:
    """Every entry's addresses are ``HOST:PORT``; the ones the other branches dial (an
    entry's ``peer_listen``, else its ``listen``) need a real port, not 0."""
    for other_id, other in bank.branches.items():
        dialed = "peer_listen" if other.peer_listen is not None else "listen"
        for key in ("listen", "peer_listen"):
            text = getattr(other, key)
            if text is not None:
                listening = other_id == branch_id or key != dialed
                problem = address_problem(text, listening=listening)
                if problem is not None:
                    why = "" if listening else f" (branch {branch_id} dials it)"
                    raise ConfigError(f"{path}: branches.{other_id}.{key}: {problem}{why}")


def _relative_to(path: Path, directory: Path | None) -> Path | None:
    if directory is None or directory.is_absolute():
        return directory
    return path.parent / directory
