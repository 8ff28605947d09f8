"""Checking a running bank from outside: Jepsen's "bank" workload on real branches.

``BankWorkload`` runs concurrent transfers at every branch of a bank while readers check
every read of all balances (their sum is the fixed total, none is negative) and a fault
schedule runs beside them; ``converged`` then checks that every replica holds the same
balances.
"""

from dbank.check._bank_workload import BankWorkload, Branches, Fault, converged

__all__ = ["BankWorkload", "Branches", "Fault", "converged"]
