"""The floor under ``dbank run``: a scenario's messages on bare gRPC processes doing no work.

``python benchmarks/scenario_floor.py PLAN.json`` does what ``dbank run`` does on the wire
for a scenario file, and nothing else. ``PLAN.json`` is the file as dbank reads it, any
variant: ``{"branches": [ids], "events": [[branch, interface], ...]}``, in input order
(``scenario_run.py`` writes it with ``dbank.scenario.load_scenario``, so that this script
imports no dbank code and pays only for gRPC):

1. one process per branch, forked from this one after it has imported grpc (as ``dbank
   run`` forks its branches), each a ``grpc.aio`` server on a free loopback port on the
   same event loop as a branch;
2. each dials every other and opens one bidirectional stream to it, answered once (a
   branch's replication link and its hello): the full mesh, N * (N - 1) streams;
3. once every stream is up, the customers' events in input order from this process: a
   query is one unary call to its branch; a deposit or withdrawal is one unary call after
   which the branch sends one message of an op's size down each of its streams and waits
   for every answer (a write acknowledged by every branch, ``WriteConcern.ALL``);
4. SIGKILL to every branch process.

No store, no ledger, no Python of dbank's: the time this takes is what gRPC, the event
loop and the kernel cost for the scenario's connections and messages on this machine. It
prints one line: the seconds to the full mesh and to the last event.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import grpc
import uvloop  # the loop a branch runs on (dbank._event_loop); dbank itself is not imported

SERVICE = "floor.Floor"
OP_BYTES = 300
"""About the size of one encoded deposit op in its batch."""


def _same(message: bytes) -> bytes:
    return message


async def _branch(me: int, ports: list[int], ready_fd: int) -> None:
    streams: list[grpc.aio.StreamStreamCall[bytes, bytes]] = []

    async def link(requests: object, context: grpc.aio.ServicerContext) -> object:
        while (await context.read()) is not grpc.aio.EOF:
            await context.write(b"ack")

    async def write(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await asyncio.gather(*(_send(stream) for stream in streams))
        return b"done"

    async def query(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b"done"

    handlers = {
        "Link": grpc.stream_stream_rpc_method_handler(link, _same, _same),
        "Write": grpc.unary_unary_rpc_method_handler(write, _same, _same),
        "Query": grpc.unary_unary_rpc_method_handler(query, _same, _same),
    }
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"127.0.0.1:{ports[me]}")
    await server.start()

    async def dial(port: int) -> None:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stream = channel.stream_stream(f"/{SERVICE}/Link", _same, _same)(wait_for_ready=True)
        await stream.write(b"hello")
        await stream.read()
        streams.append(stream)

    await asyncio.gather(*(dial(port) for i, port in enumerate(ports) if i != me))
    os.write(ready_fd, b"r")
    await asyncio.Event().wait()


async def _send(stream: grpc.aio.StreamStreamCall[bytes, bytes]) -> None:
    await stream.write(b"o" * OP_BYTES)
    await stream.read()


async def _play(ports: dict[int, int], events: list[tuple[int, str]]) -> None:
    channels = {branch: grpc.aio.insecure_channel(f"127.0.0.1:{p}") for branch, p in ports.items()}
    try:
        for branch, interface in events:
            name = "Query" if interface == "query" else "Write"
            await channels[branch].unary_unary(f"/{SERVICE}/{name}", _same, _same)(b"event")
    finally:
        await asyncio.gather(*(channel.close() for channel in channels.values()))


def _plan(path: Path) -> tuple[list[int], list[tuple[int, str]]]:
    plan = json.loads(path.read_text())
    return plan["branches"], [(branch, interface) for branch, interface in plan["events"]]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def main() -> None:
    began = time.perf_counter()
    branches, events = _plan(Path(sys.argv[1]))
    ports = _free_ports(len(branches))
    ready_read, ready_write = os.pipe()
    pids = []
    try:
        for me in range(len(branches)):
            pid = os.fork()
            if pid == 0:
                os.close(ready_read)
                try:
                    uvloop.run(_branch(me, ports, ready_write))
                finally:
                    os._exit(1)
            pids.append(pid)
        os.close(ready_write)
        ready = 0
        while ready < len(branches):
            got = os.read(ready_read, len(branches))
            if not got:
                raise SystemExit("a branch process ended before its streams were up")
            ready += len(got)
        meshed = time.perf_counter()
        uvloop.run(_play(dict(zip(branches, ports, strict=True)), events))
        done = time.perf_counter()
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        for pid in pids:
            os.waitpid(pid, 0)
    print(f"mesh {meshed - began:.2f} s, events {done - meshed:.2f} s", flush=True)


if __name__ == "__main__":
    main()
