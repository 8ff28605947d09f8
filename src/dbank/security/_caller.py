"""The credentials of the request being served, for the calls it makes on its behalf.

A branch that forwards a customer's request to another branch (to the account's owner
branch, or to the branch a request id belongs to) sends the caller's own token along, so
that the other branch authenticates and authorizes the caller again: no branch vouches
for a customer.
"""

from __future__ import annotations

from contextvars import ContextVar

from dbank.security._policy import Principal

CALLER_AUTHORIZATION: ContextVar[str | None] = ContextVar("caller_authorization", default=None)
"""The ``authorization`` header value of the request this task serves, if it had one."""


CALLER: ContextVar[Principal | None] = ContextVar("caller", default=None)
"""The authenticated caller of the request this task serves; None on an ``--insecure``
branch, where callers are not told apart."""


def caller_name() -> str:
    """The caller's name for idempotency keys ("" on an ``--insecure`` branch)."""
    principal = CALLER.get()
    return "" if principal is None else principal.subject


def forwarded_metadata() -> tuple[tuple[str, str], ...]:
    """The metadata that carries the caller's credentials on a forwarded call."""
    value = CALLER_AUTHORIZATION.get()
    return () if value is None else (("authorization", value),)
