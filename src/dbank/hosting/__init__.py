"""Starting the branches of a bank on this machine, knowing when they are up, stopping them.

The one home of process hosting, for ``dbank run``, ``dbank cluster``, the tests and the
benchmarks. Every branch is a real ``BranchServer`` on its own free loopback port with its
own store; ports are chosen before anything starts, so each branch knows its peers'
addresses from the outset. Three ways to host them:

* ``ForkedBranches``: one forked OS process per branch (``dbank run``'s default);
* ``InProcessBranches``: every branch in the caller's event loop;
* ``start_branch`` / ``run_cluster``: ``dbank branch`` commands as child processes (tests
  that kill and restart branches, and ``dbank cluster``).

For fault tests and benchmarks, ``proxied_bank`` starts such processes with a ``TcpProxy``
on every link between two branches (cut, slowed down, restored at will), and
``RedisServer`` runs a real ``redis-server`` on a free port for the Redis store.

Either way "up" means every branch's health service ``dbank.v1.Replication`` is SERVING
(``wait_connected``, or ``wait_serving`` without an event loop).
"""

from dbank.hosting._claim import claim_redis_database
from dbank.hosting._cluster import ClusterLayout, StoreChoice, branch_command, run_cluster
from dbank.hosting._configs import bank_configs
from dbank.hosting._errors import RunError
from dbank.hosting._forked import ForkedBranches
from dbank.hosting._in_process import InProcessBranches
from dbank.hosting._pki import LocalPki
from dbank.hosting._ports import HOST, free_ports
from dbank.hosting._proxied_bank import ProxiedBank, proxied_bank
from dbank.hosting._proxy import TcpProxy
from dbank.hosting._readiness import START_DEADLINE, wait_connected, wait_serving
from dbank.hosting._redis_server import RedisServer, redis_server_binary
from dbank.hosting._spawned import DBANK_BRANCH, BranchProcess, start_branch

__all__ = [
    "DBANK_BRANCH",
    "HOST",
    "START_DEADLINE",
    "BranchProcess",
    "ClusterLayout",
    "ForkedBranches",
    "InProcessBranches",
    "LocalPki",
    "ProxiedBank",
    "RedisServer",
    "RunError",
    "StoreChoice",
    "TcpProxy",
    "bank_configs",
    "branch_command",
    "claim_redis_database",
    "free_ports",
    "proxied_bank",
    "redis_server_binary",
    "run_cluster",
    "start_branch",
    "wait_connected",
    "wait_serving",
]
