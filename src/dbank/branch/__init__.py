"""A branch of the bank without its wire protocol: replica, writer, store, and the
protocol it needs from the other branches."""

from dbank.branch._branch import (
    MAX_WAIT,
    AccountView,
    Branch,
    Reading,
    RequestContext,
    WriteResult,
)
from dbank.branch._config import BranchConfig
from dbank.branch._network import Network, NoPeers

__all__ = [
    "MAX_WAIT",
    "AccountView",
    "Branch",
    "BranchConfig",
    "Network",
    "NoPeers",
    "Reading",
    "RequestContext",
    "WriteResult",
]
