"""A branch of the bank without its wire protocol: replica, writer, store, and the
protocol it needs from the other branches."""

from dbank.branch._branch import (
    MAX_BATCH_ENTRIES,
    AccountView,
    BatchCommand,
    BatchResult,
    Branch,
    Reading,
)
from dbank.branch._config import (
    BranchConfig,
    ConfigError,
    Streams,
    check_address,
    load_bank_file,
    parse_peers,
)
from dbank.branch._history import HistoryPage, InterestResult, StatementResult
from dbank.branch._network import Network, NoPeers
from dbank.branch._request import MAX_WAIT, RequestContext, WriteResult
from dbank.branch._watch import VectorWatch
from dbank.branch._writer import Writer, batch_aborted

__all__ = [
    "MAX_BATCH_ENTRIES",
    "MAX_WAIT",
    "AccountView",
    "BatchCommand",
    "BatchResult",
    "Branch",
    "BranchConfig",
    "ConfigError",
    "HistoryPage",
    "InterestResult",
    "Network",
    "NoPeers",
    "Reading",
    "RequestContext",
    "StatementResult",
    "Streams",
    "VectorWatch",
    "WriteResult",
    "Writer",
    "batch_aborted",
    "check_address",
    "load_bank_file",
    "parse_peers",
]
