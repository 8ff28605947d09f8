"""A checker of Lamport traces in the P2 output shapes, by the conformance README's rules.

A correct trace satisfies:

1. every process's clock strictly increases along its own events (as listed for it);
2. every receive has a clock greater than its matching send;
3. the events of one request appear at every branch (for the requests that change the
   balance: a query, or a refused withdraw, stays where it was asked);

and it is well formed: the propagate interfaces are spelled ``propagate_``, and the
flat list of a Fall 2023 trace holds exactly the events of its other two parts.

Each function returns the problems it found, one line each, empty for a correct trace, so
that a failing test shows them all.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

Document = Sequence[dict[str, Any]]
_Message = tuple[str, int, int | None, int, str]
"""A message of a Fall 2023 trace: sender kind and id, receiving branch (None: not named,
for a customer's request), request, interface."""

_COMMENT = re.compile(r"event_(sent|recv) (from|to) (customer|branch) (\d+)")
_CLASSIC_NAME = re.compile(
    r"(deposit|withdraw)_(request|execute|propagate_request|propagate_execute"
    r"|propagate_response|response)"
)


def fall_2023_problems(
    customer_events: Document,
    branch_events: Document,
    all_events: Document,
    *,
    branches: Iterable[int],
    writes: Iterable[int],
) -> list[str]:
    """The problems of a Fall 2023 trace of a bank of ``branches``, in which the requests
    ``writes`` changed the balance."""
    problems: list[str] = []
    sends: dict[_Message, list[int]] = defaultdict(list)
    receives: list[tuple[_Message, int, str]] = []
    seen_at: dict[int, set[int]] = defaultdict(set)
    for kind, part in (("customer", customer_events), ("branch", branch_events)):
        for process in part:
            pid, events = process["id"], process["events"]
            if process["type"] != kind:
                problems.append(f"{kind} {pid}: listed with type {process['type']!r}")
            problems += _increasing(f"{kind} {pid}", [e["logical_clock"] for e in events])
            for event in events:
                where = f"{kind} {pid}, request {event['customer-request-id']}"
                problems += _interface(where, event["interface"])
                match = _COMMENT.fullmatch(event["comment"])
                if match is None:
                    problems.append(f"{where}: comment {event['comment']!r}")
                    continue
                direction, _, other_kind, other = match.groups()
                request, clock = event["customer-request-id"], event["logical_clock"]
                interface = event["interface"]
                if kind == "branch":
                    seen_at[request].add(pid)
                # A customer's send names itself, not its branch; a branch's, the receiver.
                if direction == "sent" and kind == "customer":
                    sends[(kind, pid, None, request, interface)].append(clock)
                elif direction == "sent":
                    sends[(kind, pid, int(other), request, interface)].append(clock)
                else:
                    to = pid if other_kind == "branch" else None
                    receives.append(
                        ((other_kind, int(other), to, request, interface), clock, where)
                    )
    problems += _matched(sends, receives)
    problems += _everywhere(seen_at, branches, writes)
    problems += _flat_list(customer_events, branch_events, all_events)
    return problems


def classic_problems(
    document: Document, *, branches: Iterable[int], writes: Iterable[int]
) -> list[str]:
    """The problems of a 2022 trace of a bank of ``branches``, in which the requests
    ``writes`` changed the balance."""
    problems: list[str] = []
    steps: dict[int, dict[int, dict[str, list[int]]]] = defaultdict(lambda: defaultdict(dict))
    by_pid: Counter[tuple[int, int, str]] = Counter()
    by_request: Counter[tuple[int, int, str]] = Counter()
    for entry in document:
        if "pid" in entry:
            pid, data = entry["pid"], entry["data"]
            problems += _increasing(f"branch {pid}", [e["clock"] for e in data])
            for event in data:
                match = _CLASSIC_NAME.fullmatch(event["name"])
                if match is None:
                    problems.append(f"branch {pid}: event name {event['name']!r}")
                    continue
                by_pid[(event["id"], event["clock"], event["name"])] += 1
                steps[event["id"]][pid].setdefault(match.group(2), []).append(event["clock"])
        else:
            for event in entry["data"]:
                by_request[(entry["eventid"], event["clock"], event["name"])] += 1
    if by_pid != by_request:
        problems.append("the per-request lists do not hold exactly the branches' events")
    branch_ids = set(branches)
    for request in writes:
        problems += _classic_request(request, steps[request], branch_ids)
    return problems


def _classic_request(
    request: int, at: dict[int, dict[str, list[int]]], branch_ids: set[int]
) -> list[str]:
    """One write's steps across the branches, in 2022 names without the interface."""
    where = f"request {request}"
    if set(at) != branch_ids:
        return [f"{where}: at branches {sorted(at)}, not at every one of {sorted(branch_ids)}"]
    origins = [pid for pid, steps in at.items() if "request" in steps]
    if len(origins) != 1:
        return [f"{where}: received from a customer at branches {origins}, not at one"]
    origin = at[origins[0]]
    problems: list[str] = []
    order = [origin.get(step, [None])[0] for step in ("request", "execute", "response")]
    if None in order or order != sorted(order) or len(set(order)) != 3:
        problems.append(f"{where}: request, execute, response at {order} at the origin")
    executed = origin.get("execute", [0])[0]
    peer_executes = []
    for pid, steps in at.items():
        if pid == origins[0]:
            continue
        received = steps.get("propagate_request", [])
        done = steps.get("propagate_execute", [])
        if len(received) != 1 or len(done) != 1 or not executed < received[0] < done[0]:
            problems.append(
                f"{where}: at branch {pid} propagate_request {received}, propagate_execute "
                f"{done}, after its execute at {executed} at the origin"
            )
        peer_executes += done
    # The origin hears each peer's ack after the peer executed: some matching of the acks
    # to the peers' executions has every ack later, which holds iff it holds in order.
    acks = sorted(origin.get("propagate_response", []))
    if len(acks) != len(peer_executes) or any(
        ack <= done for ack, done in zip(acks, sorted(peer_executes), strict=False)
    ):
        problems.append(f"{where}: acks at {acks} for executions at {sorted(peer_executes)}")
    return problems


def _increasing(where: str, clocks: Sequence[int]) -> list[str]:
    if all(a < b for a, b in itertools.pairwise(clocks)):
        return []
    return [f"{where}: clock does not strictly increase along its events: {list(clocks)}"]


def _interface(where: str, interface: str) -> list[str]:
    if interface in ("deposit", "withdraw", "query", "propagate_deposit", "propagate_withdraw"):
        return []
    return [f"{where}: interface {interface!r}"]


def _matched(
    sends: dict[_Message, list[int]], receives: list[tuple[_Message, int, str]]
) -> list[str]:
    """Every receive has its send, earlier: the customer's request, or the branch's
    propagation to the receiver."""
    problems = []
    for message, clock, where in receives:
        sent = sends.get(message, [])
        if not any(time < clock for time in sent):
            sender = f"{message[0]} {message[1]}"
            problems.append(f"{where}: received from {sender} at {clock}, sent at {sent}")
    return problems


def _everywhere(
    seen_at: dict[int, set[int]], branches: Iterable[int], writes: Iterable[int]
) -> list[str]:
    branch_ids = set(branches)
    return [
        f"request {request}: at branches {sorted(seen_at[request])}, not at {sorted(branch_ids)}"
        for request in writes
        if seen_at[request] != branch_ids
    ]


def _flat_list(customers: Document, branches: Document, flat: Document) -> list[str]:
    fields = ("customer-request-id", "logical_clock", "interface", "comment")
    parts = Counter(
        (p["id"], p["type"], *(e[f] for f in fields))
        for part in (customers, branches)
        for p in part
        for e in p["events"]
    )
    listed = Counter((e["id"], e["type"], *(e[f] for f in fields)) for e in flat)
    misspelt = sum("propogate" in e["interface"] for e in flat)
    problems = [f"all events: {misspelt} interfaces spelled 'propogate_'"] if misspelt else []
    if parts != listed:
        problems.append("the flat list does not hold exactly the events of the other parts")
    return problems
