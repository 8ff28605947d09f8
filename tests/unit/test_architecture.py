"""The shape of the tree: layering, generated code, public faces, error mapping."""

from __future__ import annotations

import ast
import filecmp
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

import dbank
from dbank._proto import bank_pb2, bank_pb2_grpc
from dbank.client import BankClient
from dbank.ledger.errors import ERROR_CLASSES, DbankError
from dbank.server._bank_servicer import BankServicer
from dbank.server._errors import status_code_for

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "dbank"


def _imports(package: Path) -> set[str]:
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
    return found


def test_ledger_is_pure() -> None:
    forbidden = (
        "grpc",
        "google",
        "dbank._proto",
        "dbank.store",
        "dbank.server",
        "sqlite3",
        "redis",
        "asyncio",
        "dbank.branch",
        "dbank.client",
    )
    bad = {m for m in _imports(SRC / "ledger") if m.startswith(forbidden)}
    assert not bad


def test_servers_know_no_storage_details() -> None:
    bad = {m for m in _imports(SRC / "server") if m.startswith(("sqlite3", "redis"))}
    assert not bad


def test_generated_code_is_current(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), str(tmp_path)], check=True
    )
    generated = sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".py", ".pyi"))
    committed = sorted(p.name for p in (SRC / "_proto").iterdir() if p.suffix in (".py", ".pyi"))
    assert generated == committed
    _, mismatch, errors = filecmp.cmpfiles(tmp_path, SRC / "_proto", generated, shallow=False)
    assert not mismatch, f"run `make proto`: {mismatch} differ"
    assert not errors


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def test_every_rpc_has_one_servicer_and_one_client_method() -> None:
    rpcs = [m.name for m in bank_pb2.DESCRIPTOR.services_by_name["Bank"].methods]
    for rpc in rpcs:
        assert getattr(BankServicer, rpc) is not getattr(bank_pb2_grpc.BankServicer, rpc), rpc
        assert inspect.iscoroutinefunction(getattr(BankClient, _snake(rpc))), rpc


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_every_error_has_a_status_and_never_unknown(cls: type[DbankError]) -> None:
    code = status_code_for(cls("x"))
    assert code not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.OK)
    assert cls.reason.isupper()


@pytest.mark.parametrize(
    "module",
    [
        "dbank",
        "dbank.ledger",
        "dbank.store",
        "dbank.client",
        "dbank.branch",
        "dbank.server",
        "dbank.scenario",
        "dbank.tracing",
        "dbank.replication",
    ],
)
def test_public_faces_are_sorted_and_resolve(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == sorted(mod.__all__)
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_top_level_exports_client_and_errors() -> None:
    assert dbank.BankClient is BankClient
    assert issubclass(dbank.InsufficientFunds, dbank.DbankError)
