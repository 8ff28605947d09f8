"""The ``dbank`` command at the edges of its flags and files: an address, a branch
id, an amount or a request id that cannot work is one line on standard error and exit
status 2, never a traceback, a gRPC log line or a silently changed value; and a branch that
is refused its flags does not start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import unique_id
from support.secure import PKI, cli_env

from dbank.hosting import BranchProcess


def dbank(
    *args: str, branch: BranchProcess | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """``dbank ARGS`` as the test bank's admin (TLS and a token), with no branch in the
    environment unless ``branch`` is given; ``env`` is added to the environment."""
    environment = {k: v for k, v in cli_env(**env).items() if k != "DBANK_BRANCH" or k in env}
    if branch is not None:
        environment["DBANK_BRANCH"] = branch.address
    return subprocess.run(
        [sys.executable, "-m", "dbank", *args],
        env=environment,
        text=True,
        capture_output=True,
        timeout=60,
    )


def one_line_usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The one line of a usage error, checked: status 2, nothing on stdout, one line on
    stderr naming the problem and the hint to ``--help``, no traceback."""
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("error: "), line
    assert "--help" in line, line
    for needle in needles:
        assert needle in line, line
    return line


# Addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "needle"),
    [
        ("127.0.0.1:99999", "is not in 1-65535"),
        ("127.0.0.1:0", "is not in 1-65535"),
        ("127.0.0.1:65536", "is not in 1-65535"),
        ("", "expected HOST:PORT, got ''"),
        (":7001", "no host"),
        ("127.0.0.1", "expected HOST:PORT"),
        ("127.0.0.1:", "expected HOST:PORT"),
        ("127.0.0.1:-1", "expected HOST:PORT"),
        ("::1:7001", "IPv6 host in brackets"),
        ("bank test:7001", "host name or address"),
    ],
)
def test_a_bad_branch_address_is_refused_before_dialing(address: str, needle: str) -> None:
    bad = dbank("account", "show", "alice", "--branch", address)
    line = one_line_usage_error(bad, "--branch", needle)
    assert "dbank account show --help" in line
    assert "UNKNOWN" not in bad.stderr  # no gRPC log lines, no failed call


def test_a_bad_address_from_the_environment_names_the_variable() -> None:
    bad = dbank("account", "show", "alice", DBANK_BRANCH="127.0.0.1:99999")
    one_line_usage_error(bad, "$DBANK_BRANCH", "is not in 1-65535")


def test_a_missing_branch_says_so_instead_of_dialing_a_default() -> None:
    bad = dbank("account", "show", "alice")
    one_line_usage_error(bad, "--branch HOST:PORT", "DBANK_BRANCH")


def test_a_bracketed_ipv6_address_is_taken() -> None:
    # Nothing listens there: the call fails (status 1), but the address is not refused.
    down = dbank("account", "show", "alice", "--branch", "[::1]:1", "--timeout", "0.5")
    assert down.returncode == 1, down.stderr
    assert down.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("flag", "address", "needle"),
    [
        ("--listen", "127.0.0.1:99999", "is not in 0-65535"),
        ("--listen", ":7001", "no host"),
        ("--listen", "", "expected HOST:PORT"),
        ("--peer-listen", "127.0.0.1:70000", "is not in 0-65535"),
        ("--peers", "2=127.0.0.1:99999", "is not in 1-65535"),
        ("--peers", "2=127.0.0.1:0", "is not in 1-65535"),
        ("--peers", "2=:7002", "no host"),
        ("--peers", "5000000000=127.0.0.1:7002", "is not in 1-4294967295"),
    ],
)
def test_a_bad_branch_flag_does_not_start_the_branch(
    tmp_path: Path, flag: str, address: str, needle: str
) -> None:
    data = tmp_path / "data"
    secure = ("--tls-dir", str(PKI.tls_dir))
    bad = dbank("branch", "--id", "1", "--data", str(data), *secure, flag, address)
    one_line_usage_error(bad, flag, needle)
    assert not data.exists()


# Branch ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize("branch_id", ["5000000000", "4294967296", "0", "-1"])
def test_a_branch_id_beyond_uint32_does_not_start_the_branch(
    tmp_path: Path, branch_id: str
) -> None:
    data = tmp_path / "data"
    bad = dbank("branch", "--id", branch_id, "--data", str(data), "--tls-dir", str(PKI.tls_dir))
    one_line_usage_error(bad, "--id", "1<=x<=4294967295")
    assert "listening" not in bad.stdout
    assert not data.exists()


def test_a_secure_branch_without_a_certificate_does_not_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    bad = dbank("branch", "--id", str(2**31), "--data", str(data), "--tls-dir", str(PKI.tls_dir))
    assert (bad.returncode, bad.stdout) == (2, "")
    (line,) = bad.stderr.splitlines()
    assert f"make it with `dbank certs add-branch {PKI.tls_dir} {2**31}`" in line
    assert not data.exists()


def test_a_request_branch_beyond_uint32_is_refused(branch: BranchProcess) -> None:
    account = unique_id("rb")
    args = ("--request-id", "rb-1", "--request-branch", str(2**32))
    bad = dbank("account", "deposit", account, "1", *args, branch=branch)
    one_line_usage_error(bad, "--request-branch", "1<=x<=4294967295")


# The bank file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        (
            '[branches.1]\nlisten = "127.0.0.1:99999"\n',
            "branches.1.listen: the port of '127.0.0.1:99999' is not in 0-65535",
        ),
        ('[branches.1]\nlisten = ":7001"\n', "branches.1.listen: no host"),
        (
            '[branches.1]\nlisten = "127.0.0.1:0"\n[branches.2]\nlisten = "127.0.0.1:0"\n',
            "branches.2.listen: the port of '127.0.0.1:0' is not in 1-65535",
        ),
        (
            '[branches.1]\nlisten = "127.0.0.1:0"\n'
            '[branches.2]\nlisten = "127.0.0.1:7002"\npeer_listen = "127.0.0.1:99999"\n',
            "branches.2.peer_listen: the port of '127.0.0.1:99999' is not in 1-65535",
        ),
        (
            '[branches.1]\nlisten = "127.0.0.1:0"\n[branches.5000000000]\nlisten = "h:7002"\n',
            "branches.5000000000",
        ),
        ('[branches.0]\nlisten = "127.0.0.1:0"\n', "branches.0"),
    ],
)
def test_a_bad_bank_file_names_the_key_and_does_not_start(
    tmp_path: Path, toml: str, needle: str
) -> None:
    bank_file = tmp_path / "bank.toml"
    bank_file.write_text(toml)
    data = tmp_path / "data"
    args = ("--config", str(bank_file), "--data", str(data), "--tls-dir", str(PKI.tls_dir))
    bad = dbank("branch", "--id", "1", *args)
    one_line_usage_error(bad, str(bank_file), needle)
    assert not data.exists()


# Request ids and amounts --------------------------------------------------------------------


def test_an_empty_request_id_is_refused_not_replaced(branch: BranchProcess) -> None:
    account = unique_id("rid")
    opened = dbank("account", "open", account, "--owner", "o", branch=branch)
    assert opened.returncode == 0, opened.stderr
    for args in (("deposit", account, "1"), ("open", unique_id("rid"), "--owner", "o")):
        bad = dbank("account", *args, "--request-id", "", branch=branch)
        one_line_usage_error(bad, "--request-id", "empty request id")
    shown = dbank("account", "show", account, "--json", branch=branch)
    assert json.loads(shown.stdout)["balance"]["minor_units"] == 0


def test_an_amount_beyond_int64_is_one_line(branch: BranchProcess) -> None:
    account = unique_id("big")
    dbank("account", "open", account, "--owner", "o", "--currency", "JPY", branch=branch)
    bad = dbank("account", "deposit", account, "99999999999999999999999", branch=branch)
    one_line_usage_error(bad, "AMOUNT", "at most 9223372036854775807")
    shown = dbank("account", "show", account, "--json", branch=branch)
    assert json.loads(shown.stdout)["balance"]["minor_units"] == 0


@pytest.mark.parametrize("timeout", ["nan", "inf", "0"])
def test_a_timeout_that_is_no_number_of_seconds_is_refused(timeout: str) -> None:
    bad = dbank("account", "show", "a", "--branch", "127.0.0.1:1", "--timeout", timeout)
    one_line_usage_error(bad, "--timeout")


def test_usage_errors_of_click_itself_are_one_line() -> None:
    one_line_usage_error(dbank("account", "show"), "Missing argument")
    one_line_usage_error(dbank("account", "show", "a", "--no-such-flag"), "No such option")
    one_line_usage_error(dbank("account", "no-such-command"), "No such command")
    one_line_usage_error(dbank("branch", "--id", "1", "--data"), "--data")


# Scenario files -----------------------------------------------------------------------------


def _customer(*events: dict[str, object], cid: int = 1) -> dict[str, object]:
    return {"id": cid, "type": "customer", "events": list(events)}


def _branch_entry(branch_id: int = 1, balance: int = 400) -> dict[str, object]:
    return {"id": branch_id, "type": "branch", "balance": balance}


_QUERY = {"id": 1, "interface": "query"}
_BIG_DEPOSIT = {"id": 1, "interface": "deposit", "money": 99999999999999999999999}


@pytest.mark.parametrize(
    ("entries", "place", "needle"),
    [
        (
            [_customer(_BIG_DEPOSIT), _branch_entry()],
            "$[0].events[0].money",
            "at most 9223372036854775807",
        ),
        (
            [_customer(_QUERY, cid=2**40), _branch_entry(2**40)],
            "$[0].id",
            "at most 4294967295",
        ),
        (
            [_customer(_QUERY), _branch_entry(balance=10**30)],
            "$[1].balance",
            "at most 9223372036854775807",
        ),
        (
            [
                _customer(
                    {"id": 1, "interface": "deposit", "money": 2**63 - 401},
                    {"id": 2, "interface": "deposit", "money": 1},
                ),
                _branch_entry(),
            ],
            "$[0].events[1].money",
            "past the most an account holds",
        ),
    ],
)
def test_a_scenario_file_out_of_range_is_one_line_and_starts_nothing(
    tmp_path: Path, entries: list[object], place: str, needle: str
) -> None:
    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps(entries))
    data = tmp_path / "data"
    bad = dbank("run", str(input_file), "--data", str(data))
    assert bad.returncode == 2, bad
    assert bad.stdout == ""
    (line,) = bad.stderr.splitlines()
    assert line.startswith(f"{input_file}: {place}: "), line
    assert needle in line
    assert not data.exists()
