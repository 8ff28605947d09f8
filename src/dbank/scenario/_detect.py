"""Which variant a parsed input file is, told from the members its entries use.

The variants differ in a few member names only, so the file is classified on the raw JSON
before any validation, and then validated strictly against that one variant's models. A
file that mixes variants therefore fails on the first entry that does not fit, with a
message that says which variant the file was read as and why (``reason``).

The rules, first match wins:

1. a customer entry has ``customer-requests``: P2 Fall 2023;
2. an event has ``dest``: P3 classic;
3. an event has ``branch``: P3 Fall 2023;
4. a ``query`` event has ``money``: P1 classic (a placeholder; P2 classic reads the same);
5. otherwise: P1 Fall 2023.

A file without any telling member cannot be told apart and reads as P1 Fall 2023: a P1
classic file without a query (whose output is the same either way), a P3 file whose
customers have no events, a P2 Fall 2023 file without customers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from dbank.scenario._scenario import Variant

__all__ = ["detect_variant", "reason"]

_REASONS = {
    Variant.P1_CLASSIC: "a query carries a placeholder 'money'",
    Variant.P1_FALL_2023: "it has no 'customer-requests', 'dest', 'branch' or query 'money'",
    Variant.P2_FALL_2023: "a customer has 'customer-requests'",
    Variant.P3_CLASSIC: "an event has 'dest'",
    Variant.P3_FALL_2023: "an event has 'branch'",
}


def detect_variant(entries: Sequence[object]) -> Variant:
    """The variant of a parsed file's top-level list, by the rules above. Never raises."""
    customers = [e for e in entries if isinstance(e, dict) and e.get("type") == "customer"]
    if any("customer-requests" in customer for customer in customers):
        return Variant.P2_FALL_2023
    events = list(_events(customers))
    if any("dest" in event for event in events):
        return Variant.P3_CLASSIC
    if any("branch" in event for event in events):
        return Variant.P3_FALL_2023
    if any(event.get("interface") == "query" and "money" in event for event in events):
        return Variant.P1_CLASSIC
    return Variant.P1_FALL_2023


def reason(variant: Variant) -> str:
    """Why a file reads as ``variant``: ``"P3 classic: an event has 'dest'"``."""
    return f"{variant.display_name}: {_REASONS[variant]}"


def _events(customers: list[dict[object, object]]) -> Iterator[dict[object, object]]:
    for customer in customers:
        events = customer.get("events")
        if isinstance(events, list):
            yield from (event for event in events if isinstance(event, dict))
