"""The one error a scenario file can cause, and how a place in the file is written.

A bad file gets exactly one line: the file, the place, the problem::

    input.json: $[3]['customer-requests'][1].money: deposit needs a positive whole amount of money
    input.json: line 7, column 5: malformed JSON: Expecting ',' delimiter

The place is a JSON path (RFC 9535 style: ``$`` is the whole document, ``[3]`` an array
index, ``.money`` a member, ``['customer-requests']`` a member whose name is not an
identifier), or a line and column when the text is not JSON at all.

``ScenarioError`` is deliberately not a ``dbank.DbankError``: those are request outcomes
with a gRPC status each, while this is a mistake in a local file, reported before any
branch starts (``dbank run`` exits with status 2 on it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

__all__ = ["ScenarioError", "json_path", "show_value"]

_SHOWN_CHARS = 40


class ScenarioError(ValueError):
    """A scenario file cannot be read, is not JSON, or does not describe a valid scenario.

    Attributes:
        file: the file as the caller named it.
        where: a JSON path (``$[3].events[1].money``) or ``line L, column C``.
        problem: what is wrong there, for people.
    """

    def __init__(self, file: str, where: str, problem: str) -> None:
        super().__init__(f"{file}: {where}: {problem}")
        self.file = file
        self.where = where
        self.problem = problem


def json_path(location: Iterable[int | str]) -> str:
    """The JSON path of a location given as keys and indexes from the document's root."""
    parts = ["$"]
    for step in location:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif step.isidentifier():
            parts.append(f".{step}")
        else:
            quoted = step.replace("\\", "\\\\").replace("'", "\\'")
            parts.append(f"['{quoted}']")
    return "".join(parts)


def show_value(value: object) -> str:
    """A value as it is spelled in JSON, cut short, for quoting in a message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."
