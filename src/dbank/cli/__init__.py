"""The ``dbank`` command: run a branch, and a customer's commands against one.

Exit status: 0 on success, 1 when the bank refuses or fails a request (the reason is
printed), 2 for a mistake in the command line itself.
"""

from __future__ import annotations

import click

from dbank.cli._account import account
from dbank.cli._branch import branch, cluster
from dbank.cli._certs import certs, token
from dbank.cli._check import check
from dbank.cli._common import OneLineGroup
from dbank.cli._run import run
from dbank.cli._verify import verify

__all__ = ["main"]


@click.group(cls=OneLineGroup)
@click.version_option(package_name="dbank")
def main() -> None:
    """dbank: a distributed bank over gRPC."""


for command in (branch, cluster, run, account, certs, token, verify, check):
    main.add_command(command)
