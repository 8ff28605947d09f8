"""Lamport clocks and traces of customer requests through the real protocol (P2).

Every process keeps a ``LamportClock`` that ticks on each send and receive: a customer's
request and the branch's reply (the clock travels in gRPC metadata, ``_tags``), and the
replication batches between branches and their acknowledgements (the ``lamport`` fields of
``OpBatch`` and ``ReplicateResponse``). Each process records the steps of customer
requests (``TraceEvent``) into its file in a trace directory as they happen (``_files``);
``read_trace`` gathers a run's files. Nothing is recorded, and no clock
exists, unless a trace directory is given.

    customers = CustomerTrace(trace_dir)        # the runner's side, one clock per customer
    client = BankClient(address, interceptors=[LamportInterceptor(customers)])
    with customers.request(customer=1, request=7, interface="deposit", branch=2) as rid:
        await client.deposit(account_id=..., amount=10, request_id=rid)
    customers.close()
    events = read_trace(trace_dir, branch_ids)  # once the branches have stopped
"""

from dbank.tracing._branch import BranchTrace, Traced, open_branch_trace
from dbank.tracing._clock import LamportClock
from dbank.tracing._customer import CustomerTrace, LamportInterceptor
from dbank.tracing._events import Role, Step, TraceEvent
from dbank.tracing._files import TraceMissing, read_trace
from dbank.tracing._tags import (
    CustomerRequest,
    customer_request_of,
    lamport_metadata,
    lamport_of,
    request_of,
    tagged_request_id,
)

__all__ = [
    "BranchTrace",
    "CustomerRequest",
    "CustomerTrace",
    "LamportClock",
    "LamportInterceptor",
    "Role",
    "Step",
    "TraceEvent",
    "TraceMissing",
    "Traced",
    "customer_request_of",
    "lamport_metadata",
    "lamport_of",
    "open_branch_trace",
    "read_trace",
    "request_of",
    "tagged_request_id",
]
