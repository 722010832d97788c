"""A HostStack on a ManualDriver with one Ethernet interface whose frames we keep.

Tests feed scapy-built frames in with `inject` and read what the stack sent
with `sent()` (parsed back by scapy, an independent codec).
"""

from __future__ import annotations

import random

from scapy.layers.l2 import Ether

from stack.build import build_host
from stack.driver import ManualDriver
from stack.host import HostStack
from stack.ping import IcmpEchoLayer
from stack.udp import UdpLayer

OUR_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("020000000002")
OUR_MAC_S = "02:00:00:00:00:01"
PEER_MAC_S = "02:00:00:00:00:02"


def _is_membership_report(frame: Ether) -> bool:
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6

    if IP in frame and frame[IP].proto == 2:
        return True
    return IPv6 in frame and frame[IPv6].nh == 0 and frame[IPv6].hlim == 1


class Harness:
    def __init__(self, forwarding: bool = False, addresses: tuple[str, ...] = (
            "10.0.0.1/24", "fd00::1/64")) -> None:
        self.driver = ManualDriver()
        built = build_host(self.driver, "h", rng=random.Random(1), forwarding=forwarding,
                           tcp=False)
        assert built.udp is not None and built.icmp is not None
        self.stack: HostStack = built.stack
        self.udp: UdpLayer = built.udp
        self.icmp: IcmpEchoLayer = built.icmp
        self.frames: list[bytes] = []
        self.iface = self.stack.add_interface("eth0", OUR_MAC)
        self.iface.transmit = self.frames.append
        for a in addresses:
            self.stack.add_address("eth0", a)
        self.frames.clear()  # announcements

    def inject(self, packet: object, iface: object = None) -> None:
        self.stack.receive_frame(iface or self.iface, bytes(packet))  # type: ignore[call-overload]

    def sent(self, membership: bool = False) -> list[Ether]:
        """Frames sent since last asked; IGMP/MLD membership reports only if asked for."""
        out = [Ether(f) for f in self.frames]
        self.frames.clear()
        if not membership:
            out = [f for f in out if not _is_membership_report(f)]
        return out

    def learn_peer(self, ip: str = "10.0.0.2", ip6: str = "fd00::2") -> None:
        """Teach the stack the peer's MACs (static entries keep dialogues short)."""
        import ipaddress

        self.stack.arp[self.iface.index].add_static(ipaddress.ip_address(ip).packed, PEER_MAC)
        self.stack.ndp[self.iface.index].add_static(ipaddress.ip_address(ip6).packed, PEER_MAC)
