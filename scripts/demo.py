"""`make demo`: start a durable branch on a temporary SQLite file, run a short customer
session through the `dbank` command, and stop the branch; then play the classic scenario
file `examples/p1-classic/input.json` on three real branches with `dbank run`."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from dbank.hosting import start_branch

DBANK = [sys.executable, "-m", "dbank"]
SCENARIO = Path(__file__).resolve().parents[1] / "examples" / "p1-classic" / "input.json"


def dbank(address: str, *args: str) -> None:
    print(f"$ dbank {shlex.join(args)}")
    env = {**os.environ, "DBANK_BRANCH": address, "DBANK_INSECURE": "1"}
    done = subprocess.run([*DBANK, *args], env=env, text=True, capture_output=True)
    output = (done.stdout + done.stderr).rstrip()
    print(f"{output}\n  (exit status {done.returncode})" if done.returncode else output)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dbank-demo-") as tmp:
        data_dir = Path(tmp)
        print(f"# a branch on the SQLite file {data_dir / 'branch-1.sqlite3'}")
        branch = start_branch(1, data_dir)
        address = branch.address
        print(f"# branch 1 listening on {address}")
        try:
            dbank(address, "account", "open", "alice", "--owner", "alice")
            dbank(address, "account", "open", "bob", "--owner", "bob", "--type", "savings")
            dbank(address, "account", "deposit", "alice", "100.00")
            dbank(address, "account", "withdraw", "alice", "30.25")
            dbank(address, "account", "transfer", "alice", "bob", "19.75")
            dbank(address, "account", "withdraw", "alice", "500")
            dbank(address, "account", "show", "alice", "bob")
            dbank(address, "account", "show", "alice", "--json")
        finally:
            code = branch.stop()
        print(f"# branch stopped (exit status {code})")
    run_scenario()


def run_scenario() -> None:
    relative = SCENARIO.relative_to(Path.cwd()) if SCENARIO.is_relative_to(Path.cwd()) else SCENARIO
    print(f"\n# the classic scenario file {relative}: three branches open with 400 each")
    print(f"$ dbank run {relative}")
    done = subprocess.run([*DBANK, "run", str(SCENARIO)], text=True, capture_output=True)
    print((done.stdout + done.stderr).rstrip())
    if done.returncode:
        raise SystemExit(f"dbank run failed (exit status {done.returncode})")


if __name__ == "__main__":
    main()
