"""Routers that act like routers, from topology files and the Python API.

Router advertisements (periodic and solicited, prefixes, MTU, RDNSS) give
hosts SLAAC addresses, a default route and resolvers; a DHCP server on a
router gives `dhcp = true` hosts (vnet's own client) an address, gateway and
resolvers, renews them and takes them back; static multicast routes forward
a group between segments. All in virtual time through the real stacks: the
frames cross the segments and are captured.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stack.dhcp_server import DhcpServer
from stack.wire import dhcp as wire
from vnet.link.capture import Capture
from vnet.network import Network
from vnet.sim.topology import load
from vnet.testing.pcap import packets_from

ROUTED = """\
[sim]
virtual_time = true
seed = 5

[segments.lan]
latency = "1ms"
[segments.dmz]
latency = "1ms"

[hosts.gw]
forwarding = true
[[hosts.gw.nics]]
segment = "lan"
addresses = ["10.0.0.1/24", "fd00:1::1/64"]
[[hosts.gw.nics]]
segment = "dmz"
addresses = ["10.9.0.1/24", "fd00:9::1/64"]
[hosts.gw.ra]
interface = "eth0"
interval = "30s"
rdnss = ["fd00:9::53"]
prefixes = [{ prefix = "fd00:1::/64", valid = "2h", preferred = "1h" }]
[hosts.gw.dhcp_server]
interface = "eth0"
range = ["10.0.0.100", "10.0.0.149"]
lease = "2m"
dns = ["10.9.0.53"]

[hosts.server]
routes = [{ to = "0.0.0.0/0", via = "10.9.0.1" }, { to = "::/0", via = "fd00:9::1" }]
[[hosts.server.nics]]
segment = "dmz"
addresses = ["10.9.0.53/24", "fd00:9::53/64"]

[hosts."client{n}"]
count = 3
dhcp = true
[[hosts."client{n}".nics]]
segment = "lan"
"""


@pytest.fixture()
def routed(tmp_path: Path) -> Path:
    path = tmp_path / "routed.toml"
    path.write_text(ROUTED)
    return path


def _slaac(mac: bytes, prefix: str) -> str:
    eui = bytearray(mac[:3] + b"\xff\xfe" + mac[3:])
    eui[0] ^= 0x02
    return str(ipaddress.IPv6Address(ipaddress.IPv6Network(prefix).network_address.packed[:8]
                                     + bytes(eui)))


def test_router_advertisements_give_hosts_slaac_addresses_routes_and_resolvers(
        routed: Path) -> None:
    with Network.from_topology(routed) as net:
        cap = net.capture_segments()
        net.run_for(2)
        for n in (1, 2, 3):
            host = net.hosts[f"client{n}"]
            mac = host.nics["eth0"].mac
            assert _slaac(mac, "fd00:1::/64") in host.addresses()
            assert ipaddress.IPv6Address("fd00:9::53").packed in host.stack.dns_servers
            default = [r for r in host.stack.routes.routes(6) if r.prefix_len == 0]
            assert default and default[0].gateway is not None and default[0].gateway[:2] == (
                b"\xfe\x80")
        # the SLAAC address and the RA's default route work across the router
        client = net.hosts["client1"]
        assert client.ping("fd00:9::53", timeout=1)[0] is not None
        # the RA on the wire: prefix with the file's lifetimes, MTU, RDNSS (RFC 8106)
        ras = [p for p in _icmpv6(cap) if p[0] == 134]
        assert ras, "no router advertisement on the wire"
        options = _ndp_options(ras[0][16:])
        prefix = options[3][0]
        assert prefix[0] == 64 and prefix[1] & 0xC0 == 0xC0  # L and A flags
        assert int.from_bytes(prefix[2:6], "big") == 7200
        assert int.from_bytes(prefix[6:10], "big") == 3600
        assert int.from_bytes(options[5][0][4:8], "big") == 1500
        rdnss = options[25][0]
        assert int.from_bytes(rdnss[2:6], "big") == 90  # 3 x interval
        assert rdnss[6:22] == ipaddress.IPv6Address("fd00:9::53").packed


def _icmpv6(cap: Capture) -> list[bytes]:
    out = []
    for record in packets_from(cap.getvalue()):
        frame = record.data
        if frame[12:14] == b"\x86\xdd" and frame[20] == 58:
            out.append(frame[54:])
    return out


def _ndp_options(data: bytes) -> dict[int, list[bytes]]:
    found: dict[int, list[bytes]] = {}
    while len(data) >= 2 and data[1]:
        found.setdefault(data[0], []).append(data[2:data[1] * 8])
        data = data[data[1] * 8:]
    return found


def test_a_router_answers_a_solicitation_within_half_a_second(routed: Path) -> None:
    with Network.from_topology(routed) as net:
        net.run_for(20)  # the initial advertisements are over: the next is seconds away
        gw = net.hosts["gw"]
        sent = gw.counters["ndp.ra_out"]
        client = net.hosts["client1"]
        with net.scheduler.lock:
            client.stack.send_router_solicit("eth0")
        net.run_for(0.6)
        assert gw.counters["ndp.rs_in"] == 1
        assert gw.counters["ndp.ra_out"] == sent + 1


def test_dhcp_hosts_get_address_gateway_and_resolver_and_keep_them(routed: Path,
                                                                    tmp_path: Path) -> None:
    with Network.from_topology(routed, pcap_dir=tmp_path) as net:
        net.run_for(3)
        got = set()
        for n in (1, 2, 3):
            host = net.hosts[f"client{n}"]
            v4 = [a for a in host.addresses() if ":" not in a]
            assert len(v4) == 1 and ipaddress.IPv4Address(v4[0]) in ipaddress.IPv4Network(
                "10.0.0.0/24") and "10.0.0.100" <= v4[0] <= "10.0.0.149"
            got.add(v4[0])
            default = [r for r in host.stack.routes.routes(4) if r.prefix_len == 0]
            assert [r.gateway for r in default] == [bytes((10, 0, 0, 1))]
            assert bytes((10, 9, 0, 53)) in host.stack.dns_servers
        assert len(got) == 3
        # the gateway works: across the router to the other segment
        assert net.hosts["client2"].ping("10.9.0.53")[0] is not None
        # DISCOVER / OFFER / REQUEST / ACK on the wire, from 0.0.0.0 to broadcast first
        for capture in net._nic_captures:
            capture.flush()
        kinds = [_dhcp_type(p) for p in _udp_payloads(tmp_path / "client1-eth0.pcapng", 67,
                                                  68)]
        assert kinds[:1] == [wire.DISCOVER] and wire.OFFER in kinds and wire.ACK in kinds
        # T1 (1 min of a 2 min lease): the clients renew and keep their addresses
        net.run_for(200)
        for n in (1, 2, 3):
            host = net.hosts[f"client{n}"]
            assert next(a for a in host.addresses() if ":" not in a) in got
        client = net.hosts["client1"]._dhcp_layer.clients[client_index(net, "client1")]
        assert client.state == "BOUND" and client.counters["in_ack"] >= 3


def client_index(net: Network, name: str) -> int:
    return int(net.hosts[name].stack.interface("eth0").index)


def _udp_payloads(source: Path, *ports: int) -> list[bytes]:
    out = []
    for record in packets_from(source):
        frame = record.data
        if frame[12:14] == b"\x08\x00" and frame[23] == 17:
            ihl = (frame[14] & 0x0F) * 4
            udp = frame[14 + ihl:]
            if int.from_bytes(udp[2:4], "big") in ports:
                out.append(udp[8:])
    return out


def _dhcp_type(payload: bytes) -> int | None:
    message = wire.DhcpMessage.parse(payload)
    assert not isinstance(message, wire.WireError)
    return message.message_type


def test_release_frees_the_address_and_a_lease_lapses_without_a_server() -> None:
    with Network(virtual_time=True, seed=2) as net:
        lan = net.segment("lan", latency="1ms")
        gw = net.router("gw")
        gw.connect(lan, "192.168.7.1/24")
        server = gw.dhcp_server("eth0", "192.168.7.10", "192.168.7.20", lease="1m",
                                dns=["192.168.7.1"])
        host = net.host("h")
        host.connect(lan)
        client = host.dhcp_client("eth0")
        net.run_for(2)
        assert host.addresses() == ["192.168.7.10"]
        assert server.leases(net.scheduler.monotonic_ns()) == {
            host.nics["eth0"].mac: bytes((192, 168, 7, 10))}
        with net.scheduler.lock:
            host._dhcp_layer.release("eth0")
        net.run_for(1)
        assert host.addresses() == [] and host.stack.dns_servers == []
        assert server.leases(net.scheduler.monotonic_ns()) == {}
        # a new client, then the server goes away: the lease runs out at 60 s
        client = host.dhcp_client("eth0")
        net.run_for(2)
        assert client.state == "BOUND"
        with net.scheduler.lock:
            del gw._dhcp_layer.servers[gw.stack.interface("eth0").index]
        net.run_for(70)
        assert client.state in ("SELECTING", "INIT") and host.addresses() == []
        assert client.counters["expired"] == 1


def test_the_server_naks_a_request_for_someone_elses_address() -> None:
    server = DhcpServer(bytes((10, 0, 0, 1)), 24, bytes((10, 0, 0, 10)), bytes((10, 0, 0, 11)))
    mac_a, mac_b = b"\x02\0\0\0\0\x0a", b"\x02\0\0\0\0\x0b"

    def request(mac: bytes, kind: int, **fields: object) -> wire.DhcpMessage:
        reply = server.receive(0, wire.DhcpMessage(wire.OP_REQUEST, 7, mac, kind,
                                                   flags=wire.FLAG_BROADCAST,
                                                   **fields))  # type: ignore[arg-type]
        assert reply is not None
        parsed = wire.DhcpMessage.parse(reply.message.build())
        assert not isinstance(parsed, wire.WireError)
        return parsed

    offer = request(mac_a, wire.DISCOVER)
    assert offer.message_type == wire.OFFER and offer.yiaddr == bytes((10, 0, 0, 10))
    ack = request(mac_a, wire.REQUEST, server_id=bytes((10, 0, 0, 1)),
                  requested_ip=offer.yiaddr)
    assert ack.message_type == wire.ACK and ack.lease_time == 3600
    assert ack.subnet_mask == bytes((255, 255, 255, 0)) and ack.routers == ()
    # INIT-REBOOT for a's address from b: NAK; outside the subnet: NAK
    assert request(mac_b, wire.REQUEST, requested_ip=offer.yiaddr).message_type == wire.NAK
    assert request(mac_b, wire.REQUEST,
                   requested_ip=bytes((10, 1, 0, 10))).message_type == wire.NAK
    assert request(mac_b, wire.DISCOVER).yiaddr == bytes((10, 0, 0, 11))
    # the pool is exhausted for a third client
    assert server.receive(0, wire.DhcpMessage(wire.OP_REQUEST, 8, b"\x02\0\0\0\0\x0c",
                                              wire.DISCOVER)) is None


def test_static_multicast_routes_forward_a_group_between_segments() -> None:
    with Network(virtual_time=True, seed=1) as net:
        a_lan, b_lan, c_lan = (net.segment(n, latency="1ms") for n in ("a", "b", "c"))
        router = net.router("r")
        router.connect(a_lan, "10.1.0.1/24")
        router.connect(b_lan, "10.2.0.1/24")
        router.connect(c_lan, "10.3.0.1/24")
        router.mroute("239.1.2.3", "eth0", ["eth1"])
        sender = net.host("sender")
        sender.connect(a_lan, "10.1.0.2/24")
        sender.add_route("0.0.0.0/0", "10.1.0.1")
        receivers = []
        for name, seg, address in (("in_b", b_lan, "10.2.0.2/24"),
                                   ("in_c", c_lan, "10.3.0.2/24")):
            host = net.host(name)
            host.connect(seg, address)
            rx = host.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rx.bind(("0.0.0.0", 5000))
            rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                          socket.inet_aton("239.1.2.3") + socket.inet_aton(address[:-3]))
            rx.settimeout(1)
            receivers.append(rx)
        cap = net.capture_segments()
        tx = sender.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 5)
        tx.sendto(b"to the group", ("239.1.2.3", 5000))
        data, _src = receivers[0].recvfrom(100)
        assert data == b"to the group"
        ttls = {p.interface: p.data[22] for p in packets_from(cap.getvalue())
                if p.data[30:34] == bytes((239, 1, 2, 3))}
        assert ttls == {"segment/a": 5, "segment/b": 4}  # decremented on the way
        with pytest.raises(TimeoutError):
            receivers[1].recvfrom(100)  # eth2 is not in the route
        assert router.counters["ipv4.mforwarded"] == 1
        # TTL 1 stops at the router
        tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        tx.sendto(b"stays", ("239.1.2.3", 5000))
        with pytest.raises(TimeoutError):
            receivers[0].recvfrom(100)


def test_topology_mroutes_and_router_keys_load(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(ROUTED.replace('forwarding = true', 'forwarding = true\nmroutes = [{ '
                                   'group = "239.9.9.9", from = "eth1", to = ["eth0"] }]'))
    topo = load(path)
    gw = topo.hosts["gw"]
    assert [(m.group, m.source, m.to) for m in gw.mroutes] == [("239.9.9.9", "eth1", ["eth0"])]
    assert gw.ra[0].prefixes[0].valid_s == 7200 and gw.dhcp_servers[0].lease_s == 120
    assert [h for h in topo.hosts if h.startswith("client")] == ["client1", "client2",
                                                                 "client3"]


def test_vnet_sim_runs_a_dhcp_topology(routed: Path, tmp_path: Path) -> None:
    """Through `vnet sim`: the hosts' DHCP and RA traffic is in the per-NIC pcaps."""
    proc = subprocess.run([sys.executable, "-m", "vnet", "sim", str(routed), "--duration",
                           "3s", "--pcap-dir", str(tmp_path / "pcaps")], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    pcap = (tmp_path / "pcaps" / "client1-eth0.pcapng").read_bytes()
    assert b"\x63\x82\x53\x63" in pcap  # the DHCP magic cookie


def test_dhcp_and_ra_as_scapy_and_tshark_read_them(routed: Path, tmp_path: Path) -> None:
    """Interop with implementations nobody here wrote: scapy's and Wireshark's
    dissectors read vnet's DHCP and RA messages with the options it meant."""
    from scapy.layers.dhcp import BOOTP, DHCP
    from scapy.layers.inet6 import (
        ICMPv6ND_RA,
        ICMPv6NDOptMTU,
        ICMPv6NDOptPrefixInfo,
        ICMPv6NDOptRDNSS,
    )

    with Network.from_topology(routed, pcap_dir=tmp_path) as net:
        net.run_for(3)
    pcap = tmp_path / "client1-eth0.pcapng"
    packets = [p.packet for p in packets_from(pcap)]
    acks = [p for p in packets if DHCP in p and ("message-type", 5) in p[DHCP].options]
    assert acks, "no DHCPACK"
    ack = acks[0]
    options = {o[0]: o[1:] for o in ack[DHCP].options if isinstance(o, tuple)}
    assert options["subnet_mask"] == ("255.255.255.0",)
    assert options["router"] == ("10.0.0.1",)
    assert options["name_server"] == ("10.9.0.53",)
    assert options["lease_time"] == (120,) and options["renewal_time"] == (60,)
    assert options["server_id"] == ("10.0.0.1",)
    assert ack[BOOTP].yiaddr.startswith("10.0.0.1") and ack[BOOTP].op == 2
    ra = next(p for p in packets if ICMPv6ND_RA in p)
    assert ra[ICMPv6NDOptPrefixInfo].prefix == "fd00:1::" and ra[ICMPv6NDOptPrefixInfo].A == 1
    assert ra[ICMPv6NDOptMTU].mtu == 1500
    assert ra[ICMPv6NDOptRDNSS].dns == ["fd00:9::53"] and ra[ICMPv6NDOptRDNSS].lifetime == 90
    tshark = shutil.which("tshark")
    if tshark is None:
        return  # scapy's reading above stands; Wireshark's is an extra
    out = subprocess.run([tshark, "-r", str(pcap), "-Y", "dhcp || icmpv6.type == 134",
                          "-T", "fields", "-e", "dhcp.option.dhcp", "-e",
                          "icmpv6.opt.rdnss", "-e", "_ws.expert.severity"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert {"1", "2", "3", "5"} <= {r[0] for r in rows if r[0]}  # DISCOVER..ACK
    assert any(r[1] == "fd00:9::53" for r in rows)
    assert not [r for r in rows if r[2]], rows  # no expert warnings or errors


def test_a_dhcp_and_ra_run_repeats_byte_for_byte(routed: Path, tmp_path: Path) -> None:
    digests = []
    for attempt in ("one", "two"):
        with Network.from_topology(routed, pcap_dir=tmp_path / attempt) as net:
            net.run_for(70)  # through a renewal
        digests.append({p.name: p.read_bytes() for p in (tmp_path / attempt).iterdir()})
    assert digests[0] == digests[1]


def test_a_router_that_stops_advertising_is_no_longer_a_default_router() -> None:
    """RFC 4861 6.2.5: a final RA with router lifetime 0; hosts drop the default route."""
    with Network(virtual_time=True, seed=4) as net:
        lan = net.segment("lan", latency="1ms")
        gw = net.router("gw")
        gw.connect(lan, "fd00:5::1/64")
        gw.advertise("eth0", interval=10)
        host = net.host("h")
        host.connect(lan)
        net.run_for(1)
        assert [r for r in host.stack.routes.routes(6) if r.prefix_len == 0]
        with net.scheduler.lock:
            advertiser = gw.stack.router_adverts.advertiser
            assert advertiser is not None
            advertiser.stop("eth0")
        net.run_for(1)
        assert not [r for r in host.stack.routes.routes(6) if r.prefix_len == 0]
        sent = gw.counters["ndp.ra_out"]
        net.run_for(60)
        assert gw.counters["ndp.ra_out"] == sent  # and no more advertisements
