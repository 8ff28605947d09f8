"""A branch of the bank without its wire protocol: replica, writer, store, and the
protocol it needs from the other branches."""

from dbank.branch._branch import (
    AccountView,
    Branch,
    Reading,
    RequestContext,
    WriteResult,
)
from dbank.branch._config import (
    BranchConfig,
    ConfigError,
    check_address,
    load_bank_file,
    parse_peers,
)
from dbank.branch._network import Network, NoPeers

__all__ = [
    "AccountView",
    "Branch",
    "BranchConfig",
    "ConfigError",
    "Network",
    "NoPeers",
    "Reading",
    "RequestContext",
    "WriteResult",
    "check_address",
    "load_bank_file",
    "parse_peers",
]
