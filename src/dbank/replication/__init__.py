"""Branch to branch over gRPC: replication streams, catch-up, escrow borrowing.

``Replicator`` implements ``dbank.branch.Network``; the serving side of the same protocol
is ``dbank.server``'s Replication servicer.
"""

from dbank.replication._inbound import InboundStreams
from dbank.replication._link import OutboundLink
from dbank.replication._peer import SERVER_OPTIONS
from dbank.replication._replicator import FULL_MESH_BRANCHES, Replicator, stream_targets

__all__ = [
    "FULL_MESH_BRANCHES",
    "SERVER_OPTIONS",
    "InboundStreams",
    "OutboundLink",
    "Replicator",
    "stream_targets",
]
