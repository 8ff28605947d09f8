"""A branch of the bank without its wire protocol: replica, writer, store."""

from dbank.branch._branch import AccountView, Branch, WriteResult
from dbank.branch._config import BranchConfig

__all__ = ["AccountView", "Branch", "BranchConfig", "WriteResult"]
