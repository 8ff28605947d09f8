"""What one event got back: the unit the runner records and the output is written from.

The real runner and the reference model both produce a list of these, one per event in the
order the events ran, so the two can be compared directly and written by one function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dbank.scenario._scenario import Event, Interface

__all__ = ["EventResult", "Result"]

Result = Literal["success", "failure"]
"""A deposit always succeeds; a withdraw fails if it would overdraw; a query succeeds."""


@dataclass(frozen=True)
class EventResult:
    """The answer to one event.

    Attributes:
        event: the event answered.
        result: ``"success"`` or ``"failure"`` (a failed withdraw changed nothing).
        balance: the balance a query answered, in whole units; ``None`` for a deposit or
            withdraw, whose replies carry no balance in any variant.

    Raises:
        ValueError: on construction, if the fields contradict each other (a query without a
            balance or that failed, a deposit or withdraw with a balance).
    """

    event: Event
    result: Result
    balance: int | None = None

    def __post_init__(self) -> None:
        if self.result not in ("success", "failure"):
            raise ValueError(f"result must be 'success' or 'failure', not {self.result!r}")
        if self.event.interface is Interface.QUERY:
            if self.balance is None or self.result != "success":
                raise ValueError("a query's result is a success with the balance it answered")
        elif self.balance is not None:
            raise ValueError(f"a {self.event.interface}'s result carries no balance")

    @property
    def branch(self) -> int:
        """The branch that answered (P3 Fall 2023 prints it): the one the event ran at."""
        return self.event.branch
