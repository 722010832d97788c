"""UDP: sockets, port binding and datagram demultiplexing, as Linux does them.

Theory of operation
-------------------
`UdpLayer` is the stack's transport for protocol 17. It owns the port table
(port → sockets bound to it, in bind order), the ephemeral port range and
the buffer limits (`ephemeral_range`, `rmem_max`, `wmem_max`: per host, like
Linux's per-namespace sysctls). `tests/stack/test_udp_vs_linux.py` runs the
same socket scenarios on this module and on the Linux kernel and compares
every outcome; the rules below are the kernel's.

Binding. Two sockets conflict when their local addresses overlap — Linux's
`inet_rcv_saddr_equal`: equal, or either a wildcard; an AF_INET6 socket
bound to `::` covers IPv4 unless IPV6_V6ONLY, one bound to `::ffff:0.0.0.0`
is the IPv4 wildcard, one on a plain IPv6 address stands for 127.0.0.6 to
IPv4 (which only matters when it got that address by connecting: binding it
sets IPV6_V6ONLY, as Linux does) — unless both set SO_REUSEADDR or both
SO_REUSEPORT, or they are bound to different devices. Port 0 picks a free
port from `ephemeral_range` (EADDRINUSE when none is free); so do connect()
and the first send of an unbound socket, before anything else (EAGAIN when
none is free). IPv4 addresses that may be bound: the wildcard, the host's
own (all of 127/8), broadcast and multicast addresses; anything else is
EADDRNOTAVAIL, checked before a second bind's EINVAL. IPv6: the wildcard,
the host's own, multicast, and the IPv4-mapped forms of the IPv4 rules
(EINVAL on a V6ONLY socket); link-local and link/interface-scoped
multicast need a scope id or a bound device (EINVAL). close() gives the
port and the memberships back; so does disconnect() (connect(AF_UNSPEC))
for what bind() did not ask for.

Sending. The destination `0.0.0.0` / `::` means this host (loopback);
IPv4-mapped destinations go out as IPv4 (ENETUNREACH on a V6ONLY socket,
EAFNOSUPPORT from a socket whose source is IPv4-mapped to a plain IPv6
destination); then the route (ENETUNREACH; EINVAL for a loopback source
leaving the host), the broadcast permission (EACCES without SO_BROADCAST,
for connect() too), the size limit (EMSGSIZE past 65507 bytes over IPv4,
65527 over IPv6) and only then a pending ICMP error (ECONNREFUSED …) or
SHUT_WR (EPIPE) — the order Linux checks them in. connect() fixes a
wildcard local address to the route's source. Datagrams go out as with
Linux's default IP_PMTUDISC_WANT (`HostStack.send_ipv4`/`send_ipv6` with
`path_mtu_discovery`): fragmented at the source to the path MTU the host
learned from ICMP, and over IPv4 with DF when they fit it; a connected
socket gets the ICMP error itself as EMSGSIZE on its next call. IPv4 options (IP_TTL,
IP_MULTICAST_*, memberships) and IPv6 ones (IPV6_UNICAST_HOPS,
IPV6_MULTICAST_*) are kept apart even on one AF_INET6 socket: each applies
to its own family's traffic.

Receiving. Unicast goes to the best-scoring socket (Linux's compute_score
with its exact-address-before-wildcard lookup: bound to the destination
address over a wildcard, connected to the source over not, a bound device,
AF_INET over AF_INET6 for IPv4); ties go to the SO_REUSEPORT group by a
hash of the source, otherwise to the most recently bound socket. Multicast
and broadcast go to every matching socket: bound to the wildcard or to the
destination itself, and for multicast a socket that joined the group on the
arriving interface, or any socket when IP_MULTICAST_ALL (IPv4; Linux turns
it on for AF_INET sockets only) / IPV6_MULTICAST_ALL (on) says so. A
datagram the host sent to one of its own addresses counts as arriving on
the device that owns the address (for SO_BINDTODEVICE), as on Linux. A
connected socket's receive filter is its peer, and a pending error (ICMP
port unreachable → ECONNREFUSED, only for connected sockets) is reported
before queued data.

Receive queues count each datagram's skb truesize as Linux 6.x on x86_64
charges it for locally generated traffic (`truesize`), against SO_RCVBUF;
a datagram that does not fit is dropped and counted
(`udp.drop.queue_full`, and the socket's `drops`), except that an empty
queue takes any datagram.

Socket operations never block: one that cannot proceed raises
BlockingIOError, and errors are OSError with Linux errno values, like the
standard library's sockets. Callers (the scripted-host API and the guest
ABI) do the waiting. Deliberate differences: after SHUT_RD an empty queue
reads as end of file (b"") — what a blocking recv gets on Linux, where a
non-blocking one gets EAGAIN — so a waiting caller is not spun forever; and
joining a group with no interface given and no route to the group uses the
interface `HostStack.route_output` sends the group out of (Linux: ENODEV),
because virtual LANs rarely have a default route. Touches only the stack
it belongs to.
"""

from __future__ import annotations

import errno
import socket as _socket
import struct
import zlib
from collections import deque
from typing import TYPE_CHECKING

from . import ancillary, sockopt
from .ancillary import Arrival
from .ip import (
    ANY_V4,
    LOOPBACK_V4,
    LOOPBACK_V6,
    UNSPECIFIED_V6,
    is_multicast,
    is_v4_mapped,
    to_v4_mapped,
    unmap_v4,
)
from .oserror import os_error
from .socket import Socket, SocketReadiness
from .socket_memory import SocketMemory
from .wire import udp as wire_udp
from .wire.errors import WireError

if TYPE_CHECKING:
    from .host import HostStack, IpMeta, OutputRoute

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
_UDP_HEADER: struct.Struct = wire_udp.HEADER_STRUCT

EPHEMERAL_RANGE = (32768, 60999)  # Linux net.ipv4.ip_local_port_range
DEFAULT_RCVBUF = 212992  # Linux net.core.rmem_default
DEFAULT_SNDBUF = 212992  # Linux net.core.wmem_default
RMEM_MAX = 212992  # Linux net.core.rmem_max (default): SO_RCVBUF's cap before doubling
WMEM_MAX = 212992  # Linux net.core.wmem_max
MAX_PAYLOAD_V4 = 65535 - 20 - 8
MAX_PAYLOAD_V6 = 65535 - 8
MAX_MEMBERSHIPS_V4 = 20  # Linux net.ipv4.igmp_max_memberships

LOOPBACK4_IPV6 = bytes((127, 0, 0, 6))

# what poll_read says of a socket with nothing queued (immutable: shared, not rebuilt
# on every poll)
_READABLE = SocketReadiness(True)
_NOT_READABLE = SocketReadiness(False)
#: Readable with a datagram of n bytes first, by n (frozen values, so shared; a frozen
#: dataclass costs over a microsecond to build, on every poll of a socket with data).
_READABLE_BY_SIZE: dict[int, SocketReadiness] = {}
_READABLE_BY_SIZE_MAX = 2048


def _readable_with(nbytes: int) -> SocketReadiness:
    readiness = _READABLE_BY_SIZE.get(nbytes)
    if readiness is None:
        readiness = SocketReadiness(True, nbytes)
        if len(_READABLE_BY_SIZE) >= _READABLE_BY_SIZE_MAX:
            _READABLE_BY_SIZE.clear()
        _READABLE_BY_SIZE[nbytes] = readiness
    return readiness


BROADCAST4 = b"\xff" * 4

# skb truesize of a datagram the host sent itself, by payload length: Linux
# 6.x on x86_64 puts it in one kmalloc'd head (these bucket sizes plus struct
# sk_buff) up to ~16 KB, and past that in page fragments (length + 832).
# Measured over loopback; the queue accounting charges exactly this.
_TRUESIZE = {
    4: ((197, 832), (645, 1280), (1669, 2304), (3717, 4352), (7818, 8448), (16008, 16640)),
    6: ((184, 832), (632, 1280), (1656, 2304), (3704, 4352), (7800, 8448), (15991, 16640)),
}


def truesize(length: int, version: int) -> int:
    """What a datagram of `length` payload bytes costs a receive queue (see above)."""
    for limit, size in _TRUESIZE[version]:
        if length <= limit:
            return size
    return length + 832







class UdpFlow:
    """One socket's unicast route to its last destination, and how datagrams take it.

    `key` is everything the route depended on (`UdpLayer.route`). The flow
    also knows (`offload`) whether a datagram that fits the link MTU leaves
    checksum-partial as one `GsoFrame` with DF set -- what `UdpLayer.send`'s
    general path decides per datagram: the interface offloads, no OUTPUT or
    POSTROUTING hook, and the path MTU cache knows nothing of the destination
    (so the path MTU is the link's, and DF is not locked off) -- while the hooks
    and the path MTU cache are unchanged (their generations: only a new report
    can make the cache say something of a destination it knew nothing of).
    Such a datagram goes straight to `Ipv4Layer.send_offloaded` (IPv6:
    `Ipv6Layer.send`), with exactly the arguments the general path would have
    given it; any other datagram takes the general path."""

    __slots__ = ("hooks_generation", "key", "offload", "overhead", "path_mtu_generation",
                 "rt")

    def __init__(self, key: tuple[object, ...], rt: OutputRoute) -> None:
        self.key = key
        self.rt = rt
        #: IP and UDP header bytes: what a datagram adds to its payload on the link.
        self.overhead = 28 if len(rt.dst) == 4 else 48
        self.hooks_generation = -1
        self.path_mtu_generation = -1
        self.offload = False

    def settle_offload(self, stack: HostStack) -> None:
        """Decide `offload` again for the hooks and path MTUs the host has now."""
        rt = self.rt
        self.hooks_generation = stack.hooks.generation
        self.path_mtu_generation = stack.path_mtus.generation
        now = stack.driver.now_ns()
        unbounded = 1 << 32  # a link MTU no report can be above: the cache's answer is it
        self.offload = (stack.offload_output(rt.iface)
                        and stack.path_mtus.mtu(rt.dst, unbounded, now) == unbounded
                        and stack.path_mtus.allows_df(rt.dst, now))


def needs_scope_id(addr: bytes) -> bool:
    """Link-local unicast, or interface/link-scoped multicast (Linux __ipv6_addr_needs_scope_id)."""
    if addr[0] == 0xFE and addr[1] & 0xC0 == 0x80:
        return True
    return addr[0] == 0xFF and addr[1] & 0x0F in (1, 2)


class UdpSocket(Socket):
    """One UDP socket (AF_INET or AF_INET6). Non-blocking; errors as OSError."""

    kind = "udp"
    type: int = _socket.SOCK_DGRAM
    proto = _socket.IPPROTO_UDP

    def __init__(self, layer: UdpLayer, family: int) -> None:
        if family not in (AF_INET, AF_INET6):
            raise os_error(errno.EAFNOSUPPORT)
        self.layer = layer
        self.family = family
        self.local_addr: bytes | None = None  # family-sized; None until first bound
        self.local_port = 0  # 0: not bound (not in the port table)
        self.addr_locked = False  # bind() gave an address (Linux SOCK_BINDADDR_LOCK)
        self.port_locked = False  # bind() gave a port (SOCK_BINDPORT_LOCK)
        self.remote: tuple[bytes, int] | None = None
        # data, source address, source port, ifindex, truesize charged, and what
        # recvmsg's control messages need (only while recv_ancillary asks for any)
        self.queue: deque[tuple[bytes, bytes, int, int, int, Arrival | None]] = deque()
        #: stack.ancillary bits: IP_PKTINFO, IPV6_RECVPKTINFO, SO_TIMESTAMP … (0: none)
        self.recv_ancillary = 0
        self.queued_bytes = 0
        self.memory: SocketMemory = layer.stack.socket_memory  # a guest's, once it owns us
        self.rcvbuf = DEFAULT_RCVBUF
        self.sndbuf = DEFAULT_SNDBUF
        self.reuseaddr = False
        self.reuseport = False
        self.broadcast = False
        self.v6only = False
        # IPv4 traffic (of an AF_INET socket, or the IPv4-mapped traffic of an AF_INET6 one)
        self.ttl: int | None = None  # IP_TTL; None: the host default
        self.tos = 0
        self.multicast_ttl = 1
        self.multicast_loop = True
        self.multicast_if: int | None = None  # IP_MULTICAST_IF: ifindex
        self.multicast_if_addr: bytes | None = None  # … and address
        self.multicast_all = family == AF_INET  # Linux sets MC_ALL in inet_create only
        # IPv6 traffic
        self.hop_limit: int | None = None  # IPV6_UNICAST_HOPS; None: the host default
        self.tclass = 0
        self.multicast_hops = 1
        self.multicast_loop6 = True
        self.multicast_if6: int | None = None
        self.multicast_all6 = True
        self.bound_device: int | None = None
        self.device_locked = False  # SO_BINDTODEVICE (survives disconnect)
        self.stored_options: dict[tuple[int, int], int] = {}  # kept, reported, no effect
        # (ifindex, group) -> the interface address given when joining (IPv4; b"" for IPv6),
        # in join order
        self.memberships: dict[tuple[int, bytes], bytes] = {}
        self.pending_error = 0
        self.shut_rd = False
        self.shut_wr = False
        self.closed = False
        self.drops = 0
        self.bind_seq = 0
        #: The per-flow fast path: the last unicast route and what it depended on.
        self.flow: UdpFlow | None = None

    # --- addressing --------------------------------------------------------
    @property
    def any_addr(self) -> bytes:
        return ANY_V4 if self.family == AF_INET else UNSPECIFIED_V6

    def _check_family(self, addr: bytes) -> None:
        if (self.family == AF_INET) != (len(addr) == 4):
            raise os_error(errno.EAFNOSUPPORT if self.family == AF_INET else errno.EINVAL)

    def _check_closed(self) -> None:
        if self.closed:
            raise os_error(errno.EBADF)

    def bind(self, addr: bytes, port: int, scope_id: int = 0) -> None:
        """bind(); `scope_id` is sockaddr_in6's (an ifindex for link-local addresses)."""
        self._check_closed()
        self._check_family(addr)
        if not 0 <= port <= 0xFFFF:
            raise OverflowError("port must be 0-65535")
        layer = self.layer
        device = self.bound_device
        if self.family == AF_INET:
            layer.check_bindable_v4(addr)  # Linux checks the address before double binds
            if self.local_port:
                raise os_error(errno.EINVAL)
        else:
            if self.local_port:
                raise os_error(errno.EINVAL)
            if is_v4_mapped(addr):
                if self.v6only:
                    raise os_error(errno.EINVAL)
                layer.check_bindable_v4(addr[12:])
            elif addr != UNSPECIFIED_V6:
                if needs_scope_id(addr):
                    if scope_id:
                        if scope_id not in layer.stack.interfaces:
                            raise os_error(errno.ENODEV)
                        device = scope_id
                    if not device:
                        raise os_error(errno.EINVAL)
                if not is_multicast(addr) and not layer.is_local(addr, device):
                    raise os_error(errno.EADDRNOTAVAIL)
        layer.bind(self, addr, port)
        self.bound_device = device
        self.addr_locked = addr not in (ANY_V4, UNSPECIFIED_V6)
        self.port_locked = port != 0
        if self.family == AF_INET6 and addr != UNSPECIFIED_V6 and not is_v4_mapped(addr):
            self.v6only = True  # as Linux's __inet6_bind

    def ensure_bound(self) -> None:
        """Autobind (connect, first send) to an ephemeral port (and the wildcard, if unset)."""
        if not self.local_port:
            try:
                self.layer.bind(self, self.local_addr or self.any_addr, 0)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise os_error(errno.EAGAIN) from None  # inet_autobind's error

    def _destination(self, addr: bytes, explicit: bool, port: int) -> bytes:
        """The destination as it goes on the wire (4 or 16 bytes), with Linux's checks."""
        if self.family == AF_INET:
            if addr == ANY_V4:  # "this host"
                local = self.local_addr or ANY_V4
                return local if self.layer.stack.is_local_address(local) else LOOPBACK_V4
            return addr
        if addr == UNSPECIFIED_V6:
            return LOOPBACK_V4 if self.local_addr and is_v4_mapped(self.local_addr) else LOOPBACK_V6
        if is_v4_mapped(addr):
            if self.v6only:
                raise os_error(errno.ENETUNREACH)
            wire = addr[12:]
            if wire == ANY_V4:
                local = unmap_v4(self.local_addr or UNSPECIFIED_V6)
                wire = local if self.layer.stack.is_local_address(local) else LOOPBACK_V4
            return wire
        if explicit and port == 0:
            raise os_error(errno.EINVAL)
        if self.local_addr is not None and is_v4_mapped(self.local_addr):
            raise os_error(errno.EAFNOSUPPORT)  # ip6_dst_lookup_tail: no mapped source on v6
        return addr

    def connect(self, addr: bytes, port: int, scope_id: int = 0) -> None:
        """Set the default destination and filter receives (see disconnect for AF_UNSPEC)."""
        self._check_closed()
        self._check_family(addr)
        self.ensure_bound()  # inet_dgram_connect autobinds before anything else
        wire = self._destination(addr, False, port)
        device = self.bound_device
        if len(wire) == 16 and needs_scope_id(wire):
            if scope_id:
                if device and device != scope_id:
                    raise os_error(errno.EINVAL)
                device = scope_id
            if not device and is_multicast(wire):
                device = self.multicast_if6
            if not device:
                raise os_error(errno.EINVAL)
        rt = self.layer.route(self, wire, device)
        assert self.local_addr is not None
        local = unmap_v4(self.local_addr) if self.family == AF_INET6 else self.local_addr
        if local in (ANY_V4, UNSPECIFIED_V6):  # Linux fixes the source address at connect time
            self.local_addr = to_v4_mapped(rt.src) if self.family == AF_INET6 and len(
                wire) == 4 else rt.src
        self.bound_device = device
        peer = wire if self.family == AF_INET or len(wire) == 16 else to_v4_mapped(wire)
        self.remote = (peer, port)

    def disconnect(self) -> None:
        """connect(AF_UNSPEC), as Linux's __udp_disconnect."""
        self.remote = None
        if not self.device_locked:
            self.bound_device = None
        if self.local_addr is not None and not self.addr_locked:
            self.local_addr = self.any_addr
        if not self.port_locked:
            self.layer.unbind(self)  # the port goes back; the next send autobinds again

    def getsockname(self) -> tuple[bytes, int]:
        return self.local_addr or self.any_addr, self.local_port

    def getpeername(self) -> tuple[bytes, int]:
        if self.remote is None or self.remote[1] == 0:  # Linux: no peer without a port
            raise os_error(errno.ENOTCONN)
        return self.remote

    # --- data --------------------------------------------------------------
    def sendto(self, data: bytes | memoryview, addr: bytes | None = None,
               port: int | None = None, scope_id: int = 0) -> int:
        if self.closed:
            raise os_error(errno.EBADF)
        if not self.local_port:
            self.ensure_bound()  # inet_send_prepare
        family_v4 = self.family == AF_INET
        if addr is None:
            if self.remote is None:
                raise os_error(errno.EDESTADDRREQ)
            addr, port = self.remote
            explicit = False
        else:
            if family_v4 != (len(addr) == 4):
                self._check_family(addr)  # raises
            explicit = True
        assert port is not None
        # _destination: an AF_INET socket's address other than "this host" goes as it is
        wire = addr if family_v4 and addr != ANY_V4 else self._destination(addr, explicit, port)
        if len(wire) == 4:
            if len(data) > 0xFFFF:
                raise os_error(errno.EMSGSIZE)
            if explicit and port == 0:
                raise os_error(errno.EINVAL)
        device = scope_id if len(wire) == 16 and needs_scope_id(wire) and scope_id else None
        return self.layer.send(self, bytes(data), wire, port, device)

    def recvfrom(self, bufsize: int, peek: bool = False) -> tuple[bytes, bytes, int, bool]:
        """(data, source address in this socket's family, source port, truncated)."""
        if self.closed:
            raise os_error(errno.EBADF)
        if bufsize < 0:
            raise ValueError("negative buffersize in recvfrom")
        if self.pending_error:  # Linux reports it before any queued datagram
            err, self.pending_error = self.pending_error, 0
            raise os_error(err)
        if not self.queue:
            if self.shut_rd:
                return b"", self.any_addr, 0, False
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        data, src, sport, _ifindex, cost, _arrival = (self.queue[0] if peek
                                                      else self.queue.popleft())
        if not peek:
            self.queued_bytes -= cost
            self.memory.charge(-cost)
        if self.family == AF_INET6 and len(src) == 4:
            src = to_v4_mapped(src)
        return data[:bufsize], src, sport, len(data) > bufsize

    def recvmsg(self, bufsize: int, peek: bool = False, realtime_offset_ns: int = 0
                ) -> tuple[bytes, bytes, int, bool, list[tuple[int, int, bytes]]]:
        """recvfrom plus the datagram's control messages (stack.ancillary).

        Arrival times are on the stack's clock; `realtime_offset_ns` (the wall
        clock minus the stack's) turns them into SO_TIMESTAMP's wall-clock time.
        """
        arrival = self.queue[0][5] if self.queue else None
        flags = self.recv_ancillary
        data, src, sport, truncated = self.recvfrom(bufsize, peek)
        control = (ancillary.control_messages(flags, self.family == AF_INET6, arrival,
                                              realtime_offset_ns)
                   if arrival is not None and flags else [])
        return data, src, sport, truncated, control
    def send(self, data: bytes | memoryview) -> int:
        return self.sendto(data)

    # --- options -----------------------------------------------------------
    def setsockopt(self, level: int, name: int, value: int | bytes) -> None:
        sockopt.setsockopt(self, level, name, value)

    def getsockopt(self, level: int, name: int) -> int | bytes:
        return sockopt.getsockopt(self, level, name)

    # --- readiness ---------------------------------------------------------
    def readable(self) -> bool:
        return bool(self.queue) or bool(self.pending_error) or self.shut_rd or self.closed

    def poll_read(self) -> SocketReadiness:
        if self.queue:
            return _readable_with(len(self.queue[0][0]))
        if self.pending_error:
            return SocketReadiness(True, 0, error=self.pending_error)
        return _READABLE if self.readable() else _NOT_READABLE

    def writable(self) -> bool:
        return not self.closed

    def shutdown(self, how: int) -> None:
        """As Linux: the flags are set even on an unconnected socket, which gets ENOTCONN."""
        self._check_closed()
        if how not in (_socket.SHUT_RD, _socket.SHUT_WR, _socket.SHUT_RDWR):
            raise os_error(errno.EINVAL)
        if how in (_socket.SHUT_RD, _socket.SHUT_RDWR):
            self.shut_rd = True
        if how in (_socket.SHUT_WR, _socket.SHUT_RDWR):
            self.shut_wr = True
        self.layer.stack.driver.wake()
        if self.remote is None:
            raise os_error(errno.ENOTCONN)

    def close(self) -> None:
        if self.closed:
            return
        for ifindex, group in list(self.memberships):
            self.layer.stack.leave_group(ifindex, group)
        self.memberships.clear()
        self.layer.unbind(self)
        self.closed = True
        self.queue.clear()
        self.memory.charge(-self.queued_bytes)
        self.queued_bytes = 0

    # --- multicast ---------------------------------------------------------
    def _find_device_v4(self, ifaddr: bytes, ifindex: int) -> int | None:
        """Linux ip_mc_find_dev: by index, else by address, else by route to the group."""
        stack = self.layer.stack
        if ifindex:
            return ifindex if ifindex in stack.interfaces else None
        if ifaddr != ANY_V4:
            return next((i.index for i in stack.interfaces.values() if i.has_address(ifaddr)),
                        None)
        return None

    def _route_device(self, group: bytes) -> int | None:
        try:
            return int(self.layer.stack.route_output(group).iface.index)
        except OSError:
            return None

    def join_group_v4(self, group: bytes, ifaddr: bytes = ANY_V4, ifindex: int = 0) -> None:
        """IP_ADD_MEMBERSHIP (struct ip_mreq / ip_mreqn)."""
        if not is_multicast(group) or len(group) != 4:
            raise os_error(errno.EINVAL)
        device = self._find_device_v4(ifaddr, ifindex)
        if device is None and not ifindex and ifaddr == ANY_V4:
            device = self._route_device(group)
        if device is None:
            raise os_error(errno.ENODEV)
        if (device, group) in self.memberships:
            raise os_error(errno.EADDRINUSE)
        if sum(len(g) == 4 for _, g in self.memberships) >= MAX_MEMBERSHIPS_V4:
            raise os_error(errno.ENOBUFS)
        self.memberships[(device, group)] = ifaddr
        self.layer.stack.join_group(device, group)

    def leave_group_v4(self, group: bytes, ifaddr: bytes = ANY_V4, ifindex: int = 0) -> None:
        """IP_DROP_MEMBERSHIP, matching as Linux's ip_mc_leave_group."""
        device = self._find_device_v4(ifaddr, ifindex)
        if device is None and not ifindex and ifaddr == ANY_V4:
            device = self._route_device(group)
            if device is None:
                raise os_error(errno.ENODEV)
        match = ifindex or device
        for key, joined_with in reversed(self.memberships.items()):
            if key[1] != group:
                continue
            if match:
                if key[0] != match:
                    continue
            elif ifaddr != ANY_V4 and ifaddr != joined_with:
                continue
            del self.memberships[key]
            self.layer.stack.leave_group(key[0], group)
            return
        raise os_error(errno.EADDRNOTAVAIL)

    def join_group_v6(self, group: bytes, ifindex: int = 0) -> None:
        """IPV6_JOIN_GROUP (struct ipv6_mreq; ifindex 0: by route)."""
        if len(group) != 16 or not is_multicast(group):
            raise os_error(errno.EINVAL)
        if any(g == group and (not ifindex or i == ifindex) for i, g in self.memberships):
            raise os_error(errno.EADDRINUSE)
        if ifindex:
            device: int | None = ifindex if ifindex in self.layer.stack.interfaces else None
        else:
            device = self._route_device(group)
        if device is None:
            raise os_error(errno.ENODEV)
        self.memberships[(device, group)] = b""
        self.layer.stack.join_group(device, group)

    def leave_group_v6(self, group: bytes, ifindex: int = 0) -> None:
        if len(group) != 16 or not is_multicast(group):
            raise os_error(errno.EINVAL)
        for key in reversed(list(self.memberships)):
            if key[1] == group and (not ifindex or key[0] == ifindex):
                del self.memberships[key]
                self.layer.stack.leave_group(key[0], group)
                return
        raise os_error(errno.EADDRNOTAVAIL)

    def join_group(self, group: bytes, ifindex: int | None = None) -> None:
        """Either family by interface index (None or 0: by route), as WASIX's
        sock_join_multicast_v4/v6 ask for it."""
        if len(group) == 4:
            self.join_group_v4(group, ANY_V4, ifindex or 0)
        else:
            self.join_group_v6(group, ifindex or 0)

    def leave_group(self, group: bytes, ifindex: int | None = None) -> None:
        if len(group) == 4:
            self.leave_group_v4(group, ANY_V4, ifindex or 0)
        else:
            self.leave_group_v6(group, ifindex or 0)

    def member_of(self, group: bytes, ifindex: int) -> bool:
        """Does this socket's filter let `group` in (IPv4: on that interface)?"""
        if len(group) == 4:
            return (ifindex, group) in self.memberships or self.multicast_all
        return any(g == group for _, g in self.memberships) or self.multicast_all6


class UdpLayer:
    """Protocol 17 for one HostStack: the port table and demultiplexing."""

    def __init__(self, stack: HostStack) -> None:
        self.stack = stack
        self.ports: dict[int, list[UdpSocket]] = {}
        self.ephemeral_range = EPHEMERAL_RANGE
        self.rmem_max = RMEM_MAX
        self.wmem_max = WMEM_MAX
        self._bind_seq = 0

    def socket(self, family: int) -> UdpSocket:
        return UdpSocket(self, family)

    # --- addresses -----------------------------------------------------------
    def is_broadcast(self, addr: bytes) -> bool:
        """255.255.255.255 or an interface's broadcast address (loopback's included)."""
        return len(addr) == 4 and (addr == BROADCAST4 or any(
            a.broadcast == addr for i in self.stack.interfaces.values() for a in i.ipv4))

    def is_local(self, addr: bytes, device: int | None = None) -> bool:
        if device:
            iface = self.stack.interfaces.get(device)
            return iface is not None and (iface.has_address(addr) or (
                iface.is_loopback and len(addr) == 4 and addr[0] == 127))
        return self.stack.is_local_address(addr)

    def check_bindable_v4(self, addr: bytes) -> None:
        """Linux inet_addr_valid_or_nonlocal: the wildcard, local, broadcast or multicast."""
        if addr == ANY_V4 or is_multicast(addr) or self.is_broadcast(addr):
            return
        if not self.stack.is_local_address(addr):
            raise os_error(errno.EADDRNOTAVAIL)

    # --- binding -----------------------------------------------------------
    @staticmethod
    def _v4_view(sock: UdpSocket, addr: bytes) -> bytes:
        """Linux's inet_rcv_saddr: the IPv4 address a bound socket stands for. An AF_INET6
        socket on a plain IPv6 address holds LOOPBACK4_IPV6 (127.0.0.6), which the IPv4
        wildcard overlaps unless the socket is v6-only (as binding, not connecting, makes it)."""
        if sock.family == AF_INET:
            return addr
        if addr == UNSPECIFIED_V6:
            return ANY_V4
        return addr[12:] if is_v4_mapped(addr) else LOOPBACK4_IPV6

    def _addresses_overlap(self, sock: UdpSocket, addr: bytes, other: UdpSocket) -> bool:
        """Linux inet_rcv_saddr_equal(sock bound to addr, other, match_wildcard=True)."""
        other_addr = other.local_addr
        assert other_addr is not None
        if sock.family == AF_INET:  # ipv4_rcv_saddr_equal
            if other.v6only:
                return False
            theirs = self._v4_view(other, other_addr)
            return addr == theirs or addr == ANY_V4 or theirs == ANY_V4
        # ipv6_rcv_saddr_equal; an AF_INET socket stands for an IPv4-mapped address
        mine_mapped = is_v4_mapped(addr)
        theirs6 = other_addr if other.family == AF_INET6 else None
        theirs_mapped = theirs6 is None or is_v4_mapped(theirs6)
        if mine_mapped and theirs_mapped:
            if other.v6only:
                return False
            mine4, theirs4 = addr[12:], self._v4_view(other, other_addr)
            return mine4 == theirs4 or mine4 == ANY_V4 or theirs4 == ANY_V4
        if addr == UNSPECIFIED_V6 and theirs6 == UNSPECIFIED_V6:
            return True
        if theirs6 == UNSPECIFIED_V6 and not (other.v6only and mine_mapped):
            return True
        if addr == UNSPECIFIED_V6 and not (sock.v6only and theirs_mapped):
            return True
        return theirs6 is not None and addr == theirs6

    def _conflicts(self, sock: UdpSocket, addr: bytes, port: int) -> bool:
        """Linux udp_lib_lport_inuse."""
        for other in self.ports.get(port, ()):
            if other is sock or (sock.reuseaddr and other.reuseaddr):
                continue
            if sock.bound_device and other.bound_device and (
                    sock.bound_device != other.bound_device):
                continue
            if not self._addresses_overlap(sock, addr, other):
                continue
            if sock.reuseport and other.reuseport:
                continue
            return True
        return False

    def bind(self, sock: UdpSocket, addr: bytes, port: int) -> None:
        """Take (addr, port) for sock, the address already checked; port 0: ephemeral."""
        if port == 0:
            port = self._pick_ephemeral(sock, addr)
        elif self._conflicts(sock, addr, port):
            raise os_error(errno.EADDRINUSE)
        sock.local_addr = addr
        sock.local_port = port
        self._bind_seq += 1
        sock.bind_seq = self._bind_seq
        self.ports.setdefault(port, []).append(sock)

    def _pick_ephemeral(self, sock: UdpSocket, addr: bytes) -> int:
        low, high = self.ephemeral_range
        span = high - low + 1
        if span <= 0:
            raise os_error(errno.EADDRINUSE)
        start = self.stack.rng.randrange(span)
        for i in range(span):
            port = low + (start + i) % span
            if not self._conflicts(sock, addr, port):
                return port
        raise os_error(errno.EADDRINUSE)

    def unbind(self, sock: UdpSocket) -> None:
        bucket = self.ports.get(sock.local_port)
        if bucket and sock in bucket:
            bucket.remove(sock)
            if not bucket:
                del self.ports[sock.local_port]
        sock.local_port = 0

    # --- output ------------------------------------------------------------
    def route(self, sock: UdpSocket, dst: bytes, device: int | None) -> OutputRoute:
        """Route dst for sock (its source, devices, multicast interface) and check EACCES.

        A unicast route is kept per socket (`UdpSocket.flow`, a `UdpFlow`) with
        everything it depended on -- destination, devices, local address,
        SO_BROADCAST, and the generations of the host's interfaces, addresses and
        routes -- and reused while all of those are unchanged. The route's last hop
        is cached on it by the IP layer (`OutputRoute.link`) and checked per datagram,
        so reachability and ARP keep working."""
        stack = self.stack
        assert sock.local_addr is not None
        key = (dst, device, sock.bound_device, sock.local_addr, sock.broadcast,
               stack.generation, stack.routes.generation)
        flow = sock.flow
        if flow is not None and flow.key == key:
            return flow.rt
        rt = self._route(sock, dst, device)
        if not rt.is_multicast and not rt.is_broadcast:
            sock.flow = UdpFlow(key, rt)
        return rt

    def _route(self, sock: UdpSocket, dst: bytes, device: int | None) -> OutputRoute:
        stack = self.stack
        assert sock.local_addr is not None
        local = unmap_v4(sock.local_addr)
        src: bytes | None = None
        if (len(local) == len(dst) and local not in (ANY_V4, UNSPECIFIED_V6)
                and stack.is_local_address(local)):
            src = local  # bound (or connected) to one of ours; not to a group or broadcast
        ifindex = device or sock.bound_device
        if is_multicast(dst):
            if len(dst) == 4:
                ifindex = ifindex or sock.multicast_if
                src = src or sock.multicast_if_addr
            else:
                ifindex = ifindex or sock.multicast_if6
        rt = stack.route_output(dst, src, ifindex)
        if len(dst) == 4 and rt.src[0] == 127 and not rt.iface.is_loopback:
            raise os_error(errno.EINVAL)  # a loopback source never leaves the host
        if (rt.is_broadcast or self.is_broadcast(dst)) and not sock.broadcast:
            raise os_error(errno.EACCES)
        return rt

    def send(self, sock: UdpSocket, data: bytes, dst: bytes, dport: int,
             device: int | None = None) -> int:
        stack = self.stack
        flow = sock.flow
        if flow is not None and flow.key == (dst, device, sock.bound_device, sock.local_addr,
                                             sock.broadcast, stack.generation,
                                             stack.routes.generation):
            rt = flow.rt  # `route`, inline: the flow's route still holds
        else:
            rt = self.route(sock, dst, device)
        if len(data) > (MAX_PAYLOAD_V4 if len(dst) == 4 else MAX_PAYLOAD_V6):
            raise os_error(errno.EMSGSIZE)
        if sock.pending_error:  # sock_alloc_send_skb reports it only now
            err, sock.pending_error = sock.pending_error, 0
            raise os_error(err)
        if sock.shut_wr:
            raise os_error(errno.EPIPE)
        flow = sock.flow
        if flow is not None and flow.rt is rt:
            if (flow.hooks_generation != stack.hooks.generation
                    or flow.path_mtu_generation != stack.path_mtus.generation):
                flow.settle_offload(stack)
            if flow.offload and len(data) + flow.overhead <= rt.iface.mtu:  # see UdpFlow
                stack.counters["udp.out"] += 1
                # wire_udp.build_checksum_partial, inline: the checksum is left to whoever
                # materialises the datagram
                datagram = _UDP_HEADER.pack(sock.local_port, dport, 8 + len(data), 0) + data
                if flow.overhead == 28:
                    stack.ipv4.send_offloaded(rt, 17, datagram, sock.ttl, sock.tos, True, 0)
                else:
                    stack.ipv6.send(rt, 17, datagram, hop_limit=sock.hop_limit,
                                    traffic_class=sock.tclass, offload=True)
                return len(data)
        # checksum-partial (stack.wire.gso) on a link that offloads, when it goes out
        # whole: unicast, and no fragmentation at the path MTU
        offload = (not rt.is_multicast and not rt.is_broadcast
                   and stack.offload_output(rt.iface)
                   and len(data) + (28 if len(dst) == 4 else 48) <= stack.path_mtu(rt))
        if offload:
            datagram = wire_udp.build_checksum_partial(sock.local_port, dport, data)
        else:
            datagram = wire_udp.UdpRepr(sock.local_port, dport).build(data, rt.src, dst)
        stack.counters["udp.out"] += 1
        if len(dst) == 4:
            stack.send_ipv4(rt, 17, datagram,
                            ttl=sock.multicast_ttl if rt.is_multicast else sock.ttl,
                            tos=sock.tos, multicast_loop=sock.multicast_loop,
                            path_mtu_discovery=True, offload=offload)
        else:
            stack.send_ipv6(rt, 17, datagram,
                            hop_limit=sock.multicast_hops if rt.is_multicast else sock.hop_limit,
                            traffic_class=sock.tclass, multicast_loop=sock.multicast_loop6,
                            path_mtu_discovery=True, offload=offload)
        return len(data)

    # --- input -------------------------------------------------------------
    def _score(self, sock: UdpSocket, meta: IpMeta, sport: int, group_cast: bool,
               ifindex: int) -> int:
        """How well sock matches a datagram; -1: not at all (after Linux's compute_score)."""
        if sock.closed or sock.local_addr is None or not sock.local_port:
            return -1
        dst = meta.dst
        if meta.version == 4:
            if sock.family == AF_INET:
                local, score = sock.local_addr, 2
            elif sock.v6only:
                return -1
            elif sock.local_addr == UNSPECIFIED_V6:
                local, score = ANY_V4, 1
            elif is_v4_mapped(sock.local_addr):
                local, score = sock.local_addr[12:], 1
            else:
                return -1
            any_addr = ANY_V4
        else:
            if sock.family != AF_INET6:
                return -1
            local, score, any_addr = sock.local_addr, 0, UNSPECIFIED_V6
        if local != any_addr:
            if local != dst:
                return -1
            score += 32  # Linux looks up sockets bound to the address before wildcard ones
        if sock.remote is not None:
            raddr, rport = sock.remote
            if unmap_v4(raddr) != meta.src or rport != sport:
                return -1
            score += 8
        if sock.bound_device is not None:
            if sock.bound_device != ifindex:
                return -1
            score += 4
        if group_cast and meta.is_multicast and not sock.member_of(dst, ifindex):
            return -1
        return score

    def _arrival_ifindex(self, meta: IpMeta) -> int:
        """The device a datagram counts as arriving on: for one the host sent to its own
        address through loopback, the device owning that address (Linux's rt_iif)."""
        iface = self.stack.interfaces.get(meta.ifindex)
        if iface is not None and iface.is_loopback:
            for other in self.stack.interfaces.values():
                if not other.is_loopback and other.has_address(meta.dst):
                    return int(other.index)
        return meta.ifindex

    def receive(self, meta: IpMeta, payload: memoryview) -> bool:
        stack = self.stack
        split: tuple[int, int, memoryview] | None = None
        if meta.csum_trusted:  # wire_udp.split_trusted, inline (the receive hot path)
            n = len(payload)
            if n >= 8:
                sport, dport, length, _ = _UDP_HEADER.unpack_from(payload)
                if 8 <= length <= n:
                    split = sport, dport, payload[8:length]
        if split is None:
            pkt = wire_udp.UdpPacket.parse(payload, meta.src, meta.dst,
                                           verify_checksum=not meta.csum_trusted)
            if isinstance(pkt, WireError):
                stack.counters.drop("udp", pkt)
                return True  # counted; no ICMP for a broken datagram
            split = pkt.src_port, pkt.dst_port, pkt.payload
        sport, dport, body = split
        stack.counters["udp.in"] += 1
        candidates = self.ports.get(dport)
        if not candidates:
            stack.counters.drop("udp", "no_socket")
            return False
        data = bytes(body)
        ifindex = meta.ifindex
        arrived_on = stack.interfaces.get(ifindex)
        if arrived_on is not None and arrived_on.is_loopback:
            ifindex = self._arrival_ifindex(meta)
        if meta.is_multicast or meta.is_broadcast:
            delivered = False
            for sock in candidates:
                if self._score(sock, meta, sport, True, ifindex) >= 0:
                    self._enqueue(sock, data, meta, sport, ifindex)
                    delivered = True
            if not delivered:
                stack.counters.drop("udp", "no_socket")
            return True
        if len(candidates) == 1:
            target = candidates[0]
            if self._score(target, meta, sport, False, ifindex) < 0:
                stack.counters.drop("udp", "no_socket")
                return False
            self._enqueue(target, data, meta, sport, ifindex)
            return True
        best: list[UdpSocket] = []
        best_score = -1
        for sock in candidates:
            score = self._score(sock, meta, sport, False, ifindex)
            if score > best_score:
                best, best_score = [sock], score
            elif score == best_score and score >= 0:
                best.append(sock)
        if not best:
            stack.counters.drop("udp", "no_socket")
            return False
        if len(best) == 1:
            target = best[0]
        elif all(s.reuseport for s in best):
            key = zlib.crc32(meta.src + sport.to_bytes(2, "big"))
            target = best[key % len(best)]
        else:
            target = max(best, key=lambda s: s.bind_seq)
        self._enqueue(target, data, meta, sport, ifindex)
        return True

    def reclaim(self, memory: SocketMemory) -> int:
        """Drop every datagram queued in sockets charged to `memory`; bytes given back.

        What a guest over its --max-memory loses before it is killed (see
        stack/socket_memory.py): datagrams may be lost, so each one is a counted
        drop (`udp.drop.reclaimed`, and the socket's `drops`).
        """
        freed = 0
        for socks in self.ports.values():
            for sock in socks:
                if sock.memory is not memory or not sock.queue:
                    continue
                self.stack.counters["udp.drop.reclaimed"] += len(sock.queue)
                sock.drops += len(sock.queue)
                sock.queue.clear()
                memory.charge(-sock.queued_bytes)
                freed += sock.queued_bytes
                sock.queued_bytes = 0
        return freed

    def _enqueue(self, sock: UdpSocket, data: bytes, meta: IpMeta, sport: int,
                 ifindex: int) -> None:
        cost = truesize(len(data), meta.version)
        if sock.queued_bytes and sock.queued_bytes + cost > sock.rcvbuf:
            sock.drops += 1
            self.stack.counters.drop("udp", "queue_full")
            return
        if not sock.memory.try_charge(cost):  # the owner's socket memory is used up
            sock.drops += 1
            self.stack.counters.drop("udp", "memory")
            return
        arrival = self._arrival(meta, ifindex) if sock.recv_ancillary else None
        sock.queue.append((data, meta.src, sport, ifindex, cost, arrival))
        sock.queued_bytes += cost
        self.stack.counters["udp.delivered"] += 1
        self.stack.driver.wake()

    def _arrival(self, meta: IpMeta, ifindex: int) -> Arrival:
        """What IP_PKTINFO and friends report (only for sockets that asked)."""
        spec_dst = meta.dst
        if meta.version == 4 and (meta.is_broadcast or meta.is_multicast):
            # fib_compute_spec_dst: the arrival interface's address (on the sender's subnet)
            iface = self.stack.interfaces.get(ifindex)
            candidates = [a for a in iface.addresses() if len(a.address) == 4] if iface else []
            on_link = [a for a in candidates if a.prefix_len and int.from_bytes(
                a.address, "big") >> (32 - a.prefix_len) == int.from_bytes(
                meta.src, "big") >> (32 - a.prefix_len)]
            chosen = (on_link or candidates)
            spec_dst = chosen[0].address if chosen else ANY_V4
        return Arrival(meta.version, meta.dst, spec_dst, ifindex, meta.ttl, meta.tos,
                       self.stack.driver.now_ns())

    def icmp_error(self, version: int, err: int, invoking: memoryview, icmp_type: int,
                   icmp_code: int, info: int) -> None:
        """ICMP error about a datagram we sent: a connected socket gets it as SO_ERROR."""
        from .wire import ipv4, ipv6

        if version == 4:
            quoted4 = ipv4.Ipv4Packet.parse(invoking, verify_checksum=False, partial=True)
            if isinstance(quoted4, WireError):
                return
            src, dst, upper = quoted4.src, quoted4.dst, quoted4.payload
        else:
            quoted6 = ipv6.Ipv6Packet.parse(invoking, partial=True)
            if isinstance(quoted6, WireError):
                return
            src, dst, upper = quoted6.src, quoted6.dst, quoted6.upper_payload
        if len(upper) < 4:
            return
        sport = int.from_bytes(upper[0:2], "big")
        dport = int.from_bytes(upper[2:4], "big")
        for sock in self.ports.get(sport, ()):
            if sock.remote is None:
                continue  # Linux ignores errors on unconnected sockets (no IP_RECVERR)
            raddr, rport = sock.remote
            if unmap_v4(raddr) == dst and rport == dport:
                local = unmap_v4(sock.local_addr or b"")
                if local in (ANY_V4, UNSPECIFIED_V6) or local == src:
                    sock.pending_error = err
                    self.stack.counters["udp.icmp_error"] += 1
                    self.stack.driver.wake()
