"""Golden captures: runs whose every frame is compared with pcaps/NAME.pcapng.

Each test runs one deterministic virtual-time scenario (its seed pinned with
``@pytest.mark.vnet``), asserts what the capture must show, and compares the
whole capture with its golden through ``vnet_golden`` (``vnet.testing.pcap_diff``,
packet by packet, time stamps included). A change in what vnet puts on the
wire fails here with the first differing packet and field named.

Regenerate every golden after an intended change (pcaps/README.md):

    .venv/bin/python -m pytest tests/test_golden_captures.py --vnet-update-goldens
"""

from __future__ import annotations

import io
import socket
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.igmp import IGMPv3_MR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.packet import Raw

from vnet.link.impairment import Impairment
from vnet.network import Network
from vnet.sim import runner, topology
from vnet.testing import Capture, diff_captures, having

ROOT = Path(__file__).resolve().parent.parent
CLIENT, SERVER = "10.0.0.1", "10.0.0.2"


def two_hosts(net: Network, **client_nic: Any) -> tuple[Any, Any]:
    lan = net.segment("lan", latency_ns=1_000_000)
    client = net.host("client")
    client.connect(lan, f"{CLIENT}/24", **client_nic)
    server = net.host("server")
    server.connect(lan, f"{SERVER}/24")
    return client, server


@pytest.mark.vnet(seed=42)
def test_demo_topology(vnet_topology: Any, vnet_golden: Any, tmp_path: Path) -> None:
    demo = ROOT / "examples" / "demo.toml"
    net = vnet_topology(demo)
    guests = net.start_guests()
    for name in net.topology.clients:
        assert guests[name].wait(timeout=120) == 0, guests[name].stderr
    for process in guests.values():
        if not process.done:
            process.kill()  # the servers, as vnet sim stops them at the end
    assert "hello both" in "".join(guests["bob/chat"].stdout_lines)
    assert [p.name for p in net.pcaps] == ["server-eth0.pcapng", "alice-eth0.pcapng",
                                           "bob-eth0.pcapng", "carol-eth0.pcapng",
                                           "web-eth0.pcapng"]
    net.close()
    web = Capture.load(net.pcaps[-1])
    request = web.expect(TCP(dport=8080) / Raw(load=lambda data: data.startswith(b"GET /ticker.c")))
    web.expect(TCP(sport=8080) / Raw(load=lambda data: data.startswith(b"HTTP/1.1 200")),
               after=request)
    # Network.from_topology + start_guests run the demo exactly as `vnet sim` does (with
    # the same seed and schedule: explore unless --vnet-schedule says otherwise)
    sim = runner.run(topology.load(demo), seed=net.seed, schedule=net.scheduler.schedule,
                     pcap_dir=tmp_path, out=io.BytesIO())
    assert sim.ok and [p.name for p in sim.pcaps] == [p.name for p in net.pcaps]
    for ours, theirs in zip(net.pcaps, sim.pcaps, strict=True):
        assert diff_captures(ours, theirs).identical, diff_captures(ours, theirs).report()
    for path in net.pcaps:
        vnet_golden(f"demo/{path.stem}", path)


@pytest.mark.vnet(seed=1)
def test_tcp_handshake_with_a_lost_syn(vnet_network: Network, vnet_capture: Any,
                                       vnet_golden: Any) -> None:
    loss = Impairment(loss=1.0, seed=1)  # the client's NIC loses what it sends ...
    client, server = two_hosts(vnet_network, tx_impairment=loss)
    vnet_network.scheduler.call_at(500_000_000, lambda: setattr(loss, "loss", 0.0))  # ... at first
    with server.socket() as listener:
        listener.bind((SERVER, 80))
        listener.listen(1)
        with client.socket() as sock:
            sock.connect((SERVER, 80))
            accepted, _ = listener.accept()
            sock.sendall(b"after the retransmission")
            assert accepted.recv(100) == b"after the retransmission"
            accepted.close()
    vnet_network.run_for(1)
    at_server = vnet_capture("server/eth0")
    syn = at_server.expect(IP(src=CLIENT) / TCP(flags="S"))
    assert syn.time_ns >= 1_000_000_000  # the first SYN was lost; its retransmission came
    sent = vnet_capture("client/eth0").match(IP(src=CLIENT) / TCP(flags="S"))
    assert len(sent) == 2 and sent[1][TCP].seq == sent[0][TCP].seq
    at_server.expect_sequence([TCP(flags="S"), TCP(flags="SA"), TCP(flags="A")], strict=True,
                              flow=syn)
    vnet_golden("tcp-handshake-with-loss", vnet_capture.path)


GROUP = "239.1.2.3"


def report(change: str, group: str) -> Any:
    """An IGMPv3 report whose records hold `change` ("join" or "leave") for `group`."""
    record_type = {"join": 4, "leave": 3}[change]  # change to exclude {} / to include {}

    def holds(records: list[Any]) -> bool:
        return any(r.rtype == record_type and r.maddr == group and not r.numsrc for r in records)

    holds.__name__ = f"{change}_{group}"
    return having(IGMPv3_MR(), records=holds)


@pytest.mark.vnet(seed=1)
def test_multicast_join_and_leave(vnet_network: Network, vnet_capture: Any,
                                  vnet_golden: Any) -> None:
    lan = vnet_network.segment("lan", latency_ns=1_000_000, snooping=True)
    sender = vnet_network.host("sender")
    sender.connect(lan, "10.0.0.1/24")
    member = vnet_network.host("member")
    member.connect(lan, "10.0.0.2/24")
    request = socket.inet_aton(GROUP) + socket.inet_aton("10.0.0.2")
    with member.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
            sender.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        rx.bind(("0.0.0.0", 5000))
        rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, request)
        vnet_network.run_for(0.1)
        tx.sendto(b"to the group", (GROUP, 5000))
        assert rx.recvfrom(100)[0] == b"to the group"
        rx.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, request)
        vnet_network.run_for(0.1)
        tx.sendto(b"nobody listens", (GROUP, 5000))
        rx.settimeout(0.5)
        with pytest.raises(TimeoutError):
            rx.recvfrom(100)
    vnet_network.run_for(1)
    seen = vnet_capture("member/eth0")
    to_routers = IP(src="10.0.0.2", dst="224.0.0.22")
    join, leave = seen.expect_sequence([to_routers / report("join", GROUP),
                                        to_routers / report("leave", GROUP)])
    assert join.summary().endswith("Membership Report / Join group 239.1.2.3 for any sources")
    assert leave.summary().endswith("Membership Report / Leave group 239.1.2.3")  # as tshark
    seen.expect(UDP(dport=5000) / Raw(b"to the group"), after=join)
    seen.expect_none(IP(dst=GROUP) / UDP(), after=leave)  # snooping: it left, nothing reaches it
    vnet_golden("multicast-join-leave", vnet_capture.path)


@pytest.mark.vnet(seed=1)
def test_firewall_reject(vnet_network: Network, vnet_capture: Any, vnet_golden: Any) -> None:
    client, server = two_hosts(vnet_network)
    server.set_firewall('chain input {\n    policy accept\n'
                        '    tcp dport 80 log prefix "web: " reject\n'
                        '    udp dport 9999 log prefix "udp: " reject\n}\n')
    with server.socket() as listener:
        listener.bind((SERVER, 80))
        listener.listen(1)
        with client.socket() as sock, pytest.raises(ConnectionRefusedError):
            sock.connect((SERVER, 80))
    with client.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((SERVER, 9999))
        sock.send(b"query")
        sock.settimeout(1)
        with pytest.raises(ConnectionRefusedError):
            sock.recv(100)
    vnet_network.run_for(1)
    capture = vnet_capture()
    logged = capture.on("server/firewall")
    assert [c.comments for c in logged] == [(c.comments[0],) for c in logged] and len(logged) == 2
    assert "web: " in logged[0].comments[0] and "udp: " in logged[1].comments[0]
    wire = capture.on("client/eth0")
    syn = wire.expect(TCP(dport=80, flags="S"))
    wire.expect(IP(src=SERVER) / TCP(sport=80, flags="RA", ack=syn[TCP].seq + 1), after=syn)
    query = wire.expect(UDP(dport=9999))
    wire.expect(IP(src=SERVER) / ICMP(type=3, code=3), after=query)
    assert bytes(query[UDP].payload) == b"query"
    vnet_golden("firewall-reject", vnet_capture.path)
