"""A hostile guest flooding connection tables: bounded, and nobody else notices."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from firewall import ConnTrack, HostFirewall, Ruleset
from stack.wire import ipv4
from stack.wire import tcp as wire_tcp
from tests.firewall.helpers import OUR_MAC, OUR_MAC1, PEER_MAC, PEER_MAC1, RouterBench, mac, raw
from vnet.network import Network

ROUTER_RULES = """
chain forward {
    policy drop
    ct state established,related accept
    ct state invalid drop
    iifname eth0 ct state new accept
}
"""


_ETH_HEADER = mac(OUR_MAC) + mac(PEER_MAC) + b"\x08\x00"


def syn_frame(src: str, sport: int, dst: str = "10.1.0.2", dport: int = 80) -> bytes:
    """A SYN frame, built with the stack's own codecs (scapy is too slow for floods)."""
    s, d = raw(src), raw(dst)
    segment = wire_tcp.TcpRepr(sport, dport, 1000, 0, wire_tcp.SYN, 65535).build(b"", s, d)
    return _ETH_HEADER + ipv4.Ipv4Repr(s, d, 6, ident=sport).build(segment)


def handshake_through(bench: RouterBench, client: str, sport: int) -> bool:
    """A full handshake from `client` to 10.1.0.2:80 through the router; all forwarded?"""
    bench.sent("eth0")
    bench.sent("eth1")
    bench.stack.receive_frame(bench.eth0, syn_frame(client, sport))
    bench.stack.receive_frame(bench.eth1, bytes(
        Ether(src=PEER_MAC1, dst=OUR_MAC1) / IP(src="10.1.0.2", dst=client)
        / TCP(sport=80, dport=sport, flags="SA", seq=9000, ack=1001)))
    bench.inject(IP(src=client, dst="10.1.0.2") / TCP(sport=sport, dport=80, flags="A",
                                                      seq=1001, ack=9001))
    return len(bench.sent("eth1")) == 2 and len(bench.sent("eth0")) == 1


def test_half_open_flood_through_a_router_is_capped_per_source() -> None:
    bench = RouterBench()
    table = ConnTrack(max_entries=2000, max_per_source=300)
    fw = bench.use(ROUTER_RULES, conntrack=table)
    assert handshake_through(bench, "10.0.0.3", 50000)  # an established flow before the flood
    for sport in range(1, 6001):
        bench.stack.receive_frame(bench.eth0, syn_frame("10.0.0.2", sport))
    assert len(table) == 301  # 300 of the attacker's + the established one
    assert table.stats["insert_failed_source"] == 5700
    assert fw.counters["forward.drop.conntrack_full"] == 5700
    assert len(bench.sent("eth1")) == 300  # only what fit was forwarded
    # the other client's established flow still works, and it can open new ones
    bench.inject(IP(src="10.0.0.3", dst="10.1.0.2") / TCP(sport=50000, dport=80, flags="PA",
                                                        seq=1001, ack=9001) / b"more")
    assert len(bench.sent("eth1")) == 1
    assert handshake_through(bench, "10.0.0.3", 50001)


def test_full_table_keeps_established_flows_and_admits_new_ones() -> None:
    bench = RouterBench()
    table = ConnTrack(max_entries=500)
    bench.use(ROUTER_RULES, conntrack=table)
    for port in range(100):
        assert handshake_through(bench, "10.0.0.3", 40000 + port)
    for sport in range(1, 5001):
        bench.stack.receive_frame(bench.eth0, syn_frame("10.0.0.2", sport))
    assert len(table) == 500
    assert table.stats["early_drop"] == 5000 - 400
    assert sum(1 for conn in table if conn.assured) == 100
    assert handshake_through(bench, "10.0.0.3", 60000)  # a newcomer still gets in
    bench.inject(IP(src="10.0.0.3", dst="10.1.0.2") / TCP(sport=40000, dport=80, flags="PA",
                                                        seq=1001, ack=9001) / b"x")
    assert len(bench.sent("eth1")) == 1


def test_dropped_packets_never_fill_the_table() -> None:
    bench = RouterBench()
    table = ConnTrack(max_entries=100)
    bench.use("chain forward {\n    policy drop\n    ct state established accept\n"
              "    tcp dport 80 accept\n}\n", conntrack=table)
    for sport in range(1, 2001):
        bench.stack.receive_frame(bench.eth0, syn_frame("10.0.0.2", sport, dport=81))
    assert len(table) == 0 and table.stats["insert"] == 0


def test_hostile_guest_flooding_its_own_host_does_not_disturb_others() -> None:
    net = Network(virtual_time=True, seed=5)
    left, right = net.segment("left"), net.segment("right")
    router = net.router("r")
    router.connect(left, "10.0.0.254/24")
    router.connect(right, "10.1.0.254/24")
    hostile, friend, server = net.host("hostile"), net.host("friend"), net.host("server")
    hostile.connect(left, "10.0.0.66/24")
    friend.connect(left, "10.0.0.7/24")
    server.connect(right, "10.1.0.2/24")
    for host in (hostile, friend):
        host.add_route("0.0.0.0/0", "10.0.0.254")
    server.add_route("0.0.0.0/0", "10.1.0.254")
    rtable = ConnTrack(max_entries=4000, max_per_source=200)
    HostFirewall(Ruleset.parse(ROUTER_RULES.replace("forward {", "forward {\n").replace(
        "iifname eth0 ct state new accept", "ct state new accept")), conntrack=rtable).attach(
        router.stack)
    htable = ConnTrack(max_entries=300)
    HostFirewall(Ruleset.parse("chain output {\n    ct state new,established accept\n}\n"),
                 conntrack=htable).attach(hostile.stack)
    HostFirewall(Ruleset.parse("chain input {\n    policy drop\n"
                               "    ct state established accept\n    tcp dport 80 accept\n}\n")
                 ).attach(server.stack)
    listener = server.socket()
    listener.bind(("0.0.0.0", 80))
    listener.listen(16)
    # the hostile guest opens connections to a port the server silently drops
    sockets = []
    for _ in range(1500):
        sock = hostile.socket()
        sock.setblocking(False)
        try:
            sock.connect(("10.1.0.2", 81))
        except BlockingIOError:
            pass
        sockets.append(sock)
    net.run_for(0.5)
    assert len(htable) <= 300
    assert sum(1 for c in rtable if c.source == bytes((10, 0, 0, 66))) <= 200
    # the friend is unaffected
    with friend.socket() as client:
        client.settimeout(5)
        client.connect(("10.1.0.2", 80))
        conn, _ = listener.accept()
        client.sendall(b"hi")
        assert conn.recv(10) == b"hi"
        conn.close()
    for sock in sockets:
        sock.close()
    listener.close()
    net.close()
