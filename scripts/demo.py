"""`make demo`: make a throwaway PKI, start a secure durable branch (TLS, tokens) on a
temporary SQLite file, run a short session of two customers through the `dbank` command
(one of them refused on the other's account), and stop the branch; then play the classic
scenario file `examples/p1-classic/input.json` on three real secure branches with
`dbank run`."""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from dbank.hosting import LocalPki, start_branch
from dbank.security import Role

DBANK = [sys.executable, "-m", "dbank"]
SCENARIO = Path(__file__).resolve().parents[1] / "examples" / "p1-classic" / "input.json"


def dbank(address: str, tls_dir: Path, token: tuple[str, str], *args: str) -> None:
    """Run a dbank command as the caller ``token`` names (its name and the token)."""
    who, secret = token
    print(f"$ DBANK_TOKEN=<{who}> dbank {shlex.join(args)}")
    env = {**os.environ, "DBANK_BRANCH": address, "DBANK_TLS_DIR": str(tls_dir)}
    env["DBANK_TOKEN"] = secret
    done = subprocess.run([*DBANK, *args], env=env, text=True, capture_output=True)
    output = (done.stdout + done.stderr).rstrip()
    print(f"{output}\n  (exit status {done.returncode})" if done.returncode else output)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dbank-demo-") as tmp:
        data_dir = Path(tmp)
        pki = LocalPki.make(data_dir / "tls", [1])
        print(f"# the bank's CA, branch certificate and token key in {pki.tls_dir}")
        alice = ("alice, customer", pki.token("alice", Role.CUSTOMER))
        bob = ("bob, customer", pki.token("bob", Role.CUSTOMER))
        print(f"# a secure branch on the SQLite file {data_dir / 'branch-1.sqlite3'}")
        branch = start_branch(1, data_dir, tls_dir=pki.tls_dir)
        address = branch.address
        print(f"# branch 1 listening on {address} (TLS; every call needs a token)")
        try:
            run = functools.partial(dbank, address, pki.tls_dir)
            run(alice, "account", "open", "alice", "--owner", "alice")
            run(bob, "account", "open", "bob", "--owner", "bob", "--type", "savings")
            run(alice, "account", "deposit", "alice", "100.00")
            run(alice, "account", "withdraw", "alice", "30.25")
            run(alice, "account", "transfer", "alice", "bob", "19.75")
            run(alice, "account", "withdraw", "alice", "500")
            print("# bob may not touch alice's account:")
            run(bob, "account", "withdraw", "alice", "10")
            run(alice, "account", "show", "alice")
            run(bob, "account", "show", "bob", "--json")
        finally:
            code = branch.stop()
        print(f"# branch stopped (exit status {code})")
    run_scenario()


def run_scenario() -> None:
    relative = SCENARIO.relative_to(Path.cwd()) if SCENARIO.is_relative_to(Path.cwd()) else SCENARIO
    print(
        f"\n# the classic scenario file {relative}: three secure branches open with 400"
        " each (a throwaway PKI; the customers call with a token)"
    )
    print(f"$ dbank run {relative}")
    done = subprocess.run([*DBANK, "run", str(SCENARIO)], text=True, capture_output=True)
    print((done.stdout + done.stderr).rstrip())
    if done.returncode:
        raise SystemExit(f"dbank run failed (exit status {done.returncode})")


if __name__ == "__main__":
    main()
