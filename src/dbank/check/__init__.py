"""Checking a bank from outside: Jepsen's "bank" workload on real branches under faults,
a history of everything the customers saw, and checkers that read it.

``run_processes`` starts a bank of real branch processes behind TCP proxies, runs the
``Workload`` and a fault schedule drawn from a seed, heals, settles every unanswered
request and runs every checker (``check``) over the ``History`` and the replicas' final
state; ``write_report`` writes what it found.
"""

from dbank.check._checkers import Anomaly, Replica, Verdict, check
from dbank.check._history import Fault, History, Kind, Operation, Outcome
from dbank.check._processes import CheckRun, check_bank, run_processes
from dbank.check._report import summary, write_report
from dbank.check._workload import Branches, Workload, converged

__all__ = [
    "Anomaly",
    "Branches",
    "CheckRun",
    "Fault",
    "History",
    "Kind",
    "Operation",
    "Outcome",
    "Replica",
    "Verdict",
    "Workload",
    "check",
    "check_bank",
    "converged",
    "run_processes",
    "summary",
    "write_report",
]
