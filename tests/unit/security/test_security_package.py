"""dbank.security's shape: a sorted public face, and a pure layer (no gRPC, no asyncio, no
storage), so that every server and client applies the same rules."""

from __future__ import annotations

import ast
from pathlib import Path

import dbank.security

PACKAGE = Path(dbank.security.__file__).parent


def _imports() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
    return found


def _isort_order(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


def test_public_face_is_sorted_and_resolves() -> None:
    assert dbank.security.__all__ == sorted(dbank.security.__all__, key=_isort_order)
    for name in dbank.security.__all__:
        assert hasattr(dbank.security, name), name


def test_the_init_only_re_exports() -> None:
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    kinds = {type(node) for node in tree.body}
    assert kinds <= {ast.Expr, ast.ImportFrom, ast.Assign}


def test_security_is_pure() -> None:
    ours = {m for m in _imports() if m.startswith("dbank")}
    assert {m for m in ours if not m.startswith("dbank.security.")} <= {"dbank.errors"}
    forbidden = ("grpc", "google", "asyncio", "sqlite3", "redis")
    assert not {m for m in _imports() if m.startswith(forbidden)}
