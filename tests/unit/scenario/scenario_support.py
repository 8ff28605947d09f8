"""Random valid scenarios, and the input file that spells each one in its variant.

Used by the property tests: any ``Scenario`` drawn here, written by ``input_document`` and
read back by ``load_scenario``, must come back equal.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from dbank.scenario import Customer, Event, Interface, Scenario, Variant

P3_VARIANTS = (Variant.P3_CLASSIC, Variant.P3_FALL_2023)
_IDS = st.integers(min_value=1, max_value=10**6)
_EVENT_IDS = st.integers(min_value=0, max_value=10**6)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A valid scenario of any variant that its file can be told to be (see ``_detect``)."""
    variant = draw(st.sampled_from(Variant))
    branches = tuple(draw(st.lists(_IDS, min_size=1, max_size=6, unique=True)))
    customers = draw(st.lists(_customers(variant, branches), max_size=6))
    if not _recognisable(variant, customers):
        branch = draw(st.sampled_from(branches))
        query = Event(Interface.QUERY, 0, branch, id=draw(_EVENT_IDS))
        customers.append(Customer(id=branch, events=(query,)))
    opening = draw(st.integers(min_value=0, max_value=10**12))
    return Scenario(variant, opening, branches, tuple(customers))


@st.composite
def _customers(draw: st.DrawFn, variant: Variant, branches: Sequence[int]) -> Customer:
    customer_id = draw(_IDS if variant in P3_VARIANTS else st.sampled_from(branches))
    events = draw(st.lists(_events(variant, branches, customer_id), max_size=5))
    return Customer(id=customer_id, events=tuple(events))


@st.composite
def _events(draw: st.DrawFn, variant: Variant, branches: Sequence[int], customer: int) -> Event:
    interface = draw(st.sampled_from(Interface))
    money = 0 if interface is Interface.QUERY else draw(st.integers(1, 10**12))
    branch = draw(st.sampled_from(branches)) if variant in P3_VARIANTS else customer
    ids = _EVENT_IDS if variant is Variant.P2_FALL_2023 else st.none() | _EVENT_IDS
    return Event(interface, money, branch, id=draw(ids))


def _recognisable(variant: Variant, customers: Sequence[Customer]) -> bool:
    """Whether a file of these customers carries the member that tells its variant."""
    events = [event for customer in customers for event in customer.events]
    if variant is Variant.P1_CLASSIC:
        return any(event.interface is Interface.QUERY for event in events)
    if variant is Variant.P2_FALL_2023:
        return bool(customers)
    if variant in P3_VARIANTS:
        return bool(events)
    return True


def input_document(scenario: Scenario, branches_at: Sequence[bool] = ()) -> list[object]:
    """The input file of ``scenario`` in its variant, parsed.

    ``branches_at`` interleaves branch and customer entries: at each position, ``True``
    takes the next branch entry (while there are any), ``False`` the next customer entry.
    Entries left over follow, branches first.
    """
    branches: list[object] = [
        {"id": branch, "type": "branch", "balance": scenario.opening_balance}
        for branch in scenario.branches
    ]
    customers = [_customer_entry(scenario, customer) for customer in scenario.customers]
    document: list[object] = []
    for take_branch in branches_at:
        source = branches if (take_branch and branches) or not customers else customers
        if source:
            document.append(source.pop(0))
    return [*document, *branches, *customers]


def _customer_entry(scenario: Scenario, customer: Customer) -> dict[str, object]:
    events = [_event_entry(scenario, event) for event in customer.events]
    key = "customer-requests" if scenario.variant is Variant.P2_FALL_2023 else "events"
    return {"id": customer.id, "type": "customer", key: events}


def _event_entry(scenario: Scenario, event: Event) -> dict[str, object]:
    variant = scenario.variant
    entry: dict[str, object] = {}
    if event.id is not None:
        entry["customer-request-id" if variant is Variant.P2_FALL_2023 else "id"] = event.id
    entry["interface"] = event.interface.value
    if event.interface is not Interface.QUERY:
        entry["money"] = event.money
    elif variant is Variant.P1_CLASSIC:
        entry["money"] = scenario.opening_balance  # the placeholder, ignored on reading
    if variant is Variant.P3_CLASSIC:
        entry["dest"] = event.branch
    elif variant is Variant.P3_FALL_2023:
        entry["branch"] = event.branch
    return entry
