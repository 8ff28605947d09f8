"""The one error of hosting a bank's branches."""

from __future__ import annotations


class RunError(Exception):
    """A run could not complete: a branch failed to start, exited, or did not connect in
    time, or the runner was told to stop. The message is one line for people.

    Attributes:
        exit_status: what ``dbank run`` exits with (1, or 128 + the signal's number).
    """

    def __init__(self, message: str, *, exit_status: int = 1) -> None:
        super().__init__(message)
        self.exit_status = exit_status
