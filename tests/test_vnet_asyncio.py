"""asyncio programs on virtual hosts (`vnet.aio`): streams, servers and datagrams in virtual time.

The echo server is `asyncio.start_server` on one host (its loop in a
scheduler task), the client `asyncio.open_connection` on another (its loop
on the test's thread); every time the programs see is the network's
virtual clock, so the answers are exact and the same on every run.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import vnet.aio
from vnet.network import Network

LATENCY_NS = 1_000_000  # one way across the segment


@pytest.fixture
def net() -> Iterator[Network]:
    network = Network(virtual_time=True, seed=3)
    lan = network.segment("lan", latency_ns=LATENCY_NS)
    network.host("alpha").connect(lan, "10.0.0.1/24", "fd00::1/64")
    network.host("bravo").connect(lan, "10.0.0.2/24", "fd00::2/64")
    yield network
    network.close()


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def echo_session(net: Network) -> tuple[list[tuple[bytes, float]], Any, float]:
    alpha, bravo = net.hosts["alpha"], net.hosts["bravo"]
    served: list[Any] = []

    async def serve() -> None:
        server = await asyncio.start_server(echo, "bravo", 7)
        served.extend(sorted(sock.getsockname()[:2] for sock in server.sockets))
        async with server:
            await asyncio.sleep(5)

    async def client() -> tuple[list[tuple[bytes, float]], Any, float]:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("bravo", 7)
        peer = writer.get_extra_info("peername")
        got = []
        for text in (b"hello\n", b"virtual world\n"):
            writer.write(text)
            await writer.drain()
            got.append((await reader.readline(), loop.time()))
        writer.close()
        await writer.wait_closed()
        before = loop.time()
        await asyncio.sleep(2.5)
        return got, peer, loop.time() - before

    task = bravo.spawn("echo-server", lambda: vnet.aio.run(serve(), bravo))
    net.run_for(0.001)  # the server reaches listen()
    replies, peer, slept = vnet.aio.run(client(), alpha)
    net.run_for(10)
    assert task.done and task.error is None
    assert served == [("10.0.0.2", 7), ("fd00::2", 7)]  # one listener per address of "bravo"
    return replies, peer, slept


def test_asyncio_echo_client_and_server_on_two_hosts_in_virtual_time(net: Network) -> None:
    replies, peer, slept = echo_session(net)
    assert [data for data, _ in replies] == [b"HELLO\n", b"VIRTUAL WORLD\n"]
    # each request/reply is one round trip (2 ms) on the virtual clock
    assert round(replies[1][1] - replies[0][1], 9) == 2 * LATENCY_NS / 1e9
    assert peer[:2] == ("fd00::2", 7)  # "bravo" resolved through the network, IPv6 first
    assert slept == 2.5  # asyncio.sleep ran on the scheduler's clock, exactly


def test_the_same_seed_gives_the_same_asyncio_run() -> None:
    runs = []
    for _ in range(2):
        network = Network(virtual_time=True, seed=3)
        lan = network.segment("lan", latency_ns=LATENCY_NS)
        network.host("alpha").connect(lan, "10.0.0.1/24", "fd00::1/64")
        network.host("bravo").connect(lan, "10.0.0.2/24", "fd00::2/64")
        try:
            runs.append(echo_session(network))
        finally:
            network.close()
    assert runs[0] == runs[1]


def test_asyncio_datagram_endpoints(net: Network) -> None:
    alpha, bravo = net.hosts["alpha"], net.hosts["bravo"]

    class Reflector(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: Any = transport

        def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
            self.transport.sendto(data[::-1], addr)

    async def reflect() -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(Reflector, local_addr=("bravo", 53),
                                                                family=socket.AF_INET)
        await asyncio.sleep(1)
        transport.close()

    async def ask() -> tuple[bytes, tuple[Any, ...]]:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[bytes, tuple[Any, ...]]] = loop.create_future()

        class Asker(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
                answer.set_result((data, addr))

        transport, _ = await loop.create_datagram_endpoint(
            Asker, remote_addr=("bravo", 53), family=socket.AF_INET)
        transport.sendto(b"stressed")
        try:
            return await asyncio.wait_for(answer, 1)
        finally:
            transport.close()

    bravo.spawn("reflector", lambda: vnet.aio.run(reflect(), bravo))
    net.run_for(0.001)
    assert vnet.aio.run(ask(), alpha) == (b"desserts", ("10.0.0.2", 53))


def test_connect_to_a_closed_port_fails_as_asyncio_reports_it(net: Network) -> None:
    async def connect() -> None:
        await asyncio.open_connection("10.0.0.2", 9)

    with pytest.raises(ConnectionRefusedError) as refused:
        vnet.aio.run(connect(), net.hosts["alpha"])
    assert refused.value.errno == 111
    assert str(refused.value) == "[Errno 111] Connect call failed ('10.0.0.2', 9)"


def test_a_wait_nothing_can_end_raises_instead_of_hanging(net: Network) -> None:
    async def wait_forever() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(TimeoutError, match="every task is blocked"):
        vnet.aio.run(wait_forever(), net.hosts["alpha"])


def test_asyncio_echo_in_real_time() -> None:
    network = Network(virtual_time=False)
    try:
        lan = network.segment("lan")
        network.host("alpha").connect(lan, "10.0.0.1/24")
        network.host("bravo").connect(lan, "10.0.0.2/24")
        alpha, bravo = network.hosts["alpha"], network.hosts["bravo"]
        listening = []

        async def serve() -> None:
            server = await asyncio.start_server(echo, "bravo", 7)
            listening.append(True)
            async with server:
                await asyncio.sleep(2)

        async def client() -> bytes:
            while not listening:
                await asyncio.sleep(0.01)
            reader, writer = await asyncio.open_connection("bravo", 7)
            writer.write(b"real\n")
            reply = await reader.readline()
            writer.close()
            await writer.wait_closed()
            return reply

        bravo.spawn("echo-server", lambda: vnet.aio.run(serve(), bravo))
        assert vnet.aio.run(client(), alpha) == b"REAL\n"
    finally:
        network.close()


def test_low_level_sock_calls_and_wait_for_timeouts_in_virtual_seconds(net: Network) -> None:
    alpha = net.hosts["alpha"]

    async def main() -> tuple[bytes, float, str]:
        loop = asyncio.get_running_loop()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # alpha's: inside the loop
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.setblocking(False)
        await loop.sock_connect(client, listener.getsockname())
        server, _ = await loop.sock_accept(listener)
        await loop.sock_sendall(client, b"over loopback")
        data = await loop.sock_recv(server, 100)
        start = loop.time()
        try:
            await asyncio.wait_for(loop.sock_recv(server, 100), 3)
            outcome = "received"
        except TimeoutError:
            outcome = "timed out"
        waited = loop.time() - start
        for sock in (server, client, listener):
            sock.close()
        return data, waited, outcome

    data, waited, outcome = vnet.aio.run(main(), alpha)
    assert (data, outcome) == (b"over loopback", "timed out")
    assert waited == 3.0
