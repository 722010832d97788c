"""C guests (the examples, built to wasm) talking through NAT routers in virtual time.

`udp_echo` behind a symmetric NAT echoes with a server that sees only the
router's address; `tcp_echo_server` inside is reached from outside through a
rule file's port forwarding (`dnat to 10.0.0.2:7000`). Both sides' captures
are read back: inside only inside addresses, outside only outside ones.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP

from vnet.guest.runtime import Guest, GuestConfig
from vnet.network import Host, Network
from vnet.testing.pcap import read_pcapng

OUT, SERVER = "203.0.113.1", "203.0.113.10"


def topology() -> tuple[Network, Host, Host, Host]:
    net = Network(virtual_time=True, seed=4)
    lan, wan = net.segment("lan"), net.segment("wan")
    r = net.router("r")
    r.connect(lan, "10.0.0.1/24")
    r.connect(wan, f"{OUT}/24")
    a = net.host("a")
    a.connect(lan, "10.0.0.2/24")
    a.add_route("0.0.0.0/0", "10.0.0.1")
    s = net.host("s")
    s.connect(wan, f"{SERVER}/24")
    return net, r, a, s


class Program:
    def __init__(self, net: Network, host: Host, module: Path, *args: str) -> None:
        self.out = bytearray()
        config = GuestConfig(module=str(module), args=[module.stem, *args], host=host,
                             name=f"{module.stem}@{host.name}")
        config.stdout = self.out.extend
        config.stderr = self.out.extend
        self.guest = Guest(net.scheduler, config)
        self.guest.start()

    @property
    def text(self) -> str:
        return self.out.decode(errors="replace")


def run(net: Network, *programs: Program) -> None:
    net.scheduler.run(until=lambda: all(p.guest.done for p in programs), timeout_s=120)
    for p in programs:
        assert p.guest.done and p.guest.exit_code == 0, p.text


def listening(net: Network, server: Program) -> None:
    """Run until the server says it listens: started together, either may go first."""
    net.scheduler.run(until=lambda: "listening" in server.text or server.guest.done,
                      timeout_s=120)
    assert "listening" in server.text, server.text


def addresses(data: bytes, interface: str) -> set[str]:
    return {a for p in read_pcapng(data) if p.interface == interface and IP in p
            for a in (p[IP].src, p[IP].dst)}


def test_udp_echo_guest_behind_symmetric_nat(example_wasm: Callable[[str], Path]) -> None:
    net, r, a, s = topology()
    cap = net.capture()
    r.nat("eth1", "symmetric")
    server = Program(net, s, example_wasm("udp_echo"), "server", "9000", "3")
    listening(net, server)  # else the client's first datagram may come before the bind
    client = Program(net, a, example_wasm("udp_echo"), "client", SERVER, "9000", "hi", "3")
    run(net, server, client)
    assert "3 of 3 echoed" in client.text
    assert f"from {OUT}:" in server.text and "10.0.0.2" not in server.text
    data = cap.getvalue()
    assert addresses(data, "s/eth0") == {OUT, SERVER}
    assert addresses(data, "a/eth0") == {"10.0.0.2", SERVER}
    udp = [p for p in read_pcapng(data) if p.interface == "s/eth0" and UDP in p]
    assert len(udp) == 6 and {p[UDP].sport for p in udp if p[IP].src == OUT} != {0}
    net.close()


def test_tcp_port_forwarding_to_an_inside_guest(example_wasm: Callable[[str], Path]) -> None:
    net, r, a, s = topology()
    cap = net.capture()
    r.set_firewall("""
chain prerouting {
    type nat hook prerouting priority dstnat
    iifname eth1 tcp dport 80 dnat to 10.0.0.2:7000
}
chain postrouting {
    type nat hook postrouting priority srcnat
    oifname eth1 masquerade
}
""")
    server = Program(net, a, example_wasm("tcp_echo_server"), "7000", "1")
    net.run_for(0.1)
    client = Program(net, s, example_wasm("tcp_echo_client"), OUT, "80", "hello", "nat")
    run(net, server, client)
    assert "all echoes matched" in client.text
    assert f"client {SERVER}" in server.text  # dnat only: the inside sees the real client
    data = cap.getvalue()
    outside = [p for p in read_pcapng(data) if p.interface == "s/eth0" and TCP in p]
    assert outside and all({p[IP].src, p[IP].dst} == {OUT, SERVER} for p in outside)
    assert {p[TCP].sport for p in outside if p[IP].src == OUT} == {80}
    inside = [p for p in read_pcapng(data) if p.interface == "a/eth0" and TCP in p]
    assert inside and {p[TCP].sport for p in inside if p[IP].src == "10.0.0.2"} == {7000}
    net.close()
