"""The Redis key schema of a branch: every key the Redis store uses, named in one place.

All keys of branch ``N`` start with ``dbank:{bN}:``; the braces are a hash tag, so a branch's
keys would share one slot on a clustered Redis too (the scripts touch many of them at once).

=====================  ======  ===========================================================
key                    type    holds
=====================  ======  ===========================================================
``meta``               hash    ``branch_id``, ``schema``, ``last_hlc`` (largest op HLC)
``accounts``           hash    account id -> ``[type, currency, owner, owner branch, hlc]``
``rights``             hash    ``"ACCOUNT BRANCH"`` -> escrow share (decimal string)
``credits``            hash    ``"ACCOUNT BRANCH"`` -> net credit (decimal string, may be
                               negative; schema 2 on)
``applied``            hash    origin -> seq (the version vector)
``outcomes``           hash    ``scope NUL request id`` -> encoded outcome
``postings``           hash    account id -> its last interest posting
``ops:ORIGIN``         list    encoded ops of one origin; index i holds seq i + 1
``history:ACCOUNT``    zset    one member per op in the account's history, ordered by
                               ``(hlc, origin, seq)`` as fixed-width text (all scores 0)
``lease``              string  ``HOLDER:TOKEN`` of the process running replication (PX)
``fence``              string  the last fencing token handed out (only grows)
``commits``            channel not a key: each commit of ops publishes its process's name
=====================  ======  ===========================================================

From schema 3 on, every value of the hashes from ``accounts`` to ``postings`` and every
item of an ``ops`` list starts with its row's digest and a space (``_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass

from dbank.ledger import IdempotencyKey

SCHEMA_VERSION = "3"
UPGRADABLE_SCHEMAS = ("1", "2")
"""Schemas whose keys ``RedisStore.open`` brings to ``SCHEMA_VERSION``: 1 lacks ``credits``,
both lack the digests of schema 3."""
_POSITION_WIDTH = 20  # digits of 2^63 - 1 and 2^64: every hlc, origin and seq fits


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """The keys of one branch."""

    prefix: str

    @classmethod
    def of_branch(cls, branch_id: int) -> RedisKeys:
        return cls(f"dbank:{{b{branch_id}}}:")

    @property
    def meta(self) -> str:
        return self.prefix + "meta"

    @property
    def accounts(self) -> str:
        return self.prefix + "accounts"

    @property
    def rights(self) -> str:
        return self.prefix + "rights"

    @property
    def credits(self) -> str:
        return self.prefix + "credits"

    @property
    def applied(self) -> str:
        return self.prefix + "applied"

    @property
    def outcomes(self) -> str:
        return self.prefix + "outcomes"

    @property
    def postings(self) -> str:
        return self.prefix + "postings"

    @property
    def lease(self) -> str:
        return self.prefix + "lease"

    @property
    def fence(self) -> str:
        return self.prefix + "fence"

    @property
    def commits(self) -> str:
        """The pub/sub channel of the branch's commits (``_redis_notices``)."""
        return self.prefix + "commits"

    def ops(self, origin: int) -> str:
        return f"{self.prefix}ops:{origin}"

    def history(self, account_id: str) -> str:
        return f"{self.prefix}history:{account_id}"


def branch_field(account_id: str, branch: int) -> str:
    """The field of an account and a branch in ``rights`` and ``credits``."""
    # Account ids never contain a space (``[A-Za-z0-9_.:-]``).
    return f"{account_id} {branch}"


def split_branch_field(field: str) -> tuple[str, int]:
    account_id, branch = field.rsplit(" ", 1)
    return account_id, int(branch)


def outcome_field(key: IdempotencyKey) -> str:
    # The scope is an account id, which never contains NUL; the request id may.
    scope, request_id = key
    return f"{scope}\0{request_id}"


def history_member(hlc: int, origin: int, seq: int) -> str:
    """Fixed-width text that sorts like ``(hlc, origin, seq)``; -1 (a position before
    every op, never an op's) sorts before every digit."""
    return f"{hlc:0{_POSITION_WIDTH}d}:{origin:0{_POSITION_WIDTH}d}:{seq:0{_POSITION_WIDTH}d}"
