"""The example VPN (examples/vpn/vpn.c, examples/vpn.toml) joins two LANs that have
no other route to each other.

Each gateway runs the VPN as a wasm guest on a TUN device it was granted; the
hosts behind them exchange a ping, a TCP transfer (SHA-256 equal at both
ends) and a UDP stream, in virtual time and in real time, and through 2 % loss
on the underlay. The capture shows the cleartext on the tunnel interfaces and
only UDP datagrams of ciphertext on the underlay: the transfer's marker bytes
appear on gw1/tun0 and in no underlay frame. The same seed gives a
byte-identical capture. The program itself is the same Linux C natively: see
tests/kernel/test_vpn_native.py.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from scapy.layers.inet import ICMP, IP, TCP, UDP

from vnet.network import Network
from vnet.testing.pcap import read_pcapng

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = ROOT / "examples" / "vpn.toml"
MARKER = b"VPN-CLEARTEXT-MARKER:"
PAYLOAD = (MARKER + bytes(range(200))) * 1200  # about 260 KB
DATAGRAMS = 100


def _topology(tmp_path: Path, loss: float = 0.0) -> Path:
    """examples/vpn.toml, with module paths made absolute and the underlay's loss set."""
    text = TOPOLOGY.read_text().replace('"build/', f'"{ROOT / "examples" / "build"}/')
    text = text.replace('dirs = [".::/www"]', f'dirs = ["{ROOT / "examples"}::/www"]')
    if loss:
        text = text.replace('[segments.internet]\nlatency = "10ms"',
                            f'[segments.internet]\nlatency = "10ms"\nloss = {loss}')
    path = tmp_path / "vpn.toml"
    path.write_text(text)
    return path


def _exercise(topology: Path, *, virtual: bool, seed: int = 8,
              payload: bytes = PAYLOAD) -> dict[str, Any]:
    net = Network.from_topology(topology, seed=seed, virtual_time=virtual)
    capture = net.capture()
    client, web = net.hosts["client"], net.hosts["web"]
    found: dict[str, Any] = {}
    try:
        found["before"] = client.ping("10.1.0.10", timeout=0.5)
    except OSError as e:  # no route at all
        found["before"] = [None, e.errno]
    guests = net.start_guests()
    guests["gw1/vpn"].wait_for("tunnel up", timeout=60)
    guests["gw2/vpn"].wait_for("tunnel up", timeout=60)
    found["ping"] = client.ping("10.1.0.10", count=5, timeout=2)
    received: dict[str, Any] = {"udp": []}

    def serve_tcp() -> None:
        with web.socket() as listener:
            listener.bind(("10.1.0.10", 9000))
            listener.listen(1)
            conn, _ = listener.accept()
            data = bytearray()
            while chunk := conn.recv(65536):
                data += chunk
            received["tcp"] = bytes(data)
            conn.close()

    def send_tcp() -> None:
        with client.socket() as sock:
            sock.connect(("10.1.0.10", 9000))
            sock.sendall(payload)

    web.spawn("tcp-server", serve_tcp)
    client.spawn("tcp-client", send_tcp)
    net.wait(lambda: "tcp" in received, timeout_s=300)

    from socket import AF_INET, SOCK_DGRAM

    rx = web.socket(AF_INET, SOCK_DGRAM)
    rx.bind(("10.1.0.10", 9001))
    rx.settimeout(2.0)

    def stream_udp() -> None:
        with client.socket(AF_INET, SOCK_DGRAM) as tx:
            for seq in range(DATAGRAMS):
                tx.sendto(MARKER + seq.to_bytes(4, "big"), ("10.1.0.10", 9001))
                _sleep(net, 0.005)  # paced by the network's own clock

    client.spawn("udp-stream", stream_udp)
    while len(received["udp"]) < DATAGRAMS:
        try:
            data, _ = rx.recvfrom(2048)
        except OSError:
            break
        received["udp"].append(int.from_bytes(data[len(MARKER):], "big"))
    rx.close()
    found["tcp"] = received.get("tcp", b"")
    found["udp"] = received["udp"]
    found["http"] = guests["client/get"].wait(timeout=60)
    found["capture"] = capture.getvalue()
    found["vpn_stats"] = [line for g in ("gw1/vpn", "gw2/vpn")
                          for line in guests[g].stdout_lines if "stats" in line]
    net.close()
    return found


def _sleep(net: Network, seconds: float) -> None:
    """Let the network run for `seconds` of its own clock (from a spawned body)."""
    deadline = net.scheduler.monotonic_ns() + int(seconds * 1e9)
    net.wait(lambda: net.scheduler.monotonic_ns() >= deadline, timeout_s=seconds + 5)


def _check_capture(raw: bytes, payload: bytes) -> None:
    packets = read_pcapng(raw).packets
    on_tun = [p for p in packets if p.interface == "gw1/tun0"]
    underlay = [p for p in packets if p.interface in ("gw1/eth1", "gw2/eth1")]
    assert on_tun and underlay
    # cleartext inside: the pings and the transfer's bytes as they are
    assert any(ICMP in p and p[IP].dst == "10.1.0.10" for p in on_tun)
    inner = b"".join(bytes(p[TCP].payload) for p in on_tun if TCP in p and p[TCP].dport == 9000)
    assert inner.count(MARKER) >= payload.count(MARKER)
    # only ciphertext outside: UDP to or from the VPN's port, and never the marker
    for p in underlay:
        frame = bytes(p.data)
        assert MARKER not in frame
        if IP in p:
            assert UDP in p and 5555 in (p[UDP].sport, p[UDP].dport), p.summary()
            assert p[IP].src.startswith("198.51.100.") and p[IP].dst.startswith("198.51.100.")


def test_vpn_joins_two_lans_in_virtual_time(tmp_path: Path) -> None:
    found = _exercise(_topology(tmp_path), virtual=True)
    assert found["before"][0] is None  # lan1 and lan2 meet only through the tunnel
    assert all(rtt is not None for rtt in found["ping"])
    assert hashlib.sha256(found["tcp"]).hexdigest() == hashlib.sha256(PAYLOAD).hexdigest()
    assert found["udp"] == list(range(DATAGRAMS))  # in order, none lost on a clean underlay
    assert found["http"] == 0  # the wasm HTTP client fetched its page through the tunnel
    _check_capture(found["capture"], PAYLOAD)
    again = _exercise(_topology(tmp_path), virtual=True)
    assert again["capture"] == found["capture"]  # the same seed: byte-identical


def test_vpn_carries_traffic_through_two_percent_loss(tmp_path: Path) -> None:
    found = _exercise(_topology(tmp_path, loss=0.02), virtual=True, seed=21)
    assert sum(rtt is not None for rtt in found["ping"]) >= 3
    assert hashlib.sha256(found["tcp"]).hexdigest() == hashlib.sha256(PAYLOAD).hexdigest()
    assert len(found["udp"]) >= DATAGRAMS * 0.85  # UDP is not retransmitted: some are lost
    assert found["udp"] == sorted(set(found["udp"]))
    _check_capture(found["capture"], PAYLOAD)


def test_vpn_in_real_time(tmp_path: Path) -> None:
    payload = PAYLOAD[: len(PAYLOAD) // 4]
    found = _exercise(_topology(tmp_path), virtual=False, payload=payload)
    assert found["before"][0] is None
    assert all(rtt is not None for rtt in found["ping"])
    assert hashlib.sha256(found["tcp"]).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert len(found["udp"]) >= DATAGRAMS * 0.95
    assert found["http"] == 0
    _check_capture(found["capture"], payload)


def test_vpn_reconnects_after_the_underlay_is_cut(tmp_path: Path) -> None:
    net = Network.from_topology(_topology(tmp_path), seed=5, virtual_time=True)
    client = net.hosts["client"]
    guests = net.start_guests()
    guests["gw2/vpn"].wait_for("tunnel up", timeout=60)
    assert client.ping("10.1.0.10", count=1, timeout=2)[0] is not None
    internet = net.segments["internet"]
    ports = internet.ports
    internet.partition([[ports[0]], [ports[1]]])  # gw1 and gw2 cannot hear each other
    guests["gw2/vpn"].wait_for("tunnel down", timeout=10)
    assert client.ping("10.1.0.10", count=1, timeout=1)[0] is None
    internet.partition(None)
    guests["gw2/vpn"].wait_for("reconnected", timeout=10)
    assert client.ping("10.1.0.10", count=2, timeout=2) != [None, None]
    net.close()
