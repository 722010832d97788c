"""NAT routers in virtual time, probed the way a STUN client probes (RFC 4787, 5382, 5508, 6296).

Topology: inside hosts `a` (10.0.0.2) and `b` (10.0.0.3) on segment `lan`
behind router `r` (10.0.0.1 inside, 203.0.113.1 outside on `wan`); two
servers `s1` (203.0.113.10) and `s2` (203.0.113.20) on `wan` with no route to
the inside. Python sockets on the hosts send real datagrams and segments
through the router's stack; what a server's recvfrom() reports is the
external endpoint a STUN server would reflect. Pcaps of both segments are
read back and their addresses and checksums checked with scapy.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from firewall.nat_router import PRESETS, NatBehaviour, npt_translate
from stack.hooks import Hook
from vnet.network import AF_INET, AF_INET6, SOCK_DGRAM, SOCK_STREAM, Host, Network
from vnet.testing.pcap import read_pcapng

OUT = "203.0.113.1"
S1, S2 = "203.0.113.10", "203.0.113.20"


class Lab:
    def __init__(self, behaviour: str | NatBehaviour = "port-restricted-cone", seed: int = 1,
                 capture: bool = False, pool: list[str] | None = None, **options: object) -> None:
        self.net = net = Network(virtual_time=True, seed=seed)
        lan, wan = net.segment("lan"), net.segment("wan")
        self.cap = net.capture() if capture else None
        self.r = net.router("r")
        self.r.connect(lan, "10.0.0.1/24", "fd01:0:0:1::1/64")
        self.r.connect(wan, f"{OUT}/24", "2001:db8:ffff::1/64")
        self.a = self.inside("a", "10.0.0.2", lan)
        self.b = self.inside("b", "10.0.0.3", lan)
        self.s1 = net.host("s1")
        self.s1.connect(wan, f"{S1}/24", "2001:db8:ffff::10/64")
        self.s2 = net.host("s2")
        self.s2.connect(wan, f"{S2}/24")
        self.nat = self.r.nat("eth1", behaviour, pool=pool, **options)  # type: ignore[arg-type]

    def inside(self, name: str, address: str, lan: object) -> Host:
        host = self.net.host(name)
        host.connect(lan, f"{address}/24")  # type: ignore[arg-type]
        host.add_route("0.0.0.0/0", "10.0.0.1")
        return host

    def udp(self, host: Host, address: str, port: int) -> socket.socket:
        sock = host.socket(AF_INET, SOCK_DGRAM)
        sock.bind((address, port))
        sock.settimeout(1.0)
        return sock  # type: ignore[return-value]


def reflected(server: socket.socket, client: socket.socket, dest: tuple[str, int]) -> tuple[
        str, int]:
    """Send from `client` to `dest` (where `server` listens): the source the server sees."""
    client.sendto(b"probe", dest)
    data, source = server.recvfrom(100)
    assert data == b"probe"
    return source[0], source[1]


def arrives(sock: socket.socket) -> bool:
    try:
        sock.recvfrom(100)
    except TimeoutError:
        return False
    return True


EXPECTED = {  # preset: (mapping, filtering) as a STUN prober classifies them
    "full-cone": ("endpoint-independent", "endpoint-independent"),
    "restricted-cone": ("endpoint-independent", "address-dependent"),
    "port-restricted-cone": ("endpoint-independent", "address-and-port-dependent"),
    "symmetric": ("address-and-port-dependent", "address-and-port-dependent"),
}


def classify(lab: Lab) -> tuple[str, str]:
    """RFC 5780 section 4.3 / 4.4, done with sockets on both servers."""
    s1a, s1b = lab.udp(lab.s1, S1, 3478), lab.udp(lab.s1, S1, 3479)
    s2a = lab.udp(lab.s2, S2, 3478)
    client = lab.udp(lab.a, "10.0.0.2", 5000)
    first = reflected(s1a, client, (S1, 3478))
    same_address = reflected(s1b, client, (S1, 3479))
    other_address = reflected(s2a, client, (S2, 3478))
    if first == same_address == other_address:
        mapping = "endpoint-independent"
    elif first == same_address:
        mapping = "address-dependent"
    else:
        mapping = "address-and-port-dependent"
    # filtering, from a fresh inside port that has sent to S1:3478 only
    fresh = lab.udp(lab.a, "10.0.0.2", 6000)
    endpoint = reflected(s1a, fresh, (S1, 3478))
    s2a.sendto(b"from another address", endpoint)
    other_address_passes = arrives(fresh)
    s1b.sendto(b"from another port", endpoint)
    other_port_passes = arrives(fresh)
    s1a.sendto(b"from the same endpoint", endpoint)
    assert arrives(fresh), "the answer from the endpoint it sent to must pass"
    if other_address_passes:
        filtering = "endpoint-independent"
    elif other_port_passes:
        filtering = "address-dependent"
    else:
        filtering = "address-and-port-dependent"
    for sock in (s1a, s1b, s2a, client, fresh):
        sock.close()
    return mapping, filtering


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_classifies_as_its_name_says(preset: str) -> None:
    lab = Lab(preset)
    assert classify(lab) == EXPECTED[preset]
    assert lab.nat.counters["nat.filtered"] == {
        "full-cone": 0, "restricted-cone": 1}.get(preset, 2)


def test_address_dependent_mapping() -> None:
    lab = Lab(NatBehaviour("address-dependent", "address-dependent"))
    assert classify(lab) == ("address-dependent", "address-dependent")


def test_port_preserved_when_free_and_changed_when_taken() -> None:
    lab = Lab("port-restricted-cone")
    server = lab.udp(lab.s1, S1, 3478)
    first = lab.udp(lab.a, "10.0.0.2", 5000)
    second = lab.udp(lab.b, "10.0.0.3", 5000)
    assert reflected(server, first, (S1, 3478)) == (OUT, 5000)
    addr, port = reflected(server, second, (S1, 3478))
    assert addr == OUT and port != 5000 and 1024 <= port <= 65535
    low = lab.udp(lab.b, "10.0.0.3", 700)  # a privileged port stays privileged (REQ-? 4.2.1)
    assert reflected(server, low, (S1, 3478)) == (OUT, 700)
    low_a = lab.udp(lab.a, "10.0.0.2", 700)
    addr, port = reflected(server, low_a, (S1, 3478))
    assert port != 700 and 1 <= port <= 1023


def symmetric_ports(seed: int) -> list[int]:
    lab = Lab("symmetric", seed=seed, port_parity=True)
    server = lab.udp(lab.s1, S1, 3478)
    ports = []
    for inside in (5000, 5001, 5002, 5003):
        client = lab.udp(lab.a, "10.0.0.2", inside)
        port = reflected(server, client, (S1, 3478))[1]
        assert port & 1 == inside & 1, "port parity kept (RFC 4787 4.2.2)"
        assert 1024 <= port <= 65535
        ports.append(port)
    return ports


def test_random_ports_keep_parity_and_repeat_with_the_seed() -> None:
    ports = symmetric_ports(7)
    assert ports != [5000, 5001, 5002, 5003]
    assert len(set(ports)) == 4
    assert symmetric_ports(7) == ports


@pytest.mark.parametrize("hairpin", [True, False])
def test_hairpinning(hairpin: bool) -> None:
    lab = Lab("full-cone", hairpin=hairpin)
    server = lab.udp(lab.s1, S1, 3478)
    a_sock = lab.udp(lab.a, "10.0.0.2", 5000)
    b_sock = lab.udp(lab.b, "10.0.0.3", 6000)
    a_public = reflected(server, a_sock, (S1, 3478))
    b_public = reflected(server, b_sock, (S1, 3478))
    a_sock.sendto(b"hairpin", b_public)
    if not hairpin:
        assert not arrives(b_sock)
        return
    data, source = b_sock.recvfrom(100)
    # REQ-9: the inside peer sees the sender's external endpoint, not its inside one
    assert data == b"hairpin" and source == a_public
    b_sock.sendto(b"back", source)
    data, source = a_sock.recvfrom(100)
    assert data == b"back" and source == b_public
    assert lab.nat.counters["nat.hairpin"] == 2


def test_hairpinning_obeys_filtering() -> None:
    lab = Lab("port-restricted-cone")
    server = lab.udp(lab.s1, S1, 3478)
    a_sock = lab.udp(lab.a, "10.0.0.2", 5000)
    b_sock = lab.udp(lab.b, "10.0.0.3", 6000)
    a_public = reflected(server, a_sock, (S1, 3478))
    b_public = reflected(server, b_sock, (S1, 3478))
    a_sock.sendto(b"first", b_public)
    assert not arrives(b_sock)  # b never sent to a's external endpoint
    b_sock.sendto(b"punch", a_public)  # the hole punch: now both ways pass
    assert a_sock.recvfrom(100) == (b"punch", b_public)
    a_sock.sendto(b"second", b_public)
    assert b_sock.recvfrom(100) == (b"second", a_public)


def test_udp_mapping_times_out_unless_refreshed_by_outbound() -> None:
    lab = Lab("full-cone")
    server = lab.udp(lab.s1, S1, 3478)
    client = lab.udp(lab.a, "10.0.0.2", 5000)
    public = reflected(server, client, (S1, 3478))
    # inbound traffic every 100 s keeps nothing alive (RFC 4787 REQ-6: outbound refreshes)
    for _ in range(2):
        lab.net.run_for(100)
        server.sendto(b"in", public)
        assert arrives(client)
    lab.net.run_for(98.5)  # 298.5 s after the only outbound packet (no link latency)
    server.sendto(b"in", public)
    assert arrives(client)
    lab.net.run_for(2)
    server.sendto(b"too late", public)
    assert not arrives(client)
    # outbound packets every 200 s keep a new mapping for 1000 s
    public = reflected(server, client, (S1, 3478))
    for _ in range(5):
        lab.net.run_for(200)
        client.sendto(b"keepalive", (S1, 3478))
        assert server.recvfrom(100)[1] == public
    server.sendto(b"still mapped", public)
    assert arrives(client)


def test_udp_timeout_is_configurable_but_not_below_two_minutes() -> None:
    with pytest.raises(ValueError, match="REQ-5"):
        NatBehaviour(udp_timeout_s=60)
    lab = Lab("full-cone", udp_timeout_s=120)
    server = lab.udp(lab.s1, S1, 3478)
    client = lab.udp(lab.a, "10.0.0.2", 5000)
    public = reflected(server, client, (S1, 3478))
    lab.net.run_for(121)
    server.sendto(b"late", public)
    assert not arrives(client)


def tcp_pair(lab: Lab) -> tuple[socket.socket, socket.socket, tuple[str, int]]:
    listener = lab.s1.socket(AF_INET, SOCK_STREAM)
    listener.bind((S1, 80))
    listener.listen()
    client = lab.a.socket(AF_INET, SOCK_STREAM)
    client.bind(("10.0.0.2", 40000))
    client.settimeout(5)
    client.connect((S1, 80))
    conn, peer = listener.accept()
    conn.settimeout(5)
    listener.close()
    return client, conn, peer  # type: ignore[return-value]


def test_tcp_established_mapping_lives_two_hours_four_minutes() -> None:
    lab = Lab("port-restricted-cone")
    client, conn, peer = tcp_pair(lab)
    assert peer == (OUT, 40000)
    client.sendall(b"hello")
    assert conn.recv(100) == b"hello"
    lab.net.run_for(7400)  # idle, well past any UDP timeout: still mapped (RFC 5382 REQ-5)
    conn.sendall(b"still there")
    assert client.recv(100) == b"still there"
    [mapping] = [m for m in lab.nat.mappings() if m.proto == 6]
    assert mapping.established
    client.sendall(b"refresh")  # outbound: the 7440 s start again
    assert conn.recv(100) == b"refresh"
    lab.net.run_for(7441)
    assert [m for m in lab.nat.mappings() if m.proto == 6] == []
    conn.sendall(b"lost")
    with pytest.raises(TimeoutError):
        client.recv(100)


def test_tcp_closing_mapping_is_transitory_four_minutes() -> None:
    lab = Lab("port-restricted-cone")
    client, conn, _peer = tcp_pair(lab)
    client.close()
    conn.close()
    lab.net.run_for(230)
    assert [m.established for m in lab.nat.mappings() if m.proto == 6] == [False]
    lab.net.run_for(20)
    assert [m for m in lab.nat.mappings() if m.proto == 6] == []


def test_unsolicited_syn_gets_no_reset_but_the_routers_own_listener_answers() -> None:
    """RFC 5382 REQ-4/4a: an inbound SYN with no mapping is dropped unanswered (a
    simultaneous open may be on its way out), unless the router itself listens there."""
    lab = Lab("full-cone")
    probe = lab.s1.socket(AF_INET, SOCK_STREAM)
    probe.settimeout(5)
    with pytest.raises(TimeoutError):
        probe.connect((OUT, 40000))
    assert lab.nat.counters["nat.unsolicited_syn"] >= 1
    assert lab.nat.counters["nat.in"] == 0
    with lab.r.socket(AF_INET, SOCK_STREAM) as service:
        service.bind((OUT, 22))
        service.listen()
        with lab.s1.socket(AF_INET, SOCK_STREAM) as ssh:
            ssh.settimeout(5)
            ssh.connect((OUT, 22))
            assert ssh.getpeername() == (OUT, 22)


def test_tcp_simultaneous_open_through_two_port_restricted_nats() -> None:
    """TCP hole punching: both ends connect() at once from bound ports; neither NAT
    resets the other's early SYN, so both connections come up (RFC 5382 REQ-4)."""
    net = Network(virtual_time=True, seed=2)
    wan = net.segment("wan")
    ends = []
    for n in (1, 2):
        lan = net.segment(f"lan{n}")
        router = net.router(f"r{n}")
        router.connect(lan, f"10.0.{n}.1/24")
        router.connect(wan, f"203.0.113.{n}/24")
        router.nat("eth1", "port-restricted-cone")
        host = net.host(f"h{n}")
        host.connect(lan, f"10.0.{n}.2/24")
        host.add_route("0.0.0.0/0", f"10.0.{n}.1")
        ends.append(host)
    results: dict[str, object] = {}

    def dial(host: Host, peer: str, key: str) -> None:
        sock = host.socket(AF_INET, SOCK_STREAM)
        sock.bind(("", 40000))
        sock.settimeout(10)
        try:
            sock.connect((peer, 40000))
            sock.sendall(key.encode())
            results[key] = sock.recv(10)
        except OSError as e:
            results[key] = e

    net.spawn("one", lambda: dial(ends[0], "203.0.113.2", "one"))
    net.spawn("two", lambda: dial(ends[1], "203.0.113.1", "two"))
    net.wait(lambda: len(results) == 2, 30)
    assert results == {"one": b"two", "two": b"one"}


def test_icmp_echo_through_nat_with_captures_on_both_sides() -> None:
    lab = Lab("symmetric", capture=True)
    assert None not in lab.a.ping(S1, count=2) + lab.a.ping(S1, count=2)
    assert lab.cap is not None
    frames = read_pcapng(lab.cap.getvalue())
    outside = [p for p in frames if p.interface == "s1/eth0" and ICMP in p]
    inside = [p for p in frames if p.interface == "a/eth0" and ICMP in p]
    assert outside and inside
    for p in outside:
        ip = p[IP]
        assert OUT in (ip.src, ip.dst) and "10.0.0.2" not in (ip.src, ip.dst)
    for p in inside:
        assert "10.0.0.2" in (p[IP].src, p[IP].dst)
    request_ids = {p[ICMP].id for p in inside if p[ICMP].type == 8}
    outside_ids = {p[ICMP].id for p in outside if p[ICMP].type == 8}
    assert len(request_ids) == len(outside_ids) == 2
    assert_checksums_valid(frames)


def assert_checksums_valid(frames: object) -> None:
    """Every IPv4 packet in the capture has valid IP and transport checksums (scapy recomputes;
    fragments: the IP header's; their datagram's transport checksum is checked by the
    receiving stack, which drops a datagram whose checksum is wrong)."""
    checked = 0
    for p in frames:  # type: ignore[attr-defined]
        if IP not in p:
            continue
        ip = p[IP]
        fresh = IP(bytes(ip))
        del fresh.chksum
        for layer in (TCP, UDP, ICMP):
            if layer in fresh and not (layer is UDP and fresh[UDP].chksum == 0):
                del fresh[layer].chksum
        rebuilt = IP(bytes(fresh))
        assert rebuilt.chksum == ip.chksum, p.summary()
        if ip.frag or ip.flags.MF:
            checked += 1
            continue  # a fragment's transport checksum covers the whole datagram
        for layer in (TCP, UDP, ICMP):
            if layer in ip and not (layer is UDP and ip[UDP].chksum == 0):
                assert rebuilt[layer].chksum == ip[layer].chksum, (p.interface, p.summary())
        checked += 1
    assert checked


def test_icmp_error_from_outside_is_translated_with_its_embedded_packet() -> None:
    """RFC 5508 REQ-3: s1 has no UDP listener on 9999; its port unreachable reaches `a`
    with the embedded packet rewritten to a's own, so a's connected socket sees ECONNREFUSED."""
    lab = Lab("port-restricted-cone", capture=True)
    client = lab.udp(lab.a, "10.0.0.2", 5000)
    client.connect((S1, 9999))
    client.send(b"anyone?")
    with pytest.raises(ConnectionRefusedError):
        client.recv(100)
    assert lab.nat.counters["nat.icmp_error_in"] == 1
    assert lab.cap is not None
    frames = read_pcapng(lab.cap.getvalue())
    [inside] = [p for p in frames if p.interface == "a/eth0" and ICMP in p]
    assert inside[IP].dst == "10.0.0.2" and inside[ICMP].type == 3
    assert inside[IPerror].src == "10.0.0.2" and inside[UDPerror].sport == 5000
    [outside] = [p for p in frames if p.interface == "s1/eth0" and ICMP in p]
    assert outside[IP].dst == OUT and outside[IPerror].src == OUT
    assert_checksums_valid(frames)


def test_icmp_error_from_inside_is_translated_with_its_embedded_packet() -> None:
    """RFC 5508 REQ-4: `a`'s port unreachable about a packet that came in through a
    full-cone mapping leaves with the external address outside and inside the error."""
    lab = Lab("full-cone", capture=True)
    server = lab.udp(lab.s1, S1, 3478)
    client = lab.udp(lab.a, "10.0.0.2", 5000)
    public = reflected(server, client, (S1, 3478))
    client.close()  # nothing listens on 10.0.0.2:5000 any more
    server.connect(public)
    server.send(b"hello?")
    with pytest.raises(ConnectionRefusedError):
        server.recv(100)
    assert lab.nat.counters["nat.icmp_error_out"] == 1
    assert lab.cap is not None
    frames = read_pcapng(lab.cap.getvalue())
    errors = [p for p in frames if p.interface == "s1/eth0" and ICMP in p]
    assert [(p[IP].src, p[IPerror].dst, p[UDPerror].dport) for p in errors] == [
        (OUT, OUT, public[1])]
    assert_checksums_valid(frames)


@pytest.mark.parametrize("pairing", [True, False])
def test_pool_of_external_addresses(pairing: bool) -> None:
    pool = [OUT, "203.0.113.2"]
    lab = Lab("symmetric", pool=pool, pairing=pairing)
    server = lab.udp(lab.s1, S1, 3478)
    seen: dict[str, list[str]] = {"a": [], "b": []}
    for name, host, address in (("a", lab.a, "10.0.0.2"), ("b", lab.b, "10.0.0.3")):
        for port in (5000, 5001, 5002):
            sock = lab.udp(host, address, port)
            seen[name].append(reflected(server, sock, (S1, 3478))[0])
            server.sendto(b"reply", reflected(server, sock, (S1, 3478)))
            assert arrives(sock)
    if pairing:  # REQ-2: one external address per inside address
        assert seen == {"a": [OUT] * 3, "b": ["203.0.113.2"] * 3}
    else:
        # arbitrary pooling: each new mapping takes the next address in turn
        assert seen == {"a": [OUT, "203.0.113.2", OUT], "b": ["203.0.113.2", OUT, "203.0.113.2"]}


def test_table_full_drops_new_flows_and_counts_them() -> None:
    lab = Lab("symmetric", max_mappings=2)
    server = lab.udp(lab.s1, S1, 3478)
    one, two, three = (lab.udp(lab.a, "10.0.0.2", p) for p in (5000, 5001, 5002))
    reflected(server, one, (S1, 3478))
    reflected(server, two, (S1, 3478))
    three.sendto(b"no room", (S1, 3478))
    assert not arrives(server)
    assert lab.nat.counters["nat.table_full"] == 1
    reflected(server, one, (S1, 3478))  # existing flows go on


def test_nptv6_is_checksum_neutral_and_ipv6_untouched_without_it() -> None:
    inside, outside = "fd01::/48", "2001:db8:1::/48"
    translated = npt_translate(bytes.fromhex("fd010000000000010000000000000002"),
                               ipaddress.IPv6Network(inside),
                               ipaddress.IPv6Network(outside))
    assert translated is not None and translated[:6] == bytes.fromhex("20010db80001")
    from stack.wire.checksum import ones_sum
    # the worked example of RFC 6296 (fd01:203:405::/48 to 2001:db8:1::/48)
    rfc = npt_translate(ipaddress.IPv6Address("fd01:203:405:1::1234").packed,
                        ipaddress.IPv6Network("fd01:203:405::/48"),
                        ipaddress.IPv6Network("2001:db8:1::/48"))
    assert rfc is not None and str(ipaddress.IPv6Address(rfc)) == "2001:db8:1:d550::1234"
    assert ones_sum(translated) == ones_sum(bytes.fromhex("fd010000000000010000000000000002"))
    for nptv6 in (None, (inside, outside)):
        net = Network(virtual_time=True, seed=3)
        lan, wan = net.segment("lan"), net.segment("wan")
        r = net.router("r")
        r.connect(lan, "10.0.0.1/24", "fd01:0:0:1::1/64")
        r.connect(wan, f"{OUT}/24", "2001:db8:ffff::1/64")
        r.nat("eth1", "port-restricted-cone", nptv6=nptv6)
        a = net.host("a")
        a.connect(lan, "fd01:0:0:1::2/64")
        a.add_route("::/0", "fd01:0:0:1::1")
        s = net.host("s")
        s.connect(wan, "2001:db8:ffff::10/64")
        s.add_route("2001:db8:1::/48", "2001:db8:ffff::1")
        s.add_route("fd01::/48", "2001:db8:ffff::1")
        with s.socket(AF_INET6, SOCK_DGRAM) as server, a.socket(AF_INET6, SOCK_DGRAM) as c:
            server.bind(("2001:db8:ffff::10", 3478))
            server.settimeout(1)
            c.settimeout(1)
            c.bind(("fd01:0:0:1::2", 5000))
            c.sendto(b"v6", ("2001:db8:ffff::10", 3478))
            _data, source = server.recvfrom(100)  # delivered: the UDP checksum still holds
            expected = "fd01:0:0:1::2" if nptv6 is None else str(
                ipaddress.IPv6Address(translated))
            assert source[:2] == (expected, 5000)
            server.sendto(b"back", source[:2])
            assert c.recvfrom(100)[0] == b"back"
        net.close()


def test_rerun_gives_byte_identical_captures() -> None:
    def run() -> bytes:
        lab = Lab("symmetric", seed=5, capture=True)
        classify(lab)
        lab.a.ping(S1)
        assert lab.cap is not None
        return lab.cap.getvalue()

    assert run() == run()


def test_nat_refuses_an_unknown_preset_and_a_busy_hook() -> None:
    lab = Lab("full-cone")
    with pytest.raises(ValueError, match="one of"):
        lab.b.nat("eth0", "cone-ish")
    with pytest.raises(ValueError, match="already in use"):
        lab.r.nat("eth0")
    with pytest.raises(ValueError, match="hook is taken"):
        lab.r.set_firewall("chain postrouting {\n    masquerade\n}\n")
    assert lab.r.stack.hooks.get(Hook.FORWARD) is None  # nothing half-attached
    lab.r.set_firewall("chain forward {\n    accept\n}\n")  # a filter-only rule set is fine
    assert classify(lab) == EXPECTED["full-cone"]


def test_fragmented_datagrams_are_translated_both_ways() -> None:
    """A 4000-byte datagram leaves in three fragments: all carry the external address
    outside, the server reassembles it intact, and its 4000-byte answer comes back in."""
    lab = Lab("port-restricted-cone", capture=True)
    server = lab.udp(lab.s1, S1, 3478)
    client = lab.udp(lab.a, "10.0.0.2", 5000)
    payload = bytes(range(256)) * 15 + b"x" * 160
    client.sendto(payload, (S1, 3478))
    data, source = server.recvfrom(65535)
    assert data == payload and source == (OUT, 5000)
    server.sendto(payload[::-1], source)
    assert client.recvfrom(65535) == (payload[::-1], (S1, 3478))
    assert lab.nat.counters["nat.fragment"] == 4
    assert lab.cap is not None
    frames = read_pcapng(lab.cap.getvalue())
    outside = [p for p in frames if p.interface == "s1/eth0" and IP in p and p[IP].proto == 17]
    assert len(outside) == 6 and all(OUT in (p[IP].src, p[IP].dst) for p in outside)
    assert_checksums_valid(frames)


def test_a_later_fragment_without_its_first_is_dropped_and_counted() -> None:
    lab = Lab("full-cone")
    server = lab.udp(lab.s1, S1, 3478)
    client = lab.udp(lab.a, "10.0.0.2", 5000)
    public = reflected(server, client, (S1, 3478))
    orphan = Ether(src=lab.s1.nics["eth0"].mac.hex(":"), dst=lab.r.nics["eth1"].mac.hex(":")) / IP(
        src=S1, dst=public[0], proto=17, id=99, frag=100) / Raw(b"y" * 64)
    with lab.net.scheduler.lock:
        lab.r.stack.receive_frame(lab.r.stack.interface("eth1"), bytes(orphan))
    lab.net.run_for(0.1)
    assert lab.nat.counters["nat.fragment_unmatched"] == 1
    server.sendto(b"still mapped", public)
    assert arrives(client)


@pytest.mark.parametrize("how", ["preset", "masquerade rule"])
def test_path_mtu_discovery_through_the_nat(how: str) -> None:
    """The outside link has MTU 1400 and the server a 1500 MSS: the router's own
    'fragmentation needed' about translated segments reaches the inside host translated
    back, its TCP lowers its segment size, and 100 kB get through."""
    net = Network(virtual_time=True, seed=1)
    lan, wan = net.segment("lan"), net.segment("wan")
    r = net.router("r")
    r.connect(lan, "10.0.0.1/24")
    r.connect(wan, f"{OUT}/24", mtu=1400)
    a = net.host("a")
    a.connect(lan, "10.0.0.2/24")
    a.add_route("0.0.0.0/0", "10.0.0.1")
    s = net.host("s")
    s.connect(wan, f"{S1}/24")
    if how == "preset":
        counters = r.nat("eth1").counters
    else:
        firewall = r.set_firewall("chain postrouting {\n    oifname eth1 masquerade\n}\n")
        assert firewall is not None
        counters = firewall.nat.counters
    listener = s.socket(AF_INET, SOCK_STREAM)
    listener.bind((S1, 80))
    listener.listen()
    client = a.socket(AF_INET, SOCK_STREAM)
    client.settimeout(20)
    client.connect((S1, 80))
    conn, _ = listener.accept()
    conn.settimeout(20)
    client.sendall(b"x" * 100_000)
    got = 0
    while got < 100_000:
        data = conn.recv(65536)
        assert data
        got += len(data)
    assert r.counters["ipv4.drop.frag_needed"] >= 1
    assert counters["nat.icmp_error_in" if how == "preset" else "nat.icmp_error"] >= (
        r.counters["ipv4.drop.frag_needed"])
    net.close()


@pytest.mark.parametrize("hairpin", [True, False])
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_hole_punching_between_two_hosts_behind_the_same_nat(preset: str,
                                                             hairpin: bool) -> None:
    """Two inside hosts learn their public endpoints from a server and punch towards each
    other's: the datagrams meet through the hairpin for every cone NAT with hairpinning
    on; never with it off; never behind a symmetric NAT (each punch gets a new mapping
    that the other side's filter has not seen)."""
    lab = Lab(preset, hairpin=hairpin)
    server = lab.udp(lab.s1, S1, 3478)
    a_sock = lab.udp(lab.a, "10.0.0.2", 5000)
    b_sock = lab.udp(lab.b, "10.0.0.3", 6000)
    a_public = reflected(server, a_sock, (S1, 3478))
    b_public = reflected(server, b_sock, (S1, 3478))
    b_sock.sendto(b"punch", a_public)
    a_sock.sendto(b"hello", b_public)
    expected = hairpin and preset != "symmetric"
    if not expected:
        assert not arrives(b_sock)
        return
    assert b_sock.recvfrom(100) == (b"hello", a_public)
    # b's punch passed only a full cone's filter (a had sent to the server alone)
    assert arrives(a_sock) is (preset == "full-cone")
    b_sock.sendto(b"answer", a_public)
    assert a_sock.recvfrom(100) == (b"answer", b_public)


HOME_ROUTER = """
chain forward {
    policy drop
    ct state established,related accept
    iifname eth0 accept
    iifname eth1 ip daddr 10.0.0.2 tcp dport 7000 ct state new accept
}
chain prerouting {
    type nat hook prerouting priority dstnat
    iifname eth1 tcp dport 80 dnat to 10.0.0.2:7000
}
chain postrouting {
    type nat hook postrouting priority srcnat
    oifname eth1 masquerade
}
"""


def test_home_router_rules_filter_after_dnat_and_track_translated_flows() -> None:
    """A stateful forward chain beside masquerade and a port forward: the filter sees the
    forwarded port's inside address (DNAT happens first, as in Linux), replies of
    masqueraded flows are `established`, and nothing else gets in."""
    net = Network(virtual_time=True, seed=6)
    lan, wan = net.segment("lan"), net.segment("wan")
    r = net.router("r")
    r.connect(lan, "10.0.0.1/24")
    r.connect(wan, f"{OUT}/24")
    a = net.host("a")
    a.connect(lan, "10.0.0.2/24")
    a.add_route("0.0.0.0/0", "10.0.0.1")
    s = net.host("s")
    s.connect(wan, f"{S1}/24")
    firewall = r.set_firewall(HOME_ROUTER)
    assert firewall is not None
    with s.socket(AF_INET, SOCK_DGRAM) as server, a.socket(AF_INET, SOCK_DGRAM) as client:
        server.bind((S1, 53))
        server.settimeout(1)
        client.bind(("10.0.0.2", 5353))
        client.settimeout(1)
        client.sendto(b"query", (S1, 53))
        assert server.recvfrom(100) == (b"query", (OUT, 5353))
        source = (OUT, 5353)
        server.sendto(b"answer", source)
        assert client.recvfrom(100) == (b"answer", (S1, 53))
        server.sendto(b"unasked", (OUT, 5354))  # no flow: the router's, not forwarded
        with pytest.raises(TimeoutError):
            client.recvfrom(100)
    with a.socket(AF_INET, SOCK_STREAM) as listener:
        listener.bind(("10.0.0.2", 7000))
        listener.listen()
        with s.socket(AF_INET, SOCK_STREAM) as visitor:
            visitor.settimeout(5)
            visitor.connect((OUT, 80))
            conn, peer = listener.accept()
            assert peer[0] == S1
            conn.sendall(b"welcome")
            assert visitor.recv(100) == b"welcome"
            conn.close()
        with s.socket(AF_INET, SOCK_STREAM) as intruder:
            intruder.settimeout(5)  # the router itself has nothing on 7000: a reset
            with pytest.raises(ConnectionRefusedError):
                intruder.connect((OUT, 7000))
    assert firewall.counters["forward.drop"] == 0
    assert firewall.nat.counters["nat.dnat"] == 1 and firewall.nat.counters["nat.masquerade"] == 1
