"""The one seam where callers of ``dbank.v1.Bank`` become principals, and are authorized.

Every Bank call carries ``authorization: Bearer <token>``: a JWT this branch verifies
offline with the bank's token keys (``dbank.security.TokenVerifier``), so authentication
works while branches are cut off from each other. The principal it names must be allowed
the method's action on the request's accounts (``BANK_RULES``) before the servicer runs.
An ``--insecure`` branch has no verifier: every caller is ``INSECURE_PRINCIPAL``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_reflection.v1alpha import reflection

from dbank._status import abort_with, error_from_status, status_message
from dbank.branch import Branch, batch_aborted
from dbank.errors import (
    AccountNotFound,
    BalanceOverflow,
    CurrencyMismatch,
    DbankError,
    PermissionDenied,
    Unauthenticated,
)
from dbank.security import (
    CALLER,
    CALLER_AUTHORIZATION,
    INSECURE_PRINCIPAL,
    Action,
    Principal,
    Role,
    TokenVerifier,
    require,
)
from dbank.server import _convert as convert
from dbank.server._authorization import BANK_RULES, Rule
from dbank.server._guard import BANK_SERVICE
from dbank.server._interceptors import Handler, UnaryInterceptor

StreamHandler = Callable[[Any, grpc.aio.ServicerContext], AsyncIterator[Any]]

REFLECTION_SERVICE = reflection.SERVICE_NAME
BEARER = "bearer "


class AuthInterceptor(UnaryInterceptor):
    """Authenticates and authorizes every ``dbank.v1.Bank`` call, and authenticates every
    reflection stream (it describes the whole API); health needs no token, and
    replication checks branch certificates itself."""

    def __init__(self, branch: Branch, verifier: TokenVerifier | None) -> None:
        super().__init__()
        self._branch = branch
        self._verifier = verifier

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        if self._verifier is None or not method.startswith(f"/{REFLECTION_SERVICE}/"):
            return await super().intercept_service(continuation, handler_call_details)
        handler = await continuation(handler_call_details)
        if handler is None or handler.stream_stream is None:
            return handler
        return grpc.stream_stream_rpc_method_handler(
            self._authenticated_stream(handler.stream_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _authenticated_stream(self, behavior: StreamHandler) -> StreamHandler:
        async def authenticated(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                self._principal(_authorization(context))
            except DbankError as exc:
                await abort_with(context, exc)
            async for reply in behavior(requests, context):
                yield reply

        return authenticated

    def wrap(self, behavior: Handler, method: str) -> Handler | None:
        _, service, name = method.split("/")
        if service != BANK_SERVICE:
            return None
        rule = BANK_RULES[name]

        async def authorized(request: Any, context: grpc.aio.ServicerContext) -> Any:
            header = _authorization(context)
            principal = self._principal(header)
            await self._authorize(principal, rule, request, context)
            forwarded = CALLER_AUTHORIZATION.set(header)
            caller = CALLER.set(None if self._verifier is None else principal)
            try:
                if not self._pays_a_stranger(principal, rule, request):
                    return await behavior(request, context)
                return await self._paying_a_stranger(principal, rule, behavior, request, context)
            finally:
                CALLER.reset(caller)
                CALLER_AUTHORIZATION.reset(forwarded)

        return authorized

    def _principal(self, header: str | None) -> Principal:
        """Raises ``Unauthenticated`` (reason per case: missing, malformed, expired...)."""
        if self._verifier is None:
            return INSECURE_PRINCIPAL
        if header is not None and not header.lower().startswith(BEARER):
            # A header that is not "Bearer ..." is a malformed token, not a missing one.
            raise Unauthenticated(
                "the authorization header is not 'Bearer <token>'", reason="TOKEN_MALFORMED"
            )
        return self._verifier.verify(None if header is None else header[len(BEARER) :])

    def _pays_a_stranger(self, principal: Principal, rule: Rule, request: Any) -> bool:
        """Whether a customer pays into an account it does not own (or that does not
        exist, which must look the same)."""
        if rule.parts is not None:
            return bool(self._strangers_paid(principal, rule, request))
        if principal.role is not Role.CUSTOMER or rule.pays_into is None:
            return False
        return self._branch.owner_of(rule.pays_into(request)[0]) != principal.subject

    def _strangers_paid(self, principal: Principal, rule: Rule, request: Any) -> dict[int, str]:
        """The parts of a request made of others (by their index in it, ``rule.parts``
        giving one per entry) that pay a stranger: the account each pays into."""
        assert rule.parts is not None
        return {
            index: part.pays_into(message)[0]
            for index, (part, message) in enumerate(rule.parts(request))
            if self._pays_a_stranger(principal, part, message) and part.pays_into is not None
        }

    async def _paying_a_stranger(
        self, principal: Principal, rule: Rule, behavior: Handler, request: Any, context: Any
    ) -> Any:
        """Run a customer's payment into an account it may not read: the reply leaves out
        that account's balance, and a refusal because of that account (unknown, another
        currency) is one and the same ``PERMISSION_DENIED``."""
        if rule.parts is not None:
            return await self._batch_paying_strangers(principal, rule, behavior, request, context)
        try:
            reply = await behavior(request, context)
        except DbankError as exc:
            assert rule.pays_into is not None  # what makes this a payment
            if not _about_stranger(exc, rule.pays_into(request)[0]):
                raise
            raise _may_not_pay(principal) from None
        reply.to_balance = 0
        return reply

    async def _batch_paying_strangers(
        self, principal: Principal, rule: Rule, behavior: Handler, request: Any, context: Any
    ) -> Any:
        """``_paying_a_stranger`` for each entry of a batch that pays a stranger. In a
        refused atomic batch, those entries say only that the batch was aborted, naming
        the first refusal that is not theirs when there is one: else whether a stranger's
        account exists would show, for free, in which entry the batch names."""
        strangers = self._strangers_paid(principal, rule, request)
        reply = await behavior(request, context)
        results = reply.results
        assert len(results) == len(request.entries)  # one result per entry, in order
        for index, target in strangers.items():
            result = results[index]
            if result.WhichOneof("result") == "transfer":
                result.transfer.to_balance = 0
            elif _about_stranger(error_from_status(result.error), target):
                result.error.CopyFrom(status_message(_may_not_pay(principal)))
        if request.atomic and any(r.WhichOneof("result") == "error" for r in results):
            own = [
                i
                for i, r in enumerate(results)
                if i not in strangers
                and r.WhichOneof("result") == "error"
                and error_from_status(r.error).reason != "BATCH_ABORTED"
            ]
            if own:
                aborted = status_message(batch_aborted(own[0]))
                for i, r in enumerate(results):
                    if i not in own:
                        r.error.CopyFrom(aborted)
        return reply

    async def _authorize(
        self, principal: Principal, rule: Rule, request: Any, context: grpc.aio.ServicerContext
    ) -> None:
        """Raises ``PermissionDenied``, alike for someone else's account and an unknown one."""
        parts = [(rule, request)] if rule.parts is None else rule.parts(request)
        if principal.role is not Role.CUSTOMER:
            for part, _ in parts:
                require(principal, _action(part), owner=None)  # the role alone decides
            return
        if rule.opens:
            require(principal, _action(rule), owner=rule.accounts(request)[0])
            return
        # A customer's right depends on the owner, which this replica knows for sure once
        # it covers what the customer has seen (the account may have been opened elsewhere).
        asked = convert.read_context(request, context)
        await self._branch.cover(asked.session, asked.budget, source=asked.session_source)
        for part, message in parts:
            for account_id in part.accounts(message):
                require(principal, _action(part), owner=self._branch.owner_of(account_id))


def _about_stranger(error: DbankError, target: str) -> bool:
    """Whether a refusal of a payment into ``target`` is because of that account (it is
    unknown, holds another currency, or cannot take more): what a customer who may not
    see it must not learn."""
    return isinstance(error, AccountNotFound | CurrencyMismatch | BalanceOverflow) and (
        error.metadata.get("account_id") == target
    )


def _may_not_pay(principal: Principal) -> PermissionDenied:
    return PermissionDenied(
        f"customer {principal.subject!r} may not pay into this account",
        reason="PERMISSION_DENIED",
    )


def _action(rule: Rule) -> Action:
    assert rule.action is not None  # only a request made of others has none
    return rule.action


def _authorization(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return str(value)
    return None
