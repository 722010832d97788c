"""A DHCPv4 server as a sans-IO engine (RFC 2131 4.3; options of RFC 2132).

`DhcpServer.receive(now, message)` takes a message that arrived on the
server's port 67 on its interface and returns the `Reply` to send (or None);
the owner (`stack.dhcp.DhcpLayer`) sends it as the reply says (4.1:
unicast to ciaddr, else broadcast when the client asks for it or for a
NAK, else to yiaddr at the client's MAC). No clocks, sockets or timers: the
lease table expires lazily against the `now` it is given.

Allocation (4.3.1) is deterministic: the client's current or expired
binding, its fixed address (by MAC or host name), the address it asks for
if free, else the lowest free address of the range. An OFFER holds its
address for `OFFER_HOLD_NS`. REQUEST in SELECTING (server id present) must
name our id and the offered address; INIT-REBOOT, RENEWING and REBINDING
(no server id) are ACKed when the address is this client's, NAKed when it
is not ours to give (another client's, or outside the subnet), and ignored
while rebinding when we hold no record. RELEASE frees the binding; DECLINE
marks the address unusable for `DECLINE_HOLD_NS`; INFORM is ACKed with the
options only. Relayed messages (giaddr set) are not served (no relay).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from .wire import dhcp
from .wire.dhcp import DhcpMessage

__all__ = ["DhcpServer", "Reply"]

SECOND = 1_000_000_000
OFFER_HOLD_NS = 60 * SECOND
DECLINE_HOLD_NS = 600 * SECOND
BROADCAST = b"\xff\xff\xff\xff"


@dataclass
class Binding:
    mac: bytes
    address: bytes
    expires: int
    offered: bool  # an OFFER not yet REQUESTed


@dataclass(frozen=True)
class Reply:
    message: DhcpMessage
    #: Where to: an IPv4 address (BROADCAST for the limited broadcast).
    dst: bytes
    #: When `dst` is yiaddr of a client without an address: its MAC, no ARP.
    dst_mac: bytes | None = None


@dataclass
class DhcpServer:
    """A DHCP server for one subnet: see the module docstring."""

    server_id: bytes  # the address it answers from
    prefix_len: int
    first: bytes
    last: bytes
    lease_s: int = 3600
    routers: tuple[bytes, ...] = ()
    dns_servers: tuple[bytes, ...] = ()
    #: MAC (6 bytes) or lower-case host name -> fixed address
    fixed: dict[bytes | str, bytes] = field(default_factory=dict)
    bindings: dict[bytes, Binding] = field(default_factory=dict)  # by MAC
    declined: dict[bytes, int] = field(default_factory=dict)  # address -> until
    counters: dict[str, int] = field(default_factory=dict)

    def _count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    @property
    def _network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network((self.server_id, self.prefix_len), strict=False)

    def _in_subnet(self, address: bytes) -> bool:
        return ipaddress.IPv4Address(address) in self._network

    def _fixed_for(self, message: DhcpMessage) -> bytes | None:
        found = self.fixed.get(message.chaddr)
        if found is None and message.hostname:
            found = self.fixed.get(message.hostname.lower())
        return found

    def _holder(self, address: bytes, now: int) -> bytes | None:
        """The MAC the address is bound or offered to (not expired), else None."""
        for mac, binding in self.bindings.items():
            if binding.address == address and binding.expires > now:
                return mac
        return None

    def _free(self, address: bytes, mac: bytes, now: int) -> bool:
        if address == self.server_id or not self._in_subnet(address):
            return False
        if self.declined.get(address, 0) > now:
            return False
        if address in self.fixed.values() and self.fixed.get(mac) != address:
            return False
        holder = self._holder(address, now)
        return holder is None or holder == mac

    def _allocate(self, message: DhcpMessage, now: int) -> bytes | None:
        mac = message.chaddr
        fixed = self._fixed_for(message)
        if fixed is not None:
            holder = self._holder(fixed, now)
            return fixed if holder in (None, mac) else None
        current = self.bindings.get(mac)
        if current is not None and self._free(current.address, mac, now) and self._in_range(
                current.address):
            return current.address
        wanted = message.requested_ip
        if wanted is not None and self._in_range(wanted) and self._free(wanted, mac, now):
            return wanted
        first = int.from_bytes(self.first, "big")
        last = int.from_bytes(self.last, "big")
        for value in range(first, last + 1):
            address = value.to_bytes(4, "big")
            if self._free(address, mac, now):
                return address
        return None

    def _in_range(self, address: bytes) -> bool:
        return self.first <= address <= self.last or address in self.fixed.values()

    def _reply(self, request: DhcpMessage, kind: int, yiaddr: bytes = bytes(4),
               lease: bool = True) -> DhcpMessage:
        mask = ((1 << 32) - 1) ^ ((1 << (32 - self.prefix_len)) - 1)
        self._count(f"out_{dhcp.TYPE_NAMES[kind].lower()}")
        if kind == dhcp.NAK:
            return DhcpMessage(dhcp.OP_REPLY, request.xid, request.chaddr, kind,
                               flags=request.flags, giaddr=request.giaddr,
                               server_id=self.server_id, message="address not available")
        return DhcpMessage(dhcp.OP_REPLY, request.xid, request.chaddr, kind,
                           flags=request.flags, ciaddr=request.ciaddr, yiaddr=yiaddr,
                           giaddr=request.giaddr, server_id=self.server_id,
                           subnet_mask=mask.to_bytes(4, "big"), routers=self.routers,
                           dns_servers=self.dns_servers,
                           lease_time=self.lease_s if lease else None,
                           renewal_time=self.lease_s // 2 if lease else None,
                           rebinding_time=self.lease_s * 7 // 8 if lease else None)

    def _send(self, request: DhcpMessage, reply: DhcpMessage) -> Reply:
        """Where a reply goes (RFC 2131 4.1, no relay)."""
        if reply.message_type == dhcp.NAK:
            return Reply(reply, BROADCAST)
        if request.ciaddr != bytes(4):
            return Reply(reply, request.ciaddr)
        if request.broadcast:
            return Reply(reply, BROADCAST)
        return Reply(reply, reply.yiaddr, request.chaddr)

    def receive(self, now: int, message: DhcpMessage) -> Reply | None:
        if message.op != dhcp.OP_REQUEST:
            self._count("drop_not_request")
            return None
        if message.giaddr != bytes(4):
            self._count("drop_relayed")
            return None
        kind = message.message_type
        self._count(f"in_{dhcp.TYPE_NAMES.get(kind or 0, 'unknown').lower()}")
        mac = message.chaddr
        if kind == dhcp.DISCOVER:
            address = self._allocate(message, now)
            if address is None:
                self._count("pool_exhausted")
                return None
            self.bindings[mac] = Binding(mac, address, now + OFFER_HOLD_NS, offered=True)
            return self._send(message, self._reply(message, dhcp.OFFER, address))
        if kind == dhcp.REQUEST:
            return self._request(now, message)
        if kind == dhcp.RELEASE:
            binding = self.bindings.get(mac)
            if binding is not None and binding.address == message.ciaddr:
                binding.expires = now  # expired: the same client gets it back first
            return None
        if kind == dhcp.DECLINE:
            if message.requested_ip is not None:
                self.declined[message.requested_ip] = now + DECLINE_HOLD_NS
                binding = self.bindings.get(mac)
                if binding is not None and binding.address == message.requested_ip:
                    del self.bindings[mac]
            return None
        if kind == dhcp.INFORM:
            return Reply(self._reply(message, dhcp.ACK, lease=False), message.ciaddr
                         if message.ciaddr != bytes(4) else BROADCAST)
        self._count("drop_unexpected")
        return None

    def _request(self, now: int, message: DhcpMessage) -> Reply | None:
        mac = message.chaddr
        binding = self.bindings.get(mac)
        if message.server_id is not None:  # SELECTING
            if message.server_id != self.server_id:
                if binding is not None and binding.offered:
                    del self.bindings[mac]  # it chose another server
                return None
            if binding is None or message.requested_ip != binding.address or (
                    not self._free(binding.address, mac, now)):
                return self._send(message, self._reply(message, dhcp.NAK))
            return self._ack(now, message, binding.address)
        wanted = message.requested_ip if message.ciaddr == bytes(4) else message.ciaddr
        if wanted is None:
            self._count("drop_bad_request")
            return None
        if not self._in_subnet(wanted):
            return self._send(message, self._reply(message, dhcp.NAK))
        if binding is not None and binding.address == wanted and self._free(wanted, mac, now):
            return self._ack(now, message, wanted)
        if binding is None and message.ciaddr != bytes(4) and not message.broadcast:
            return None  # renewing with a server that has no record: stay silent
        if self._free(wanted, mac, now) and self._in_range(wanted) and (
                self._fixed_for(message) in (None, wanted)):
            return self._ack(now, message, wanted)
        return self._send(message, self._reply(message, dhcp.NAK))

    def _ack(self, now: int, message: DhcpMessage, address: bytes) -> Reply:
        self.bindings[message.chaddr] = Binding(message.chaddr, address,
                                                now + self.lease_s * SECOND, offered=False)
        return self._send(message, self._reply(message, dhcp.ACK, address))

    def leases(self, now: int) -> dict[bytes, bytes]:
        """MAC -> address of every binding that is ACKed and not expired."""
        return {mac: b.address for mac, b in self.bindings.items()
                if not b.offered and b.expires > now}
