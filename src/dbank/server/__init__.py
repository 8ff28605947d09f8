"""The gRPC face of a branch: servicers, conversion, error mapping, the server."""

from dbank.server._bank_servicer import BankServicer
from dbank.server._branch_server import REPLICATION_SERVICE, BranchServer, serve_until_signalled
from dbank.server._heap import collect_less_often, settle_heap

__all__ = [
    "REPLICATION_SERVICE",
    "BankServicer",
    "BranchServer",
    "collect_less_often",
    "serve_until_signalled",
    "settle_heap",
]
