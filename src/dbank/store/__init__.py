"""Durable storage of a branch: one ``Store`` protocol, a backend per module."""

from dbank.store._base import Commit, Snapshot, Store
from dbank.store._memory import MemoryStore
from dbank.store._sqlite import SqliteStore

__all__ = ["Commit", "MemoryStore", "Snapshot", "SqliteStore", "Store"]
