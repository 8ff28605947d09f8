"""Every bad file gives one ``ScenarioError``: one line naming the file, the exact place
(a JSON path, or a line and column for text that is not JSON) and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbank.scenario import ScenarioError, load_scenario

BRANCH_1 = {"id": 1, "type": "branch", "balance": 400}
BRANCH_2 = {"id": 2, "type": "branch", "balance": 400}


def customer(*events: object, cid: int = 1) -> dict[str, object]:
    return {"id": cid, "type": "customer", "events": list(events)}


def requests(*events: object, cid: int = 1) -> dict[str, object]:
    return {"id": cid, "type": "customer", "customer-requests": list(events)}


def doc(*entries: object) -> str:
    return json.dumps(list(entries), indent=2)


DEPOSIT = {"id": 1, "interface": "deposit", "money": 10}
QUERY = {"id": 2, "interface": "query"}

# (case id, file text, JSON path or line/column, a fragment of the problem)
CASES = [
    ("empty file", "", "$", "the file is empty"),
    ("blank file", " \n\t\n", "$", "the file is empty"),
    (
        "malformed JSON",
        '[\n  {"id": 1,\n   "type": "branch" "balance": 400}\n]',
        "line 3, column 21",
        "malformed JSON: Expecting ',' delimiter",
    ),
    (
        "trailing comma",
        '[{"id": 1, "type": "branch", "balance": 400},]',
        "line 1, column 46",
        "malformed JSON",
    ),
    ("not a list", '{"branches": []}', "$", "expected a list of customer and branch entries"),
    ("no entries", "[]", "$", "the file lists no branches"),
    ("no branches", doc(customer(DEPOSIT)), "$", "the file lists no branches"),
    ("entry not an object", doc(BRANCH_1, 7), "$[1]", 'expected an entry with "type"'),
    ("entry without type", doc(BRANCH_1, {"id": 2}), "$[1].type", "required member is missing"),
    (
        "unknown entry type",
        doc(BRANCH_1, {"id": 2, "type": "bank"}),
        "$[1].type",
        'unknown entry type "bank"',
    ),
    (
        "unknown interface",
        doc(customer(DEPOSIT, {"id": 2, "interface": "transfer", "money": 5}), BRANCH_1),
        "$[0].events[1].interface",
        'unknown interface "transfer"',
    ),
    (
        "interface in capitals",
        doc(BRANCH_1, customer({"id": 2, "interface": "Query"})),
        "$[1].events[0].interface",
        'unknown interface "Query"',
    ),
    (
        "deposit without money",
        doc(BRANCH_1, customer(QUERY, {"id": 3, "interface": "deposit"})),
        "$[1].events[1].money",
        "deposit needs a positive whole amount of money",
    ),
    (
        "withdraw without money, P1 classic",
        doc(
            BRANCH_1,
            customer(
                {"id": 1, "interface": "query", "money": 400}, {"id": 2, "interface": "withdraw"}
            ),
        ),
        "$[1].events[1].money",
        "withdraw needs a positive whole amount of money",
    ),
    (
        "negative money, P2 Fall 2023",
        doc(
            BRANCH_1,
            BRANCH_2,
            {"id": 3, "type": "branch", "balance": 400},
            requests({"customer-request-id": 1, "interface": "deposit", "money": 10}),
            requests({"customer-request-id": 2, "interface": "deposit", "money": -5}, cid=2),
        ),
        "$[4]['customer-requests'][0].money",
        "deposit needs a positive whole amount of money, not -5",
    ),
    (
        "zero money",
        doc(BRANCH_1, customer({"id": 1, "interface": "withdraw", "money": 0})),
        "$[1].events[0].money",
        "withdraw needs a positive whole amount of money, not 0",
    ),
    (
        "fractional money",
        doc(BRANCH_1, customer({"id": 1, "interface": "deposit", "money": 10.5})),
        "$[1].events[0].money",
        "money must be a whole number of currency units, not 10.5",
    ),
    (
        "money 10.0 is a float, refused",
        doc(BRANCH_1, customer({"id": 1, "interface": "deposit", "money": 10.0})),
        "$[1].events[0].money",
        "money must be a whole number of currency units, not 10.0",
    ),
    (
        "money as a string",
        doc(BRANCH_1, customer({"id": 1, "interface": "deposit", "money": "10"})),
        "$[1].events[0].money",
        'not "10"',
    ),
    (
        "money as a boolean",
        doc(BRANCH_1, customer({"id": 1, "interface": "deposit", "money": True})),
        "$[1].events[0].money",
        "not true",
    ),
    (
        "fractional placeholder on a query",
        doc(BRANCH_1, customer({"id": 1, "interface": "query", "money": 400.5})),
        "$[1].events[0].money",
        "money must be a whole number",
    ),
    (
        "customer at a branch that does not exist",
        doc(customer(DEPOSIT, cid=1), customer(DEPOSIT, cid=4), BRANCH_1, BRANCH_2),
        "$[1].id",
        "customer 4 talks to branch 4, which the file does not list",
    ),
    (
        "customer without events at a branch that does not exist",
        doc(BRANCH_1, customer(cid=9)),
        "$[1].id",
        "customer 9 talks to branch 9",
    ),
    (
        "P3 classic event at a branch that does not exist",
        doc(
            BRANCH_1,
            customer(
                {"id": 1, "interface": "query", "dest": 1},
                {"id": 2, "interface": "query", "dest": 3},
            ),
        ),
        "$[1].events[1].dest",
        "branch 3 is not one of the file's branches",
    ),
    (
        "P3 Fall 2023 event at a branch that does not exist",
        doc(BRANCH_1, customer({"id": 1, "interface": "deposit", "money": 5, "branch": 2}, cid=7)),
        "$[1].events[0].branch",
        "branch 2 is not one of the file's branches",
    ),
    (
        "branches disagree on the opening balance",
        doc(BRANCH_1, BRANCH_2, {"id": 3, "type": "branch", "balance": 500}),
        "$[2].balance",
        "branch 3 opens with 500 but branch 1 (at $[0]) with 400",
    ),
    (
        "duplicate branch id",
        doc(BRANCH_1, BRANCH_2, {"id": 2, "type": "branch", "balance": 400}),
        "$[2].id",
        "branch 2 is listed twice (first at $[1])",
    ),
    (
        "negative opening balance",
        doc({"id": 1, "type": "branch", "balance": -1}),
        "$[0].balance",
        "the opening balance must not be negative, not -1",
    ),
    (
        "fractional opening balance",
        doc({"id": 1, "type": "branch", "balance": 0.5}),
        "$[0].balance",
        "the opening balance must be a whole number of currency units, not 0.5",
    ),
    (
        "branch id zero",
        doc({"id": 0, "type": "branch", "balance": 1}),
        "$[0].id",
        "an id must be a positive whole number, not 0",
    ),
    (
        "misspelt member",
        doc(BRANCH_1, customer({"id": 1, "interface": "deposit", "mony": 5})),
        "$[1].events[0].mony",
        "unexpected member (the file reads as P1 Fall 2023",
    ),
    (
        "events not a list",
        doc(BRANCH_1, {"id": 1, "type": "customer", "events": {"id": 1}}),
        "$[1].events",
        "'events' must be a list",
    ),
    (
        "event not an object",
        doc(BRANCH_1, customer("deposit")),
        "$[1].events[0]",
        'expected an object, not "deposit"',
    ),
    (
        "P3 event without its branch",
        doc(
            BRANCH_1,
            customer({"id": 1, "interface": "query", "dest": 1}, {"id": 2, "interface": "query"}),
        ),
        "$[1].events[1].dest",
        "required member is missing (the file reads as P3 classic: an event has 'dest')",
    ),
    (
        "P3 file mixing dest and branch",
        doc(
            BRANCH_1,
            customer({"id": 1, "interface": "query", "dest": 1}),
            customer({"id": 2, "interface": "query", "branch": 1}),
        ),
        "$[2].events[0].dest",
        "the file reads as P3 classic",
    ),
    (
        "P1 classic query without its placeholder",
        doc(BRANCH_1, customer({"id": 1, "interface": "query", "money": 400}, QUERY)),
        "$[1].events[1].money",
        "required member is missing (the file reads as P1 classic",
    ),
    (
        "P2 Fall 2023 request without its id",
        doc(BRANCH_1, requests({"interface": "deposit", "money": 5})),
        "$[1]['customer-requests'][0]['customer-request-id']",
        "required member is missing (the file reads as P2 Fall 2023",
    ),
    (
        "P2 Fall 2023 file with an events customer",
        doc(
            BRANCH_1, requests({"customer-request-id": 1, "interface": "query"}), customer(DEPOSIT)
        ),
        "$[2]['customer-requests']",
        "required member is missing",
    ),
]


@pytest.mark.parametrize(
    ("text", "where", "problem"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_bad_file_names_itself_the_place_and_the_problem(
    tmp_path: Path, text: str, where: str, problem: str
) -> None:
    path = tmp_path / "input.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    error = caught.value
    assert (error.file, error.where) == (str(path), where)
    assert problem in error.problem
    assert str(error) == f"{path}: {where}: {error.problem}"
    assert "\n" not in str(error)
    assert "pydantic" not in str(error).lower()


def test_a_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.json"
    with pytest.raises(ScenarioError, match="cannot read the file"):
        load_scenario(path)


def test_a_file_that_is_not_utf8_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_bytes(b'[{"id": 1, "type": "branch", "balance": 4\xff}]')
    with pytest.raises(ScenarioError, match=r"\$: not UTF-8 text"):
        load_scenario(path)


def test_the_message_names_the_file_as_the_caller_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "input.json").write_text("[]")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(Path("input.json"))
    assert (
        str(caught.value)
        == 'input.json: $: the file lists no branches (entries of "type" "branch")'
    )


def test_json_nested_too_deeply_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ScenarioError, match=r"\$: malformed JSON: nested too deeply"):
        load_scenario(path)
