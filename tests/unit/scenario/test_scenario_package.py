"""The package's public face, and that its formats and model stay pure (no gRPC, no
branches, no storage): only the runner and its launcher start branches."""

from __future__ import annotations

import ast
from pathlib import Path

import dbank.scenario

PACKAGE = Path(dbank.scenario.__file__).parent
RUNNING = {"_runner.py", "_trace_run.py", "__init__.py"}


def test_scenario_package_is_pure() -> None:
    forbidden = (
        "grpc",
        "google",
        "dbank._proto",
        "dbank.server",
        "dbank.store",
        "dbank.branch",
        "dbank.client",
        "dbank.replication",
        "asyncio",
        "sqlite3",
    )
    imported: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name in RUNNING:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
    assert not {module for module in imported if module.startswith(forbidden)}


def test_json_paths_quote_members_that_are_not_identifiers() -> None:
    from dbank.scenario import json_path

    assert json_path([]) == "$"
    assert json_path([3, "customer-requests", 1, "money"]) == "$[3]['customer-requests'][1].money"
    assert json_path(["it's", "a\\b"]) == "$['it\\'s']['a\\\\b']"
