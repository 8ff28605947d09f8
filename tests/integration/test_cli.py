"""The `dbank` command against a real branch: readable lines, JSON, exit statuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import unique_id
from support.secure import PKI, cli_env, start_branch

from dbank import hosting
from dbank.client import BankClient
from dbank.hosting import BranchProcess


def dbank(
    *args: str, branch: BranchProcess | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``dbank ARGS`` as the test bank's admin (TLS and a token), or in ``env``."""
    env = dict(cli_env() if env is None else env)
    if branch is not None:
        env["DBANK_BRANCH"] = branch.address
    return subprocess.run(
        [sys.executable, "-m", "dbank", *args], env=env, text=True, capture_output=True, timeout=60
    )


def test_a_customer_session(branch: BranchProcess) -> None:
    alice, bob = unique_id("alice"), unique_id("bob")
    opened = dbank("account", "open", alice, "--owner", "alice", branch=branch)
    assert opened.returncode == 0, opened.stderr
    assert "balance 0.00 USD" in opened.stdout
    dbank("account", "open", bob, "--owner", "bob", "--type", "savings", branch=branch)
    deposited = dbank("account", "deposit", alice, "12.34", branch=branch)
    assert deposited.stdout.strip() == f"deposited 12.34 USD to {alice}: balance 12.34 USD"
    withdrawn = dbank("account", "withdraw", alice, "0.34", "--json", branch=branch)
    assert json.loads(withdrawn.stdout)["balance"] == {
        "amount": "12.00",
        "currency": "USD",
        "minor_units": 1200,
    }
    moved = dbank("account", "transfer", alice, bob, "2", "--branch", branch.address)
    assert moved.returncode == 0, moved.stderr
    shown = dbank("account", "show", alice, bob, "--json", branch=branch)
    balances = {
        a["account_id"]: a["balance"]["amount"] for a in json.loads(shown.stdout)["accounts"]
    }
    assert balances == {alice: "10.00", bob: "2.00"}


def test_refused_request_exits_1_with_the_reason(branch: BranchProcess) -> None:
    account = unique_id("poor")
    dbank("account", "open", account, "--owner", "p", branch=branch)
    refused = dbank("account", "withdraw", account, "1", branch=branch)
    assert refused.returncode == 1
    assert "INSUFFICIENT_FUNDS" in refused.stderr
    missing = dbank("account", "show", unique_id("nobody"), branch=branch)
    assert (missing.returncode, "ACCOUNT_NOT_FOUND" in missing.stderr) == (1, True)


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("1.234", "has 3 decimals; USD has 2"),
        ("-5", "positive decimal number"),
        ("0", "must be positive"),
        ("92233720368547758.08", "at most 9223372036854775807"),
        ("ten", "positive decimal number"),
    ],
)
def test_bad_amount_exits_2_and_changes_nothing(
    branch: BranchProcess, amount: str, message: str
) -> None:
    account = unique_id("amt")
    dbank("account", "open", account, "--owner", "o", branch=branch)
    bad = dbank("account", "deposit", account, "--", amount, branch=branch)
    assert bad.returncode == 2
    assert message in bad.stderr
    assert "Traceback" not in bad.stderr
    shown = dbank("account", "show", account, "--json", branch=branch)
    assert json.loads(shown.stdout)["balance"]["minor_units"] == 0


def test_currency_exponents(branch: BranchProcess) -> None:
    yen, dinar = unique_id("yen"), unique_id("dinar")
    dbank("account", "open", yen, "--owner", "o", "--currency", "JPY", branch=branch)
    dbank("account", "open", dinar, "--owner", "o", "--currency", "KWD", branch=branch)
    assert "balance 500 JPY" in dbank("account", "deposit", yen, "500", branch=branch).stdout
    assert dbank("account", "deposit", yen, "0.5", branch=branch).returncode == 2
    assert "balance 1.005 KWD" in dbank("account", "deposit", dinar, "1.005", branch=branch).stdout
    unknown = dbank("account", "open", unique_id("x"), "--owner", "o", "--currency", "XYZ")
    assert unknown.returncode == 2
    assert "unknown currency" in unknown.stderr


def test_unreachable_branch_is_a_clear_error() -> None:
    down = dbank("account", "show", "a", "--branch", "127.0.0.1:1", "--timeout", "0.5")
    assert down.returncode == 1
    assert down.stderr.startswith("error: ")
    assert "Traceback" not in down.stderr


def test_bad_listen_address_exits_2(tmp_path: Path) -> None:
    secure = ("--tls-dir", str(PKI.tls_dir))
    bad = dbank("branch", "--id", "1", "--listen", "nowhere", "--data", str(tmp_path), *secure)
    assert bad.returncode == 2
    assert "HOST:PORT" in bad.stderr


def test_sigterm_stops_the_branch_cleanly(tmp_path: Path) -> None:
    process = start_branch(7, tmp_path)
    assert process.stop() == 0


def test_a_data_dir_of_another_branch_is_refused(tmp_path: Path) -> None:
    start_branch(1, tmp_path).stop()
    renamed = tmp_path / "branch-2.sqlite3"
    (tmp_path / "branch-1.sqlite3").rename(renamed)
    refused = dbank("branch", "--id", "2", "--data", str(tmp_path), "--tls-dir", str(PKI.tls_dir))
    assert refused.returncode == 1
    assert "holds branch 1's data" in refused.stderr


# --insecure --------------------------------------------------------------------------------


def test_a_branch_without_tls_or_insecure_exits_2_in_one_line(tmp_path: Path) -> None:
    refused = dbank("branch", "--id", "1", "--data", str(tmp_path))
    assert refused.returncode == 2
    assert refused.stdout == ""
    (line,) = refused.stderr.strip().splitlines()
    assert "--tls-dir" in line
    assert "--insecure" in line
    assert not list(tmp_path.iterdir())


async def test_an_insecure_branch_serves_plaintext_clients(tmp_path: Path) -> None:
    process = hosting.start_branch(1, tmp_path)  # no tls_dir: --insecure
    try:
        account = unique_id("plain")
        async with BankClient(process.address) as plaintext:  # no CA, no token
            await plaintext.create_account(account_id=account, owner="anyone")
            await plaintext.deposit(account_id=account, amount=500)
        plain_env = {**os.environ, "DBANK_INSECURE": "1"}
        shown = dbank("account", "show", account, "--json", branch=process, env=plain_env)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["balance"]["minor_units"] == 500
    finally:
        assert process.stop() == 0, process.log()
    assert "runs --insecure" in process.log()
