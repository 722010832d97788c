"""A guest's TUN/TAP device: an interface of a virtual host whose other end is a guest fd.

    guest                         |  its virtual host's stack
    ----------------------------  |  ------------------------------------------
    read(fd)  <── receive queue <─┼── tun0 transmit (routing, OUTPUT/POSTROUTING,
                  (500 packets)   |        FORWARD when the host forwards)
    write(fd) ────────────────────┼──> tun0 receive (PREROUTING, INPUT or FORWARD)

A `GuestTunDevice` is what Linux's tun driver is for one attached fd. A TUN
device is a point-to-point interface without link layer (Linux's flags:
POINTOPOINT | NOARP | MULTICAST, raw IP packets); a TAP device is an Ethernet
interface with its own MAC, so ARP and NDP run over it. What the guest writes
enters the stack as if it had arrived on the interface — the firewall's
PREROUTING and INPUT hooks, or FORWARD and routing to another interface when
the host forwards; what the stack sends out of the interface waits in a
bounded receive queue (`TX_QUEUE_LEN`, Linux's txqueuelen 500 for tun/tap)
until the guest reads it. A packet that finds the queue full is dropped and
counted (`iface.counters.tx_dropped["queue_full"]`), as the tun driver counts
tx drops. The stack's interface counters count what crossed the device both
ways; writes refused with an errno (below) are counted in
`iface.counters.rx_dropped` under the reason.

`GuestDeviceGrant` is the capability: the device a guest may create (name,
kind) and how its host configures it when it appears (addresses, MTU, routes
through it). The device comes up configured, as `ip addr add … ; ip link set
up` would leave it; it is removed when its fd closes (no persistence).

Captures: every capture of the network (made before the device or since) gets
an interface HOST/NAME (raw IP for TUN, Ethernet for TAP) recording both
directions as a NIC's taps do: inbound what the guest wrote, outbound what it
was handed (a packet dropped because the queue was full is not recorded).

May touch: the host's stack (add/remove the interface, receive packets),
the network's captures and the scheduler's clock; no guest memory.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stack.interface import Interface, InterfaceFlags
from stack.wire.gso import GsoFrame
from vnet.link.capture import LINKTYPE_ETHERNET, LINKTYPE_RAW, CaptureTap, Direction
from vnet.link.host_bridge import HostBridge, bridge_for

if TYPE_CHECKING:
    from vnet.network import Host

__all__ = [
    "IFF_NOARP",
    "TX_QUEUE_LEN",
    "DeviceWriteError",
    "GuestDeviceGrant",
    "GuestTunDevice",
    "parse_guest_tun",
]

#: Linux's default txqueuelen for tun and tap devices: packets waiting for the reader.
TX_QUEUE_LEN = 500
#: Linux's IFF_NOARP (the stack's InterfaceFlags has no name for it).
IFF_NOARP = 0x80
#: The longest packet (or frame) one write may carry: an IP datagram's limit plus
#: the packet-information header and an Ethernet header.
MAX_WRITE = 65535 + 4 + 14
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_HLEN = 14
_PI = struct.Struct("=HH")  # struct tun_pi: flags (host order), proto (network order)
TUN_PKT_STRIP = 0x0001
_NAME_OK = re.compile(r"^[^/:\s]{1,15}$")


class DeviceWriteError(Exception):
    """A write the device refuses; `errno_name` is the Linux errno's name."""

    def __init__(self, errno_name: str) -> None:
        super().__init__(errno_name)
        self.errno_name = errno_name


@dataclass(frozen=True)
class GuestDeviceGrant:
    """A TUN/TAP device a guest may create, and how its host configures it.

    `kind` is "tun" or "tap"; `addresses` are CIDRs given to the interface
    when it appears (with their on-link routes), `routes` prefixes routed
    through it, `mtu` its MTU.
    """

    name: str
    kind: str = "tun"
    addresses: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    mtu: int = 1500

    def __post_init__(self) -> None:
        if not _NAME_OK.match(self.name) or self.name in (".", ".."):
            raise ValueError(f"device name {self.name!r}: 1 to 15 characters, no '/', ':' "
                             "or white space (Linux's rules)")
        if self.kind not in ("tun", "tap"):
            raise ValueError(f"device {self.name}: kind {self.kind!r} is neither tun nor tap")
        if not 68 <= self.mtu <= 65535:
            raise ValueError(f"device {self.name}: MTU {self.mtu} is not within 68..65535")
        object.__setattr__(self, "addresses", tuple(self.addresses))
        object.__setattr__(self, "routes", tuple(self.routes))
        for text in (*self.addresses, *self.routes):
            try:
                ipaddress.ip_interface(text)
            except ValueError:
                raise ValueError(f"device {self.name}: {text!r} is not an address/prefix "
                                 "(CIDR)") from None


def parse_guest_tun(spec: str) -> GuestDeviceGrant:
    """`NAME[:tun|tap][=CIDR,...]`, as `vnet run --guest-tun` takes it; ValueError if bad."""
    head, _, cidrs = spec.partition("=")
    name, _, kind = head.partition(":")
    addresses = tuple(c.strip() for c in cidrs.split(",") if c.strip())
    return GuestDeviceGrant(name.strip(), (kind or "tun").strip(), addresses)


@dataclass
class GuestTunDevice:
    """One TUN or TAP interface on a host, attached to one guest fd.

    `packet_info` is the opposite of IFF_NO_PI: each packet read or written
    starts with the 4-byte `struct tun_pi`.
    """

    host: Host
    grant: GuestDeviceGrant
    name: str
    packet_info: bool = False
    iface: Interface = field(init=False)
    queue: deque[bytes] = field(init=False, default_factory=deque)
    closed: bool = field(init=False, default=False)
    taps: list[CaptureTap] = field(init=False, default_factory=list)
    _tapped: int = field(init=False, default=0)
    #: Set when the TAP device is a port of a `vnet.link.host_bridge.HostBridge`: what the
    #: guest writes goes to the bridge instead of the host's stack.
    ingress: Callable[[bytes], None] | None = field(init=False, default=None)
    bridge: HostBridge | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        """Create the interface (caller holds the network lock, inside a turn)."""
        host = self.host
        stack = host.stack
        if self.grant.kind == "tap":
            iface = stack.add_interface(self.name, host.network.allocate_mac(), self.grant.mtu)
        else:
            iface = stack.add_point_to_point(self.name, self.grant.mtu)
            iface.flags = iface.flags | InterfaceFlags(IFF_NOARP)
        iface.transmit = self._from_stack
        iface.offload = False  # the guest reads wire packets, never super-frames
        self.iface = iface
        bridge = bridge_for(host, self.name) if self.is_tap else None
        if bridge is not None:  # a bridge port: no addresses, frames to and from the bridge
            for address in list(iface.addresses()):
                stack.remove_address(self.name, address)
            iface.transmit = None
            self.bridge = bridge
            self.ingress = bridge.attach_tap(self)
        for cidr in self.grant.addresses:
            stack.add_address(self.name, cidr)
        for prefix in self.grant.routes:
            stack.add_route(prefix, ifname=self.name)
        self._tapped = 0
        self._current_taps()

    def _current_taps(self) -> list[CaptureTap]:
        """The taps of every capture of the network, including captures made since."""
        captures = self.host.network.captures
        if len(captures) != self._tapped:
            linktype = LINKTYPE_ETHERNET if self.is_tap else LINKTYPE_RAW
            clock = self.host.network.scheduler.realtime_ns
            for capture in captures[self._tapped:]:
                self.taps.append(capture.interface(f"{self.host.name}/{self.name}", linktype,
                                                   clock=clock))
            self._tapped = len(captures)
        return self.taps

    @property
    def is_tap(self) -> bool:
        return self.grant.kind == "tap"

    # --- the stack sends: into the receive queue -----------------------------
    def _from_stack(self, packet: bytes | GsoFrame) -> None:
        if isinstance(packet, GsoFrame):
            for wire in packet.materialise():
                self._from_stack(bytes(wire))
            return
        self.enqueue(packet)

    def enqueue(self, packet: bytes | memoryview) -> None:
        """Queue one packet or frame for the guest to read (drop and count when full)."""
        if self.closed:
            return
        if len(self.queue) >= TX_QUEUE_LEN:
            self.iface.counters.tx_dropped["queue_full"] += 1
            return
        data = bytes(packet)
        self.queue.append(data)
        for tap in self._current_taps():
            tap.record(data, Direction.OUTBOUND)
        self.host.stack.driver.wake()

    # --- the guest reads ----------------------------------------------------------
    def readable(self) -> int:
        """Bytes the next read returns in full (0: nothing queued)."""
        if not self.queue:
            return 0
        return len(self.queue[0]) + (_PI.size if self.packet_info else 0)

    def read(self, size: int) -> bytes | None:
        """The next packet, cut to `size` bytes (the rest is lost, as Linux); None if none.

        With packet information, a buffer shorter than the header is
        DeviceWriteError("EINVAL") (and the packet is dropped, as Linux's
        tun_do_read drops it), and one shorter than the packet sets
        TUN_PKT_STRIP in the header.
        """
        if not self.queue:
            return None
        packet = self.queue.popleft()
        if self.packet_info and size < _PI.size:
            raise DeviceWriteError("EINVAL")  # the packet is lost, as on Linux
        if not self.packet_info:
            return packet[:size]
        if self.is_tap:
            proto = int.from_bytes(packet[12:14], "big") if len(packet) >= ETH_HLEN else 0
        else:
            proto = ETH_P_IPV6 if packet and packet[0] >> 4 == 6 else ETH_P_IP
        flags = TUN_PKT_STRIP if size < _PI.size + len(packet) else 0
        header = _PI.pack(flags, 0)[:2] + proto.to_bytes(2, "big")  # proto: network order
        return (header + packet)[:size]

    # --- the guest writes: into the stack --------------------------------------
    def write(self, data: bytes) -> int:
        """One packet (TUN) or frame (TAP) from the guest; its length, or DeviceWriteError.

        Linux's rules: an empty write (or one shorter than the packet
        information header, or than an Ethernet header on TAP) and, without
        packet information, a TUN packet whose first nibble is neither 4 nor 6
        are EINVAL; a device that is down is EIO. Everything else is accepted
        and judged by the stack, which counts what it drops.
        """
        counters = self.iface.counters
        size = len(data)
        if size == 0 or size > MAX_WRITE or (self.packet_info and size < _PI.size):
            counters.rx_dropped["bad_length"] += 1
            raise DeviceWriteError("EINVAL")
        if not self.iface.is_up:
            counters.rx_dropped["down"] += 1
            raise DeviceWriteError("EIO")
        proto = 0
        payload = data
        if self.packet_info:
            proto = int.from_bytes(data[2:4], "big")
            payload = data[_PI.size:]
        stack = self.host.stack
        if self.is_tap:
            if len(payload) < ETH_HLEN:
                counters.rx_dropped["runt"] += 1
                raise DeviceWriteError("EINVAL")
            self._record_in(payload)
            if self.ingress is not None:
                self.ingress(payload)
            else:
                stack.receive_frame(self.iface, payload)
            return size
        if not self.packet_info:
            version = payload[0] >> 4
            if version not in (4, 6):
                counters.rx_dropped["bad_version"] += 1
                raise DeviceWriteError("EINVAL")
        elif proto not in (ETH_P_IP, ETH_P_IPV6) or not payload:
            counters.rx_dropped["unknown_protocol"] += 1
            return size
        self._record_in(payload)
        stack.receive_packet(self.iface, payload)
        return size

    def _record_in(self, packet: bytes) -> None:
        for tap in self._current_taps():
            tap.record(packet, Direction.INBOUND)

    # --- lifetime --------------------------------------------------------------------
    def close(self) -> None:
        """Remove the interface, its addresses and routes (caller holds the network lock)."""
        if self.closed:
            return
        self.closed = True
        self.queue.clear()
        if self.bridge is not None:
            self.bridge.detach_tap(self.name)
        stack = self.host.stack
        iface = self.iface
        iface.transmit = None
        iface.flags = InterfaceFlags(int(iface.flags) & ~(InterfaceFlags.UP
                                                          | InterfaceFlags.RUNNING))
        for address in list(iface.addresses()):
            stack.remove_address(self.name, address)
        stack.routes.remove_where(ifindex=iface.index)
        stack.interfaces.pop(iface.index, None)
        stack.neighbors.arp.pop(iface.index, None)
        stack.neighbors.ndp.pop(iface.index, None)
        stack.generation += 1
