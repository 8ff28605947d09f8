"""The normalised scenario: what every input variant says once its spelling is gone.

A scenario is one shared account held by a set of branches that all open with the same
balance, and customer entries whose events run one after another in input order. Events
know the branch they run at whatever the variant called it (the customer entry's ``id`` in
P1 and P2, ``dest`` or ``branch`` in P3), so the runner and the reference model never look
at the variant except to write the output back in it.

Everything here is frozen and compares by value, so two loads of one file are equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Customer", "Event", "Interface", "Scenario", "Variant"]


class Variant(StrEnum):
    """The input format of a scenario file; the output is written in the same one.

    P2 classic (2022) input is spelled exactly like P1 classic and is read as
    ``P1_CLASSIC``: whether to write a Lamport trace is the caller's choice, not the file's.
    """

    P1_CLASSIC = "p1-classic"
    """Customer entries talk to the branch of their ``id``; queries carry placeholder ``money``."""
    P1_FALL_2023 = "p1-fall2023"
    """As P1 classic, but queries carry no ``money``."""
    P2_FALL_2023 = "p2-fall2023"
    """Customer entries list ``customer-requests``, each with a ``customer-request-id``."""
    P3_CLASSIC = "p3-classic"
    """Every event names the branch it runs at in ``dest``."""
    P3_FALL_2023 = "p3-fall2023"
    """Every event names the branch it runs at in ``branch``."""

    @property
    def display_name(self) -> str:
        """The variant's name for people: ``P3 Fall 2023``."""
        phase, year = self.value.split("-")
        return f"{phase.upper()} {'classic' if year == 'classic' else 'Fall 2023'}"


class Interface(StrEnum):
    """What an event asks of its branch."""

    QUERY = "query"
    DEPOSIT = "deposit"
    WITHDRAW = "withdraw"


@dataclass(frozen=True)
class Event:
    """One customer request, in whole currency units.

    Attributes:
        interface: query, deposit or withdraw.
        money: the amount a deposit or withdraw moves (always > 0); 0 for a query (the
            placeholder ``money`` of P1 classic queries is dropped on reading).
        branch: the id of the branch the event runs at.
        id: the input's ``id`` (``customer-request-id`` in P2 Fall 2023), ``None`` where the
            input has none. Not unique: public files repeat ids within and across customers.
    """

    interface: Interface
    money: int
    branch: int
    id: int | None = None


@dataclass(frozen=True)
class Customer:
    """One customer entry of the input, with its events in input order.

    ``id`` need not be unique: the public P1 Fall 2023 file lists customers 1..50 twice, and
    each entry is answered on its own.
    """

    id: int
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Scenario:
    """A whole input file, read and checked.

    Attributes:
        variant: the input format, which is also the output format.
        opening_balance: the balance every branch opens with, in whole units.
        branches: the branch ids in input order (unique, positive, not necessarily 1..N).
        customers: the customer entries in input order.
    """

    variant: Variant
    opening_balance: int
    branches: tuple[int, ...]
    customers: tuple[Customer, ...]

    @property
    def events(self) -> tuple[Event, ...]:
        """Every event in the order they run: customer by customer, each in its own order."""
        return tuple(event for customer in self.customers for event in customer.events)
