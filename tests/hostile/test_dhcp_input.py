"""Hostile DHCP: garbage, truncated and forged messages, and a DISCOVER flood.

A host on the LAN sends, from a UDP socket of its own, datagrams to the
DHCP server's port 67 and to clients' port 68: random bytes, truncated
BOOTP, options running past the end, OFFERs and NAKs with the wrong
transaction id. Each is a counted drop (`dhcp.drop.*`) or ignored by the
engine (its counters) -- never a traceback, and the bound client keeps its
lease. A flood of DISCOVERs from made-up MACs takes the free addresses
(as on any DHCP server without rate limits: RFC 2131 has none) but not the
ones already leased, and a pool that runs out is counted, not an error.
"""

from __future__ import annotations

import random
import socket

from stack.dhcp_client import DhcpClient
from stack.dhcp_server import DhcpServer
from stack.wire import dhcp as wire
from vnet.network import Host, Network


def _lan() -> tuple[Network, DhcpServer, DhcpClient, Host]:
    net = Network(virtual_time=True, seed=9)
    lan = net.segment("lan", latency="1ms")
    gw = net.router("gw")
    gw.connect(lan, "10.5.0.1/24")
    server = gw.dhcp_server("eth0", "10.5.0.10", "10.5.0.19", lease="10m")
    victim = net.host("victim")
    victim.connect(lan)
    client = victim.dhcp_client("eth0")
    attacker = net.host("attacker")
    attacker.connect(lan, "10.5.0.66/24")
    net.run_for(2)
    return net, server, client, attacker


def test_garbage_to_the_dhcp_ports_is_counted_and_changes_nothing() -> None:
    net, server, client, attacker = _lan()
    with net:
        assert client.state == "BOUND"
        lease = client.lease
        rng = random.Random(1)
        good = wire.DhcpMessage(wire.OP_REPLY, client.xid, client.mac,
                                wire.OFFER, yiaddr=bytes((10, 5, 0, 15))).build()
        payloads = [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 400)))
                    for _ in range(200)]
        payloads += [good[:n] for n in (0, 1, 100, 239, 240, 241)]
        payloads.append(good[:240] + bytes((53, 200, 1)))  # an option past the end
        # a forged NAK for another transaction, and one with our xid but another MAC
        payloads.append(wire.DhcpMessage(wire.OP_REPLY, client.xid ^ 1,
                                         client.mac, wire.NAK).build())
        payloads.append(wire.DhcpMessage(wire.OP_REPLY, client.xid,
                                         b"\x02\x99\x99\x99\x99\x99", wire.NAK).build())
        sock = attacker.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind(("10.5.0.66", 68))
        for payload in payloads:
            sock.sendto(payload, ("255.255.255.255", 68))
            sock.sendto(payload, ("10.5.0.1", 67))
        net.run_for(5)
        drops = net.hosts["victim"].counters.drops()
        assert sum(v for k, v in drops.items() if k.startswith("dhcp")) > 0, drops
        assert client.state == "BOUND" and client.lease == lease
        assert client.counters["drop_not_ours"] >= 2
        assert net.hosts["victim"].addresses() == ["10.5.0.10"]
        gw_drops = net.hosts["gw"].counters.drops()
        assert sum(v for k, v in gw_drops.items() if k.startswith("dhcp")) > 0, gw_drops
        assert server.counters["drop_not_request"] >= 3  # the forged replies sent to 67
        assert server.leases(net.scheduler.monotonic_ns()) == {
            net.hosts["victim"].nics["eth0"].mac: bytes((10, 5, 0, 10))}


def test_parse_never_raises_on_random_input() -> None:
    rng = random.Random(7)
    base = wire.DhcpMessage(wire.OP_REQUEST, 1, b"\x02" * 6, wire.DISCOVER,
                            hostname="h", parameter_list=b"\x01\x03\x06").build()
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.getrandbits(8)
        result = wire.DhcpMessage.parse(bytes(data[:rng.randrange(len(data) + 1)]))
        assert isinstance(result, (wire.DhcpMessage, wire.WireError))


def test_a_discover_flood_takes_free_addresses_only() -> None:
    net, server, client, attacker = _lan()
    with net:
        sock = attacker.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.bind(("10.5.0.66", 68))
        for n in range(50):
            mac = bytes((2, 0x66, 0, 0, 0, n))
            sock.sendto(wire.DhcpMessage(wire.OP_REQUEST, n, mac, wire.DISCOVER,
                                         flags=wire.FLAG_BROADCAST).build(),
                        ("255.255.255.255", 67))
        net.run_for(2)
        counters = server.counters
        assert counters["out_offer"] == 1 + 9  # the victim's, then the 9 left
        assert counters["pool_exhausted"] == 41
        net.run_for(400)  # the victim renews at T1 (5 min) and keeps its address
        assert client.state == "BOUND"
        assert net.hosts["victim"].addresses() == ["10.5.0.10"]
