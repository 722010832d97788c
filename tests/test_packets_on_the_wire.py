"""What the example programs put on the wire, asserted packet by packet with the vnet plugin.

This file is written as a vnet user would write it: it imports scapy's
layers and, from vnet, only ``vnet.testing.having``; everything else comes
through the plugin's fixtures (``vnet_network``, ``vnet_build``,
``vnet_capture``) and the documented API (``net.segment``, ``net.host``,
``host.connect``, ``host.run`` and its process, and the ``Capture``
assertions ``expect``, ``expect_sequence``, ``expect_only``, ``expect_none``,
``conversation``). docs/testing.md walks through it.

Each test builds an example from C, runs it on two virtual hosts joined by
one Ethernet segment in virtual time, and checks the capture of the link as
seen by one NIC (each frame once): the exchange the program is for, and that
nothing else crossed the link.
"""

from __future__ import annotations

from typing import Any

from scapy.layers.igmp import IGMPv3_MR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6MLReport2, ICMPv6ND_NA
from scapy.layers.l2 import ARP
from scapy.packet import Raw

from vnet.testing import having

SERVER, CLIENT = "10.0.0.1", "10.0.0.2"
LATENCY_NS = 500_000  # one way: a round trip is 1 ms of virtual time

#: What any two hosts say when their interfaces come up and they first talk:
#: IPv6 multicast listener reports and an unsolicited neighbor advertisement
#: for their link-local addresses, an ARP announcement, ARP requests and replies.
LINK_HOUSEKEEPING = [ICMPv6MLReport2(), ICMPv6ND_NA(), ARP(op="who-has"), ARP(op="is-at")]


def two_hosts(net: Any) -> tuple[Any, Any]:
    lan = net.segment("lan", latency_ns=LATENCY_NS)
    server = net.host("alpha")
    server.connect(lan, f"{SERVER}/24")
    client = net.host("bravo")
    client.connect(lan, f"{CLIENT}/24")
    return server, client


def test_tcp_echo_handshake_data_fin_and_nothing_else(vnet_network: Any, vnet_build: Any,
                                                       vnet_capture: Any) -> None:
    server_host, client_host = two_hosts(vnet_network)
    server = server_host.run(vnet_build("examples/tcp_echo_server.c"), "7000")
    client = client_host.run(vnet_build("examples/tcp_echo_client.c"), SERVER, "7000",
                             "hello", "world")
    assert client.wait(timeout=30) == 0, client.stderr
    assert client.stdout_lines[-1] == "tcp_echo_client: all echoes matched"
    server.wait_for("10 bytes echoed", timeout=5)

    link = vnet_capture("bravo/eth0")  # the client's NIC: every frame of the link, once
    syn = link.expect(IP(src=CLIENT, dst=SERVER) / TCP(dport=7000, flags="S"))
    tcp = link.conversation(syn)
    client_port = syn[TCP].sport
    to_server = IP(src=CLIENT, dst=SERVER) / TCP(sport=client_port, dport=7000)
    to_client = IP(src=SERVER, dst=CLIENT) / TCP(sport=7000, dport=client_port)

    def sent(direction: Any, **fields: Any) -> Any:
        template = direction.copy()
        for name, value in fields.items():
            setattr(template[TCP], name, value)
        return template

    handshake = tcp.expect_sequence([
        sent(to_server, flags="S"),
        sent(to_client, flags="SA", ack=syn[TCP].seq + 1),
        sent(to_server, flags="A", seq=syn[TCP].seq + 1),
    ], strict=True)
    assert handshake[0] is syn
    # the server's SYN-ACK comes one round trip after the SYN
    tcp.expect(sent(to_client, flags="SA"), after=syn, within=2 * LATENCY_NS / 1e9)

    data = tcp.expect_sequence([
        sent(to_server, flags="PA") / Raw(b"hello"),
        sent(to_client, flags="PA") / Raw(b"hello"),
        sent(to_server, flags="PA") / Raw(b"world"),
        sent(to_client, flags="PA") / Raw(b"world"),
    ], after=handshake[-1])

    client_fin = tcp.expect(sent(to_server, flags="FA"), after=data[-1])
    tcp.expect_sequence([
        sent(to_server, flags="FA"),
        # as Linux: the server delays the ACK of the client's FIN, and its own FIN,
        # sent when the echo server closes at once, carries it
        sent(to_client, flags="FA", ack=client_fin[TCP].seq + 1),
        sent(to_server, flags="A"),
    ], strict=True, after=data[-1])
    assert tcp[-1][TCP].flags == "A"  # the last packet of the connection acknowledges the FIN

    # Every segment of the connection is one of these; bare ACKs carry no data.
    tcp.expect_only([sent(to_server, flags="S"), sent(to_client, flags="SA"),
                     sent(to_server, flags="A") / Raw(load=b""),
                     sent(to_client, flags="A") / Raw(load=b""),
                     sent(to_server, flags="PA"), sent(to_client, flags="PA"),
                     sent(to_server, flags="FA"), sent(to_client, flags="FA")])
    # Nothing but this connection and the link's own housekeeping crossed the link.
    link.expect_only([*LINK_HOUSEKEEPING, to_server, to_client])
    assert len(link.where(lambda p: TCP in p)) == len(tcp) == 14


def test_udp_request_and_reply_and_nothing_else(vnet_network: Any, vnet_build: Any,
                                                vnet_capture: Any) -> None:
    server_host, client_host = two_hosts(vnet_network)
    udp_echo = vnet_build("examples/udp_echo.c")
    server = server_host.run(udp_echo, "server", "9000", "1")  # exits after one datagram
    client = client_host.run(udp_echo, "client", SERVER, "9000", "ping", "1")
    assert client.wait(timeout=30) == 0, client.stderr
    assert server.wait(timeout=5) == 0, server.stderr

    link = vnet_capture("bravo/eth0")
    request = link.expect(IP(src=CLIENT, dst=SERVER) / UDP(dport=9000) / Raw(b"ping 1"))
    reply = link.expect(
        IP(src=SERVER, dst=CLIENT) / UDP(sport=9000, dport=request[UDP].sport) / Raw(b"ping 1"),
        after=request, within=2 * LATENCY_NS / 1e9)
    assert reply.time_ns - request.time_ns == 2 * LATENCY_NS
    flow = link.conversation(request)
    assert [p.index for p in flow] == [request.index, reply.index]
    link.expect_only([*LINK_HOUSEKEEPING, IP(src=CLIENT, dst=SERVER) / UDP(dport=9000),
                      IP(src=SERVER, dst=CLIENT) / UDP(sport=9000)])


GROUP = "239.255.77.77"


def membership(change: str, source: str | None = None) -> Any:
    """An IGMPv3 report (to 224.0.0.22) holding `change` ("join" or "leave") for the group."""
    record_type = {"join": 4, "leave": 3}[change]  # RFC 3376: to exclude {}, to include {}

    def holds(records: list[Any]) -> bool:
        return any(r.rtype == record_type and r.maddr == GROUP and not r.numsrc
                   for r in records)

    holds.__name__ = f"{change}_{GROUP}"
    network = IP(dst="224.0.0.22") if source is None else IP(src=source, dst="224.0.0.22")
    return network / having(IGMPv3_MR(), records=holds)


def test_multicast_join_announcements_and_leave(vnet_network: Any, vnet_build: Any,
                                                vnet_capture: Any) -> None:
    alpha, bravo = two_hosts(vnet_network)
    lobby = vnet_build("examples/lobby.c")
    players = [alpha.run(lobby, "-n", "3", "alice"), bravo.run(lobby, "-n", "3", "bob")]
    for player in players:
        assert player.wait(timeout=30) == 0, player.stderr
    assert players[0].stdout_lines[-1] == "lobby: alice heard 1 peer(s): bob"
    assert players[1].stdout_lines[-1] == "lobby: bob heard 1 peer(s): alice"
    vnet_network.run_for(1)  # the last leave report reaches the other host

    link = vnet_capture("bravo/eth0")
    for address in (SERVER, CLIENT):
        join, leave = link.expect_sequence([membership("join", address),
                                            membership("leave", address)])
        announcements = link.match(IP(src=address, dst=GROUP, ttl=1) / UDP(dport=7777))
        assert len(announcements) == 3  # -n 3, each before the player left the group
        assert all(a.index < leave.index for a in announcements)
        assert link.expect(IP(src=address, dst=GROUP) / UDP(dport=7777), after=join)
    link.expect_none(IP(dst=GROUP), after=leave)
    link.expect_only([*LINK_HOUSEKEEPING, membership("join"), membership("leave"),
                      IP(dst=GROUP, ttl=1) / UDP(dport=7777)])
