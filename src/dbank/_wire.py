"""Wire forms shared by the servers, the replication client and the customer client."""

from __future__ import annotations

from dbank._proto import bank_pb2 as pb
from dbank.ledger import AccountType, OpId, VersionVector

ACCOUNT_TYPE_TO_WIRE = {
    AccountType.CHECKING: pb.ACCOUNT_TYPE_CHECKING,
    AccountType.SAVINGS: pb.ACCOUNT_TYPE_SAVINGS,
}
ACCOUNT_TYPE_FROM_WIRE = {wire: domain for domain, wire in ACCOUNT_TYPE_TO_WIRE.items()}


def vector_to_wire(vector: VersionVector) -> pb.VersionVector:
    return pb.VersionVector(applied=dict(vector.items()))


def vector_from_wire(message: pb.VersionVector) -> VersionVector:
    return VersionVector(dict(message.applied))


def op_id_to_wire(value: OpId) -> pb.OpId:
    return pb.OpId(origin=value.origin, seq=value.seq)


def op_id_from_wire(message: pb.OpId) -> OpId:
    return OpId(message.origin, message.seq)
