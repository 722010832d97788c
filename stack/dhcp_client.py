"""A DHCPv4 client as a sans-IO state machine (RFC 2131 4.4).

No clocks, sockets or timers here: the owner (`stack.dhcp.DhcpLayer`) feeds
the time, received messages and timer expiries, and carries out the actions
returned -- `Transmit` (send a message, broadcast from 0.0.0.0 or unicast to
the server from the leased address), `Bind` (install the lease: address,
gateway, resolvers) and `Unbind` (remove it).

Theory of operation (RFC 2131 figure 5)
---------------------------------------
INIT: broadcast DISCOVER, go to SELECTING. SELECTING: the first OFFER wins
(REQUEST broadcast with its server id and address), REQUESTING. REQUESTING:
ACK -> BOUND (Bind), NAK -> INIT after a short pause. BOUND: at T1 (option 58,
default half the lease) RENEWING: REQUEST unicast to the server with ciaddr
set; at T2 (option 59, default 7/8 of the lease) REBINDING: the same
broadcast; an ACK in either returns to BOUND with the new times, a NAK or the
lease running out ends it (Unbind) and starts over in INIT. Retransmission
(4.1): DISCOVER and REQUEST are repeated after 4, 8, 16, 32, 64, 64 ... s, each
moved by a uniform -1..+1 s from the owner's generator; in RENEWING and
REBINDING after half the time left to T2 (resp. the lease end), at least 60 s.
Every client message sets the broadcast flag, so replies reach a client
that has no address yet through the limited broadcast.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .wire import dhcp
from .wire.dhcp import DhcpMessage

__all__ = ["Bind", "DhcpClient", "Lease", "Transmit", "Unbind"]

INIT = "INIT"
SELECTING = "SELECTING"
REQUESTING = "REQUESTING"
BOUND = "BOUND"
RENEWING = "RENEWING"
REBINDING = "REBINDING"

SECOND = 1_000_000_000
FIRST_RETRANSMIT_NS = 4 * SECOND
MAX_RETRANSMIT_NS = 64 * SECOND
MIN_RENEW_RETRANSMIT_NS = 60 * SECOND
NAK_PAUSE_NS = 1 * SECOND
PARAMETERS = bytes((dhcp.OPT_SUBNET_MASK, dhcp.OPT_ROUTER, dhcp.OPT_DNS,
                    dhcp.OPT_LEASE_TIME, dhcp.OPT_RENEWAL_TIME, dhcp.OPT_REBINDING_TIME))


@dataclass(frozen=True)
class Lease:
    """What a server granted: times are absolute (ns), as the client received the ACK."""

    address: bytes
    prefix_len: int
    server: bytes
    routers: tuple[bytes, ...]
    dns_servers: tuple[bytes, ...]
    lease_s: int
    bound_ns: int
    renew_ns: int
    rebind_ns: int
    expire_ns: int


@dataclass(frozen=True)
class Transmit:
    message: DhcpMessage
    #: None: broadcast from 0.0.0.0 (or from the lease's address when rebinding);
    #: else unicast to this server address from the lease's address.
    unicast_to: bytes | None = None


@dataclass(frozen=True)
class Bind:
    lease: Lease
    renewed: bool = False  # the same address again: only times (and options) changed


@dataclass(frozen=True)
class Unbind:
    lease: Lease


Action = Transmit | Bind | Unbind


def _prefix_len(mask: bytes | None) -> int | None:
    if mask is None:
        return None
    value = int.from_bytes(mask, "big")
    length = bin(value).count("1")
    if value != ((1 << 32) - 1) ^ ((1 << (32 - length)) - 1):
        return None  # not contiguous
    return length


@dataclass
class DhcpClient:
    """One interface's DHCP client: see the module docstring."""

    mac: bytes
    rng: random.Random
    hostname: str | None = None
    state: str = INIT
    lease: Lease | None = None
    xid: int = 0
    #: Counted events: messages in and out by type, drops by reason.
    counters: dict[str, int] = field(default_factory=dict)
    _deadline: int | None = None
    _interval: int = FIRST_RETRANSMIT_NS
    _started: int = 0
    _offer: DhcpMessage | None = None

    def _count(self, key: str) -> None:
        self.counters[key] = self.counters.get(key, 0) + 1

    def next_deadline(self) -> int | None:
        return self._deadline

    def start(self, now: int) -> list[Action]:
        """Begin in INIT (also: start over)."""
        self.state = INIT
        self._offer = None
        return self._discover(now)

    def _jitter(self) -> int:
        return int((self.rng.random() * 2 - 1) * SECOND)

    def _message(self, message_type: int, now: int, **fields: object) -> DhcpMessage:
        secs = min(0xFFFF, (now - self._started) // SECOND)
        self._count(f"out_{dhcp.TYPE_NAMES[message_type].lower()}")
        return DhcpMessage(dhcp.OP_REQUEST, self.xid, self.mac, message_type, secs=secs,
                           flags=dhcp.FLAG_BROADCAST, parameter_list=PARAMETERS,
                           hostname=self.hostname, client_id=b"\x01" + self.mac,
                           **fields)  # type: ignore[arg-type]

    def _discover(self, now: int) -> list[Action]:
        self.xid = self.rng.getrandbits(32)
        self._started = now
        self.state = SELECTING
        self._interval = FIRST_RETRANSMIT_NS
        self._deadline = now + self._interval + self._jitter()
        return [Transmit(self._message(dhcp.DISCOVER, now))]

    def _request_selected(self, now: int) -> list[Action]:
        offer = self._offer
        assert offer is not None
        return [Transmit(self._message(dhcp.REQUEST, now, server_id=offer.server_id,
                                       requested_ip=offer.yiaddr))]

    def _request_renew(self, now: int) -> list[Action]:
        lease = self.lease
        assert lease is not None
        message = self._message(dhcp.REQUEST, now, ciaddr=lease.address)
        return [Transmit(message, lease.server if self.state == RENEWING else None)]

    def receive(self, now: int, message: DhcpMessage) -> list[Action]:
        """A message for port 68 on this client's interface."""
        if message.op != dhcp.OP_REPLY or message.xid != self.xid or message.chaddr != self.mac:
            self._count("drop_not_ours")
            return []
        kind = message.message_type
        self._count(f"in_{dhcp.TYPE_NAMES.get(kind or 0, 'unknown').lower()}")
        if self.state == SELECTING and kind == dhcp.OFFER:
            if message.server_id is None or message.yiaddr == bytes(4):
                self._count("drop_bad_offer")
                return []
            self._offer = message
            self.state = REQUESTING
            self._interval = FIRST_RETRANSMIT_NS
            self._deadline = now + self._interval + self._jitter()
            return self._request_selected(now)
        if self.state in (REQUESTING, RENEWING, REBINDING) and kind == dhcp.ACK:
            return self._bound(now, message)
        if self.state in (REQUESTING, RENEWING, REBINDING) and kind == dhcp.NAK:
            if self.state == REQUESTING and self._offer is not None and (
                    message.server_id not in (None, self._offer.server_id)):
                self._count("drop_nak_other_server")
                return []
            actions: list[Action] = [Unbind(self.lease)] if self.lease is not None else []
            self.lease = None
            self.state = INIT
            self._deadline = now + NAK_PAUSE_NS
            return actions
        self._count("drop_unexpected")
        return []

    def _bound(self, now: int, ack: DhcpMessage) -> list[Action]:
        server = ack.server_id or (self.lease.server if self.lease else None) or (
            self._offer.server_id if self._offer else None)
        prefix_len = _prefix_len(ack.subnet_mask)
        if ack.yiaddr == bytes(4) or server is None:
            self._count("drop_bad_ack")
            return []
        if prefix_len is None:  # RFC 2132: a server should send it; assume the class mask
            first = ack.yiaddr[0]
            prefix_len = 8 if first < 128 else 16 if first < 192 else 24
        lease_s = ack.lease_time if ack.lease_time is not None else 3600
        infinite = lease_s == 0xFFFFFFFF
        renew_s = ack.renewal_time if ack.renewal_time is not None else lease_s // 2
        rebind_s = ack.rebinding_time if ack.rebinding_time is not None else lease_s * 7 // 8
        start = now
        lease = Lease(ack.yiaddr, prefix_len, server, ack.routers, ack.dns_servers, lease_s,
                      start, start + renew_s * SECOND, start + rebind_s * SECOND,
                      start + lease_s * SECOND)
        previous = self.lease
        actions: list[Action] = []
        if previous is not None and (previous.address, previous.prefix_len) != (
                lease.address, lease.prefix_len):
            actions.append(Unbind(previous))
            previous = None
        self.lease = lease
        self.state = BOUND
        self._offer = None
        self._deadline = None if infinite else lease.renew_ns
        actions.append(Bind(lease, renewed=previous is not None))
        return actions

    def on_timer(self, now: int) -> list[Action]:
        """The deadline passed: retransmit, renew, rebind or give the lease up."""
        if self._deadline is None or now < self._deadline:
            return []
        state = self.state
        if state == INIT:
            return self._discover(now)
        if state in (SELECTING, REQUESTING):
            self._interval = min(self._interval * 2, MAX_RETRANSMIT_NS)
            self._deadline = now + self._interval + self._jitter()
            self._count("retransmit")
            if state == SELECTING:
                return [Transmit(self._message(dhcp.DISCOVER, now))]
            return self._request_selected(now)
        lease = self.lease
        assert lease is not None
        if now >= lease.expire_ns:
            self.lease = None
            self.state = INIT
            self._count("expired")
            return [Unbind(lease), *self._discover(now)]
        if state == BOUND or (state == RENEWING and now >= lease.rebind_ns):
            self.state = RENEWING if now < lease.rebind_ns else REBINDING
            self._started = now
        end = lease.rebind_ns if self.state == RENEWING else lease.expire_ns
        self._deadline = min(end, now + max(MIN_RENEW_RETRANSMIT_NS, (end - now) // 2))
        if self._deadline <= now:
            self._deadline = end
        return self._request_renew(now)

    def release(self, now: int) -> list[Action]:
        """Give the lease back (RELEASE, unicast to the server) and stop."""
        lease = self.lease
        self._deadline = None
        self.state = INIT
        self.lease = None
        if lease is None:
            return []
        message = self._message(dhcp.RELEASE, now, ciaddr=lease.address,
                                server_id=lease.server)
        return [Transmit(DhcpMessage(message.op, self.rng.getrandbits(32), self.mac,
                                     dhcp.RELEASE, ciaddr=lease.address,
                                     server_id=lease.server, client_id=message.client_id),
                         lease.server), Unbind(lease)]
