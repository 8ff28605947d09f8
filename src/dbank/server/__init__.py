"""The gRPC face of a branch: servicers, conversion, error mapping, the server."""

from dbank.server._bank_servicer import BankServicer
from dbank.server._branch_server import REPLICATION_SERVICE, BranchServer, serve_until_signalled
from dbank.server._credentials import BranchCredentials
from dbank.server._guard import MAX_STRING_CHARS, Malformed, check_request, parsing_safely
from dbank.server._heap import collect_less_often, settle_heap

__all__ = [
    "MAX_STRING_CHARS",
    "REPLICATION_SERVICE",
    "BankServicer",
    "BranchCredentials",
    "BranchServer",
    "Malformed",
    "check_request",
    "collect_less_often",
    "parsing_safely",
    "serve_until_signalled",
    "settle_heap",
]
