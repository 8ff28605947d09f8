"""`dbank account import FILE.csv` against a real branch: batches, a summary, refused lines
by number, bad files refused before anything is sent, and no line applied twice."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import unique_id
from test_cli import dbank

from dbank.hosting import BranchProcess


def _opened(branch: BranchProcess, *accounts: str, currency: str = "USD") -> None:
    for account in accounts:
        opened = dbank(
            "account", "open", account, "--owner", "o", "--currency", currency, branch=branch
        )
        assert opened.returncode == 0, opened.stderr


def _balances(branch: BranchProcess, *accounts: str) -> dict[str, str]:
    shown = dbank("account", "show", *accounts, "--json", branch=branch)
    assert shown.returncode == 0, shown.stderr
    found = json.loads(shown.stdout)
    listed = found.get("accounts", [found])  # one account: itself
    return {a["account_id"]: a["balance"]["amount"] for a in listed}


def test_an_import_applies_every_line_once_and_names_the_refused_ones(
    branch: BranchProcess, tmp_path: Path
) -> None:
    a, b, yen = unique_id("pay"), unique_id("staff"), unique_id("yen")
    _opened(branch, a, b)
    _opened(branch, yen, currency="JPY")
    file = tmp_path / "payroll.csv"
    rows = [
        "operation,account_id,amount,to_account_id",
        f"deposit,{a},100.00,",
        *[f"transfer,{a},10.50,{b}" for _ in range(5)],
        f"withdraw,{b},1000,",  # more than b holds: line 8
        f"deposit,{yen},500,",
        f"deposit,{unique_id('nowhere')},1,",  # line 10
        f"withdraw,{b},2.50,",
    ]
    file.write_text("\n".join(rows) + "\n")
    done = dbank("account", "import", str(file), "--batch-size", "3", branch=branch)
    assert done.returncode == 1, done.stderr
    assert "line 8: INSUFFICIENT_FUNDS" in done.stdout
    assert "line 10: ACCOUNT_NOT_FOUND" in done.stdout
    assert "52.50 USD" in done.stdout  # the transfers, summed
    assert _balances(branch, a, b, yen) == {a: "47.50", b: "50.00", yen: "500"}
    # The same file again: every line is a request it has seen; nothing moves.
    again = dbank("account", "import", str(file), "--json", branch=branch)
    assert again.returncode == 1
    report = json.loads(again.stdout)
    assert report["applied"] == {"deposit": 2, "transfer": 5, "withdraw": 1}
    assert [r["line"] for r in report["refused"]] == [8, 10]
    assert _balances(branch, a, b, yen) == {a: "47.50", b: "50.00", yen: "500"}


def test_a_bad_file_is_refused_whole_with_its_line_numbers(
    branch: BranchProcess, tmp_path: Path
) -> None:
    a = unique_id("keep")
    _opened(branch, a)
    file = tmp_path / "bad.csv"
    file.write_text(
        "operation,account_id,amount\n"
        f"deposit,{a},5\n"
        f"refund,{a},5\n"
        "deposit,not an id!,5\n"
        f"deposit,{a},\n"
    )
    refused = dbank("account", "import", str(file), branch=branch)
    assert refused.returncode == 2
    problems = refused.stderr.strip().splitlines()
    assert [p.split(": ", 2)[1].rsplit(":", 1)[-1] for p in problems] == ["3", "4", "5"]
    assert "refund" in problems[0]
    assert _balances(branch, a) == {a: "0.00"}


def test_a_file_without_the_columns_is_refused(branch: BranchProcess, tmp_path: Path) -> None:
    file = tmp_path / "columns.csv"
    file.write_text("op,acct,amount\ndeposit,x,1\n")
    refused = dbank("account", "import", str(file), branch=branch)
    assert refused.returncode == 2
    assert "no column 'operation'" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    missing = dbank("account", "import", str(tmp_path / "none.csv"), branch=branch)
    assert missing.returncode == 2
    assert "No such file" in missing.stderr
