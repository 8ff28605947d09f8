"""The input variants as they are spelled: one pydantic model per entry kind and variant.

These models check types and shape only: every field present that must be, no field that
the variant does not know (a typo is an error, not a silently ignored key), ids positive,
numbers whole (``10.5``, ``10.0``, ``"10"`` and ``true`` are all refused: money in these
files is whole currency units and is never a float), and within what the bank carries: ids
up to 2^32 - 1 (branch ids are ``uint32`` on the wire; customer and request ids are held
to the same), balances up to 2^63 - 1 (``int64``). Rules that need more than one field in
view (a deposit's money is positive, a customer's branch exists, the branches agree) are
checked while normalising, in ``_input``, where the JSON path is at hand.

The models are frozen and never leave the package: ``load_scenario`` turns them into
``Scenario``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from dbank.money import MAX_AMOUNT
from dbank.scenario._scenario import Variant

__all__ = [
    "CUSTOMER_MODELS",
    "ID_MAX",
    "BranchEntry",
    "CustomerEntry",
    "EventEntry",
    "P1ClassicCustomer",
    "P1ClassicEvent",
    "P1Fall2023Customer",
    "P1Fall2023Event",
    "P2Fall2023Customer",
    "P2Fall2023Request",
    "P3ClassicCustomer",
    "P3ClassicEvent",
    "P3Fall2023Customer",
    "P3Fall2023Event",
]

ID_MAX = 2**32 - 1
"""The largest id: branch ids are ``uint32`` on the wire (``proto/dbank/v1``)."""

Whole = Annotated[int, Field(strict=True)]
"""A JSON integer: floats (even ``10.0``), strings and booleans are refused. Its range is
checked where its meaning is known (``_input``): a query's placeholder is ignored."""
PositiveId = Annotated[int, Field(strict=True, gt=0, le=ID_MAX)]
EventId = Annotated[int, Field(strict=True, ge=0, le=ID_MAX)]
Balance = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT)]
InterfaceName = Literal["query", "deposit", "withdraw"]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BranchEntry(_Entry):
    """``{"id": 1, "type": "branch", "balance": 400}``, the same in every variant."""

    id: PositiveId
    type: Literal["branch"]
    balance: Balance


class EventEntry(_Entry):
    """What every variant's event has: an interface and, sometimes, money.

    The sign of ``money`` is not checked here: a deposit's must be positive, a query's is
    a placeholder that is ignored.
    """

    interface: InterfaceName
    money: Whole | None = None

    @property
    def event_id(self) -> int | None:
        """The event's id in the input, if it has one."""
        return None

    @property
    def named_branch(self) -> tuple[str, int] | None:
        """The member naming the event's branch and its value (P3); ``None`` in P1 and P2."""
        return None


class P1ClassicEvent(EventEntry):
    """``{"id": 1, "interface": "query", "money": 400}``: queries carry a placeholder."""

    id: EventId | None = None
    money: Whole

    @property
    def event_id(self) -> int | None:
        return self.id


class P1Fall2023Event(EventEntry):
    """``{"id": 2, "interface": "query"}``: queries carry no money."""

    id: EventId | None = None

    @property
    def event_id(self) -> int | None:
        return self.id


class P2Fall2023Request(EventEntry):
    """``{"customer-request-id": 1, "interface": "deposit", "money": 10}``."""

    customer_request_id: EventId = Field(alias="customer-request-id")

    @property
    def event_id(self) -> int | None:
        return self.customer_request_id


class P3ClassicEvent(EventEntry):
    """``{"id": 1, "interface": "deposit", "money": 400, "dest": 1}``."""

    id: EventId | None = None
    dest: PositiveId

    @property
    def event_id(self) -> int | None:
        return self.id

    @property
    def named_branch(self) -> tuple[str, int] | None:
        return ("dest", self.dest)


class P3Fall2023Event(EventEntry):
    """``{"id": 1, "interface": "deposit", "money": 400, "branch": 1}``."""

    id: EventId | None = None
    branch: PositiveId

    @property
    def event_id(self) -> int | None:
        return self.id

    @property
    def named_branch(self) -> tuple[str, int] | None:
        return ("branch", self.branch)


class CustomerEntry(_Entry):
    """``{"id": 1, "type": "customer", "events": [...]}``; subclasses fix the event model."""

    EVENTS_FIELD: ClassVar[str] = "events"
    """The member holding the events, for error paths."""
    ID_IS_BRANCH: ClassVar[bool] = True
    """Whether the entry's ``id`` is the branch its events run at (P1, P2) or not (P3)."""

    id: PositiveId
    type: Literal["customer"]
    events: tuple[EventEntry, ...]


class P1ClassicCustomer(CustomerEntry):
    events: tuple[P1ClassicEvent, ...]


class P1Fall2023Customer(CustomerEntry):
    events: tuple[P1Fall2023Event, ...]


class P2Fall2023Customer(CustomerEntry):
    EVENTS_FIELD = "customer-requests"

    events: tuple[P2Fall2023Request, ...] = Field(alias="customer-requests")


class P3ClassicCustomer(CustomerEntry):
    ID_IS_BRANCH = False

    events: tuple[P3ClassicEvent, ...]


class P3Fall2023Customer(CustomerEntry):
    ID_IS_BRANCH = False

    events: tuple[P3Fall2023Event, ...]


CUSTOMER_MODELS: dict[Variant, type[CustomerEntry]] = {
    Variant.P1_CLASSIC: P1ClassicCustomer,
    Variant.P1_FALL_2023: P1Fall2023Customer,
    Variant.P2_FALL_2023: P2Fall2023Customer,
    Variant.P3_CLASSIC: P3ClassicCustomer,
    Variant.P3_FALL_2023: P3Fall2023Customer,
}
"""The customer entry model of each variant; branch entries are ``BranchEntry`` in all."""
