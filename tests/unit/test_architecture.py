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
from dbank._status import status_code_for
from dbank.client import BankClient
from dbank.errors import ERROR_CLASSES, DbankError
from dbank.server import BankServicer

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "dbank"
EVERY_PYTHON_FILE = sorted(
    path
    for folder in ("src", "tests", "benchmarks", "scripts")
    for path in (ROOT / folder).rglob("*.py")
    if "_proto" not in path.parts
)


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


def _isort_key(name: str) -> tuple[int, str]:
    """The order of ruff's RUF022: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return 0, name
    return (1 if name[0].isupper() else 2), name


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
        "dbank.hosting",
        "dbank.store.redis",
    ],
)
def test_public_faces_are_sorted_and_resolve(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == sorted(mod.__all__, key=_isort_key)
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_top_level_exports_client_and_errors() -> None:
    assert dbank.BankClient is BankClient
    assert issubclass(dbank.InsufficientFunds, dbank.DbankError)


# Homes: each concern in one package, reached only through that package's face ---------


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT / "src").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path) -> list[str]:
    """The modules ``path`` imports by name (``from a.b import c`` counts as ``a.b``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def _package_of_private(module: str) -> str | None:
    """For ``dbank.x.y._z`` (a private module of a package), ``dbank.x.y``; else None.
    Top-level private modules (``dbank._status``, ``dbank._proto``) are shared by design."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if i >= 2 and part.startswith("_"):
            return ".".join(parts[:i])
    return None


def test_no_private_module_is_imported_from_outside_its_package() -> None:
    leaks = []
    for path in EVERY_PYTHON_FILE:
        inside = _module_name(path) if path.is_relative_to(ROOT / "src") else ""
        for module in _imported_modules(path):
            if not module.startswith("dbank."):
                continue
            package = _package_of_private(module)
            if package is not None and not (inside + ".").startswith(package + "."):
                leaks.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not leaks


def _src_files_outside(*homes: str) -> list[Path]:
    return [
        path
        for path in SRC.rglob("*.py")
        if "_proto" not in path.parts and not any(path.is_relative_to(SRC / home) for home in homes)
    ]


def test_only_the_store_opens_a_database() -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in _src_files_outside("store")
        for module in _imported_modules(path)
        if module.split(".")[0] in ("redis", "sqlite3")
    ]
    assert not bad


def test_no_module_outside_the_store_names_a_backend() -> None:
    backends = ("SqliteStore", "RedisStore", "MemoryStore", "RedisLease")
    bad = []
    for path in _src_files_outside("store"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Name | ast.alias | ast.Attribute):
                name = (
                    node.id
                    if isinstance(node, ast.Name)
                    else node.name
                    if isinstance(node, ast.alias)
                    else node.attr
                )
                if name in backends:
                    bad.append(f"{path.relative_to(ROOT)}: {name}")
    assert not bad


def test_replication_does_not_depend_on_the_customer_client() -> None:
    bad = {m for m in _imports(SRC / "replication") if m.startswith("dbank.client")}
    assert not bad


def _dependencies(path: Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that ``path`` imports: ``from a import b`` is module
    ``a.b`` when that is a module, else ``a``; an unknown ``a.b.c`` counts as ``a.b``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [n if n in modules else node.module for n in names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def test_no_import_cycle_between_modules() -> None:
    """Between the modules of ``src/dbank`` (generated code aside), where a package
    counts as its ``__init__``. The top-level ``dbank`` face re-exports from every layer
    and no layer imports it, so it cannot take part in a cycle."""
    every = {_module_name(p): p for p in SRC.rglob("*.py")}
    paths = {name: path for name, path in every.items() if "_proto" not in path.parts}
    graph = {name: _dependencies(path, set(every)) - {name} for name, path in paths.items()}
    graph.update({name: set() for name in every.keys() - paths.keys()})
    cycles = []
    finished: set[str] = set()
    for start in sorted(graph):
        if start in finished:
            continue
        path = [start]
        pending = [iter(sorted(graph[start]))]
        while pending:
            child = next(pending[-1], None)
            if child is None:
                finished.add(path.pop())
                pending.pop()
            elif child in path:
                cycles.append(" -> ".join([*path[path.index(child) :], child]))
            elif child not in finished:
                path.append(child)
                pending.append(iter(sorted(graph[child])))
    assert not cycles


_MAY_START_PROCESSES = {
    "tests/integration/test_run.py": "runs the user's `dbank run` command itself",
    "benchmarks/scenario_floor.py": "forks bare gRPC processes, the floor, not branches",
    "benchmarks/deposits.py": "starts its baseline servers (bare, floor) beside a branch",
}


def test_only_hosting_starts_processes() -> None:
    """Branch processes are forked or spawned in ``dbank.hosting`` only; elsewhere a
    process is started only by the few files above, for the reason given."""
    bad = []
    for path in EVERY_PYTHON_FILE:
        relative = path.relative_to(ROOT).as_posix()
        if path.is_relative_to(SRC / "hosting") or relative in _MAY_START_PROCESSES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and (
                (node.attr == "fork" and isinstance(node.value, ast.Name) and node.value.id == "os")
                or node.attr == "Popen"
            ):
                bad.append(f"{relative}:{node.lineno}")
        if path.is_relative_to(SRC):
            bad.extend(
                f"{relative} imports {module}"
                for module in _imported_modules(path)
                if module in ("subprocess", "multiprocessing")
            )
    assert not bad
