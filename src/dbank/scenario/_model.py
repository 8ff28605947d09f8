"""The reference model: the bank as one balance and a loop, the oracle for the real runner.

It states the semantics every conformance case relies on, and nothing else: one shared
account that opens with the scenario's opening balance; events applied one after another,
customer entry by customer entry, each in its own order; a query answers the balance, a
deposit always succeeds, a withdraw larger than the balance fails and changes nothing.
Branches do not appear: every event sees every earlier one, wherever either ran.
"""

from __future__ import annotations

from dbank.scenario._results import EventResult
from dbank.scenario._scenario import Interface, Scenario

__all__ = ["run_model"]


def run_model(scenario: Scenario) -> list[EventResult]:
    """The result of every event of ``scenario``, in the order the events run."""
    balance = scenario.opening_balance
    results: list[EventResult] = []
    for event in scenario.events:
        match event.interface:
            case Interface.QUERY:
                results.append(EventResult(event, "success", balance))
            case Interface.DEPOSIT:
                balance += event.money
                results.append(EventResult(event, "success"))
            case Interface.WITHDRAW if event.money > balance:
                results.append(EventResult(event, "failure"))
            case Interface.WITHDRAW:
                balance -= event.money
                results.append(EventResult(event, "success"))
    return results
