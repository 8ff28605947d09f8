"""Pydantic's validation errors, said in one line in the words of the scenario format.

Pydantic reports every error it finds, over several lines, in its own terms ("Input should
be a valid integer"). A scenario error is one line naming one place, so only the first
error is kept (errors come in the order of the file) and its type is put in this format's
words; its location becomes the JSON path.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from dbank.scenario._errors import ScenarioError, json_path, show_value

__all__ = ["scenario_error"]

_MOVES_MONEY = ("deposit", "withdraw")
_VARIANT_MEMBERS = frozenset(
    {"money", "dest", "branch", "events", "customer-requests", "customer-request-id"}
)
"""Members whose presence depends on the variant: a missing one may mean a mixed file."""
_NAMES = {
    "money": "money",
    "balance": "the opening balance",
    "id": "an id",
    "dest": "a branch id",
    "branch": "a branch id",
    "customer-request-id": "a request id",
}
_UNITS = {"money": " of currency units", "balance": " of currency units"}
_LIMITS = {
    "balance": " (the bank's int64 range)",
    **dict.fromkeys(("id", "dest", "branch", "customer-request-id"), " (the bank's uint32 range)"),
}
"""Why a member's upper bound is what it is."""


def scenario_error(
    file: str, prefix: tuple[int | str, ...], exc: ValidationError, variant_reason: str
) -> ScenarioError:
    """The ``ScenarioError`` for the first of ``exc``'s errors.

    Args:
        file: the file as the caller named it.
        prefix: where the validated value sits in the document (``(3,)`` for entry 3).
        exc: pydantic's error for that value.
        variant_reason: why the file reads as the variant it was validated as; added to
            errors of shape that usually mean the file mixes variants (an unexpected
            member, a missing one that only some variants have).
    """
    error = exc.errors(include_url=False)[0]
    location = (*prefix, *error["loc"])
    return ScenarioError(file, json_path(location), _problem(error, variant_reason))


def _problem(error: ErrorDetails, variant_reason: str) -> str:
    kind, value = error["type"], error["input"]
    member = str(error["loc"][-1]) if error["loc"] else ""
    if kind == "missing":
        interface = value.get("interface") if isinstance(value, dict) else None
        if member == "money" and interface in _MOVES_MONEY:
            return f"{interface} needs a positive whole amount of money"
        if member in _VARIANT_MEMBERS:
            return f"required member is missing (the file reads as {variant_reason})"
        return "required member is missing"
    if kind == "extra_forbidden":
        return f"unexpected member (the file reads as {variant_reason})"
    shown = show_value(value)
    if kind == "less_than_equal":
        limit = error.get("ctx", {}).get("le")
        name = _NAMES.get(member, f"'{member}'")
        return f"{name} must be at most {limit}{_LIMITS.get(member, '')}, not {shown}"
    return _value_problem(kind, member, shown) or f"{error['msg']}, not {shown}"


def _value_problem(kind: str, member: str, shown: str) -> str | None:
    name = _NAMES.get(member, f"'{member}'")
    if kind == "int_type":
        return f"{name} must be a whole number{_UNITS.get(member, '')}, not {shown}"
    if kind == "greater_than":
        return f"{name} must be a positive whole number, not {shown}"
    if kind == "greater_than_equal":
        return f"{name} must not be negative, not {shown}"
    if kind == "literal_error" and member == "interface":
        return f'unknown interface {shown}: expected "query", "deposit" or "withdraw"'
    if kind in ("tuple_type", "list_type"):
        return f"{name} must be a list, not {shown}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected an object, not {shown}"
    return None
