"""Benches for firewall tests: a host and a router stack with a firewall on their hooks.

`HostBench` is one HostStack (eth0: 10.0.0.1/24, fd00::1/64) with UDP, TCP and
ping layers and a `HostFirewall` attached; `RouterBench` is a forwarding
HostStack between eth0 (10.0.0.1/24, fd00::1/64) and eth1 (10.1.0.1/24,
fd01::1/64). Both keep every frame they transmit per interface, know their
peers' MACs statically (no ARP/NDP in the way), and run on a ManualDriver.

`judge(bench, hook, packet)` pushes a scapy-built IP packet through one hook
the way real traffic gets there -- a frame received on eth0 for INPUT and
FORWARD, `send_ip` for OUTPUT -- and says what the firewall decided
("accept", "drop", "reject"), read from its verdict counters.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from firewall import HostFirewall, Ruleset
from stack.build import build_host
from stack.driver import ManualDriver
from stack.host import HostStack
from stack.ping import IcmpEchoLayer
from stack.tcp import TcpLayer
from stack.udp import UdpLayer

OUR_MAC = "02:00:00:00:00:01"
OUR_MAC1 = "02:00:00:00:01:01"
PEER_MAC = "02:00:00:00:00:02"
PEER_MAC1 = "02:00:00:00:01:02"

# Addresses by role: what a packet at each hook goes from and to.
ADDRS = {
    4: {"host": "10.0.0.1", "peer": "10.0.0.2", "far": "10.1.0.2", "other": "10.0.0.3",
        "router1": "10.1.0.1"},
    6: {"host": "fd00::1", "peer": "fd00::2", "far": "fd01::2", "other": "fd00::3",
        "router1": "fd01::1"},
}


def raw(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def endpoints(hook: str, version: int) -> tuple[str, str]:
    """(src, dst) of a packet seen at `hook` on the bench."""
    a = ADDRS[version]
    if hook == "input":
        return a["peer"], a["host"]
    if hook == "output":
        return a["host"], a["peer"]
    return a["peer"], a["far"]


class _Bench:
    stack: HostStack
    firewall: HostFirewall
    driver: ManualDriver

    def __init__(self, forwarding: bool) -> None:
        self.driver = ManualDriver()
        built = build_host(self.driver, "router" if forwarding else "host",
                           rng=random.Random(1), forwarding=forwarding)
        assert built.udp is not None and built.tcp is not None and built.icmp is not None
        self.stack = built.stack
        self.udp: UdpLayer = built.udp
        self.tcp: TcpLayer = built.tcp
        self.icmp: IcmpEchoLayer = built.icmp
        self.frames: dict[str, list[bytes]] = {}
        self.eth0 = self._iface("eth0", OUR_MAC, ("10.0.0.1/24", "fd00::1/64"),
                                {"10.0.0.2": PEER_MAC, "10.0.0.3": PEER_MAC,
                                 "fd00::2": PEER_MAC, "fd00::3": PEER_MAC})

    def _iface(self, name: str, our_mac: str, addresses: tuple[str, ...],
               peers: dict[str, str]) -> Any:
        iface = self.stack.add_interface(name, mac(our_mac))
        frames: list[bytes] = []
        self.frames[name] = frames
        iface.transmit = frames.append
        for cidr in addresses:
            self.stack.add_address(name, cidr)
        for addr, peer_mac in peers.items():
            cache = self.stack.arp if ":" not in addr else self.stack.ndp
            cache[iface.index].add_static(raw(addr), mac(peer_mac))
        frames.clear()
        return iface

    def use(self, rules: str | Ruleset, **kwargs: Any) -> HostFirewall:
        ruleset = Ruleset.parse(rules) if isinstance(rules, str) else rules
        self.firewall = HostFirewall(ruleset, **kwargs).attach(self.stack)
        return self.firewall

    def inject(self, packet: Any, iface: str = "eth0") -> None:
        """Receive an IP packet (scapy) as a frame on an interface."""
        our = OUR_MAC if iface == "eth0" else OUR_MAC1
        peer = PEER_MAC if iface == "eth0" else PEER_MAC1
        self.stack.receive_frame(self.stack.interface(iface),
                                 bytes(Ether(src=peer, dst=our) / packet))

    def sent(self, iface: str = "eth0", ip_only: bool = True) -> list[Any]:
        """Frames sent on `iface` since last asked (scapy), IPv6 ND/MLD left out."""
        frames = [Ether(f) for f in self.frames[iface]]
        self.frames[iface].clear()
        if ip_only:
            frames = [f for f in frames if (IP in f and f[IP].proto != 2) or (
                IPv6 in f and not _is_nd_or_mld(f))]
        return frames

    def advance(self, seconds: float) -> None:
        self.driver.advance(int(seconds * 1e9))


def _is_nd_or_mld(frame: Any) -> bool:
    layer = frame[IPv6]
    nh = layer.nh
    payload = layer.payload
    if nh == 0:  # hop-by-hop: MLD
        return True
    body = bytes(payload)
    return nh == 58 and len(body) > 0 and body[0] in (130, 131, 132, 133, 134, 135, 136, 143)


class HostBench(_Bench):
    def __init__(self) -> None:
        super().__init__(forwarding=False)


class RouterBench(_Bench):
    def __init__(self) -> None:
        super().__init__(forwarding=True)
        self.eth1 = self._iface("eth1", OUR_MAC1, ("10.1.0.1/24", "fd01::1/64"),
                                {"10.1.0.2": PEER_MAC1, "fd01::2": PEER_MAC1})


def bench_for(hook: str) -> _Bench:
    return RouterBench() if hook == "forward" else HostBench()


def send_out(bench: _Bench, packet: Any) -> str | None:
    """Send a scapy IP packet's payload through the stack's output path; errno name or None."""
    import errno as errno_mod

    layer = packet[IP] if IP in packet else packet[IPv6]
    proto = layer.proto if IP in packet else layer.nh
    try:
        bench.stack.send_ip(raw(layer.dst), proto, bytes(layer.payload), src=raw(layer.src))
    except OSError as e:
        return errno_mod.errorcode.get(e.errno or 0, str(e.errno))
    return None


def judge(bench: _Bench, hook: str, packet: Any) -> str:
    """What the firewall decided for `packet` at `hook`: accept, drop or reject."""
    before = dict(bench.firewall.counters)
    if hook == "output":
        send_out(bench, packet)
    else:
        bench.inject(packet)
    after = bench.firewall.counters
    decided = [key.split(".")[1] for key in after
               if key.startswith(f"{hook}.") and after[key] != before.get(key, 0)]
    assert len(decided) == 1, f"expected one verdict at {hook}, got {decided}"
    return decided[0]
