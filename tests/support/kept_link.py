"""A bank whose link must stay up for minutes, kept beside the whole test run.

``tests/integration/test_link_keepalive.py`` shows that a link between two branches lasts
three minutes under the real keepalive settings. Waiting three minutes in the test itself
would add them to the suite; instead this plugin starts that test's two-branch bank as soon
as collection has chosen the test, and runs the test last. By then the bank has lived
through the rest of the suite (its branches are processes of their own, its proxies run in
a thread of their own), and the test waits only for whatever is left of the three minutes.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from dbank.hosting import ProxiedBank
from support.secure import proxied_bank

KEPT_LINK_TESTS = "test_link_keepalive.py"


@dataclass(frozen=True)
class KeptLink:
    bank: ProxiedBank
    started: float
    """``time.monotonic()`` when every link was up."""
    connections: dict[tuple[int, int], int]
    """Each proxy's count of the connections it accepted, then."""


_KEPT: dict[str, KeptLink] = {}
_STACK = ExitStack()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The kept-link tests run last, after everything else."""
    kept = [item for item in items if item.path.name == KEPT_LINK_TESTS]
    if kept:
        items[:] = [item for item in items if item.path.name != KEPT_LINK_TESTS] + kept


def pytest_collection_finish(session: pytest.Session) -> None:
    if not any(item.path.name == KEPT_LINK_TESTS for item in session.items):
        return
    root = Path(tempfile.mkdtemp(prefix="dbank-kept-link-"))
    _STACK.callback(shutil.rmtree, root, True)
    bank = _STACK.enter_context(proxied_bank(root / "bank", 2))
    counts = {link: proxy.connections_accepted for link, proxy in bank.proxies.items()}
    _KEPT["bank"] = KeptLink(bank, time.monotonic(), counts)


def pytest_unconfigure() -> None:
    _STACK.close()


@pytest.fixture
def kept_link() -> KeptLink:
    """The bank started when collection ended (see the module's docstring)."""
    return _KEPT["bank"]
