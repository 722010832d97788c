"""Network interfaces of one virtual host: names, MACs, MTUs and addresses.

An `Interface` is what `ip addr` shows: index, name, MAC, flags, MTU and its
IPv4 and IPv6 addresses with prefix lengths. The loopback interface has no
MAC and no link layer. Every Ethernet interface gets an IPv6 link-local
address derived from its MAC (modified EUI-64, RFC 4291 §2.5.1) when it is
created. How frames leave an interface is not this module's business: the
stack sets `transmit` (wired by vnet to a NIC), and `offload` when that link
takes super-frames (`stack.wire.gso`). Touches nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Any

from .counters import InterfaceCounters

IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_RUNNING = 0x40
IFF_NOARP = 0x80
IFF_MULTICAST = 0x1000


class InterfaceFlags(IntFlag):
    """Linux's `IFF_*` values, so `getifaddrs` can pass them through unchanged."""

    UP = IFF_UP
    BROADCAST = IFF_BROADCAST
    LOOPBACK = IFF_LOOPBACK
    POINTOPOINT = IFF_POINTOPOINT
    RUNNING = IFF_RUNNING
    NOARP = IFF_NOARP
    MULTICAST = IFF_MULTICAST


@dataclass(frozen=True, slots=True)
class InterfaceAddress:
    """One address on an interface: raw bytes (4 or 16) and a prefix length.

    `network` and `broadcast` are computed once (they are read per packet).
    """

    address: bytes
    prefix_len: int
    network: bytes = field(init=False, compare=False, repr=False)
    broadcast: bytes | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "network", mask_address(self.address, self.prefix_len))
        broadcast = None
        if len(self.address) == 4 and self.prefix_len < 31:
            value = int.from_bytes(self.address, "big") | ((1 << (32 - self.prefix_len)) - 1)
            broadcast = value.to_bytes(4, "big")
        object.__setattr__(self, "broadcast", broadcast)

    @property
    def version(self) -> int:
        return 4 if len(self.address) == 4 else 6

    def contains(self, other: bytes) -> bool:
        return len(other) == len(self.address) and (
            mask_address(other, self.prefix_len) == self.network
        )

    def __str__(self) -> str:
        return f"{ipaddress.ip_address(self.address)}/{self.prefix_len}"

    @classmethod
    def parse(cls, text: str) -> InterfaceAddress:
        """'10.0.0.1/24' or 'fd00::1/64' (a bare address means /32 or /128)."""
        iface = ipaddress.ip_interface(text.strip())
        return cls(iface.ip.packed, iface.network.prefixlen)


def mask_address(address: bytes, prefix_len: int) -> bytes:
    bits = len(address) * 8
    value = int.from_bytes(address, "big")
    mask = ((1 << bits) - 1) ^ ((1 << (bits - prefix_len)) - 1) if prefix_len else 0
    return (value & mask).to_bytes(len(address), "big")


def link_local_from_mac(mac: bytes) -> bytes:
    """fe80::/64 with the modified EUI-64 interface identifier of a MAC."""
    eui = bytes((mac[0] ^ 0x02,)) + mac[1:3] + b"\xff\xfe" + mac[3:6]
    return b"\xfe\x80" + bytes(6) + eui


def solicited_node(address: bytes) -> bytes:
    """ff02::1:ffXX:XXXX for an IPv6 address (RFC 4291 §2.7.1)."""
    return bytes.fromhex("ff0200000000000000000001ff") + address[13:]


class Interface:
    """One network interface of a host: its name, link address, MTU, flags and addresses.

    `is_up` and `is_loopback` mirror `flags` as plain booleans (they are read per
    packet); `flags` is a property so that every assignment, from the stack or from
    outside it, keeps them in step — compiled (mypyc) code never calls ``__setattr__``.
    """

    def __init__(self, index: int, name: str, mac: bytes | None, mtu: int,
                 flags: InterfaceFlags) -> None:
        self.index = index
        self.name = name
        self.mac = mac  # None for loopback and point-to-point
        self.mtu = mtu
        self.is_loopback = False
        self.is_up = False
        self._flags = InterfaceFlags(0)
        self.flags = flags
        self.ipv4: list[InterfaceAddress] = []
        self.ipv6: list[InterfaceAddress] = []
        self.counters = InterfaceCounters()
        #: Hands a complete Ethernet frame to the link (set when a NIC is attached):
        #: ``bytes``, or a `stack.wire.gso.GsoFrame` when `offload` is set.
        self.transmit: Callable[[Any], None] | None = None
        #: The link takes super-frames (`stack.wire.gso.GsoFrame`): TCP super-segments up
        #: to 64 KiB and frames whose transport checksum is not computed (set by whoever
        #: wires the interface to a device that offloads, e.g. vnet's NIC with
        #: ``offload=True``).
        self.offload = False
        #: Multicast groups joined on this interface, with how many sockets joined each.
        self.groups: dict[bytes, int] = {}
        #: The far end of a point-to-point link for a local IPv4 address, where one was
        #: set (SIOCSIFDSTADDR, rtnetlink's IFA_ADDRESS): what `ip addr` shows as `peer`.
        self.peers: dict[bytes, bytes] = {}
        #: A broadcast address set for a local IPv4 address of an interface without
        #: IFF_BROADCAST (SIOCSIFBRDADDR on a TUN device): kept and reported, never used.
        self.broadcasts: dict[bytes, bytes] = {}

    @property
    def flags(self) -> InterfaceFlags:
        return self._flags

    @flags.setter
    def flags(self, flags: InterfaceFlags) -> None:
        self._flags = flags
        bits = int(flags)
        self.is_loopback = bool(bits & IFF_LOOPBACK)
        self.is_up = bool(bits & IFF_UP)

    def __repr__(self) -> str:
        return (f"Interface(index={self.index!r}, name={self.name!r}, mac={self.mac!r}, "
                f"mtu={self.mtu!r}, flags={self._flags!r}, ipv4={self.ipv4!r}, "
                f"ipv6={self.ipv6!r})")

    def addresses(self, version: int | None = None) -> list[InterfaceAddress]:
        if version == 4:
            return list(self.ipv4)
        if version == 6:
            return list(self.ipv6)
        return [*self.ipv4, *self.ipv6]

    def has_address(self, address: bytes) -> bool:
        pool = self.ipv4 if len(address) == 4 else self.ipv6
        return any(a.address == address for a in pool)

    def link_local_v6(self) -> bytes | None:
        for a in self.ipv6:
            if a.address[:2] == b"\xfe\x80":
                return a.address
        return None
