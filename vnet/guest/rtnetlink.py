"""A guest's rtnetlink sockets: `socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE)` on its own host.

`NetlinkDescription` is the socket in the guest's fd table (read, write,
poll and close work on it like on any fd); the `vnet_v1.netlink_*` imports
below are what the SDK's socket, bind, getsockname, send*/recv* call for it
(vnet/sdk/src/netlink.c). A request is processed when it is sent, as the
kernel does: link, address and route dumps (RTM_GETLINK / GETADDR /
GETROUTE with NLM_F_DUMP, each a series of NLM_F_MULTI messages and
NLMSG_DONE, produced as the guest reads them, one dump at a time per socket
as on Linux: EBUSY otherwise), single link lookups and route lookups,
RTM_NEWADDR / DELADDR, RTM_NEWROUTE / DELROUTE and RTM_NEWLINK / SETLINK
(MTU, MAC, flags) for the guest's own host, with the permission rules of
vnet.guest.ifconfig. Errors come back as NLMSG_ERROR with the negated errno
(the SDK's numbering, as the guest's errno.h has it) and the request echoed;
NLM_F_ACK asks for an ack. Sequence numbers and the socket's port id are
echoed as Linux does.

A socket bound to multicast groups (RTMGRP_LINK, RTMGRP_IPV4_IFADDR,
RTMGRP_IPV6_IFADDR, RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_ROUTE) hears every
change of its host's configuration, whoever made it (this guest, another
guest, the topology or the Python API): it listens on
`HostStack.config_listeners`. As on Linux, the notification of an IPv4
address or of a route that a netlink request changed carries that
request's port id and sequence number; every other one carries 0, 0.

What the guest cannot make the host hold: every socket and every queued
byte is charged to the guest's socket memory (its --max-memory budget), and
a receive queue is capped at the socket's SO_RCVBUF (Linux's default,
212992 bytes; at most twice that, as Linux's rmem_max allows); past either
a reply or notification is dropped, counted (`netlink.drop.overrun` in the
host's counters) and the next receive fails with ENOBUFS, as on Linux (not
with NETLINK_NO_ENOBUFS). A send is capped at 32 KiB (EMSGSIZE; Linux's own
limit is the send buffer, 212960 bytes by default), so no single call holds
the network long. Malformed messages are handled
as the kernel handles them (vnet.guest.netlink_wire): never an exception.

Differences from Linux, on purpose: one routing table (main; the local
table is shown in dumps, derived from the addresses, but cannot be
changed), unicast routes only (other route types and tables: EOPNOTSUPP),
no device creation, deletion or renaming through RTM_NEWLINK / DELLINK
(EOPNOTSUPP). Socket options (`netlink_setsockopt` / `netlink_getsockopt`):
SO_RCVBUF, SO_SNDBUF (and their FORCE forms), SO_RCVTIMEO, SO_PASSCRED,
NETLINK_ADD/DROP_MEMBERSHIP (groups 1-32 deliver), NETLINK_CAP_ACK,
NETLINK_NO_ENOBUFS, the other NETLINK_* flags (kept, without effect),
NETLINK_LIST_MEMBERSHIPS, SO_TYPE / SO_PROTOCOL / SO_DOMAIN / SO_ERROR.

Touches the guest's fd table and memory and its host's stack configuration.
"""

from __future__ import annotations

import socket as _s
import struct
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from stack.host import ConfigChange
from stack.interface import IFF_UP, Interface, InterfaceAddress, mask_address
from stack.routing import Route
from stack.socket_memory import SOCKET_OVERHEAD, SocketMemory

from . import netlink_wire as nl
from .abi import host_function
from .context import GuestContext
from .fdtable import FileDescription, Readiness
from .ifconfig import (
    GUEST_AF_INET,
    GUEST_AF_INET6,
    GUEST_AF_NETLINK,
    GUEST_AF_UNSPEC,
    add_ipv6,
    add_route,
    broadcast_of,
    change_flags,
    delete_ipv6,
    find_routes,
    forget_origin,
    interface_by_index,
    interface_by_name,
    link_type,
    peer_of,
    remember_origin,
    replace_ipv4,
    reported_flags,
    require_configurable,
    require_grant,
    route_origin,
    validate_mtu,
)
from .wasi_core import wait_for_io
from .wasi_types import RIGHTS_SOCKET_BASE, Errno, Filetype, WasiError
from .wasix import _host, guest_socket_memory

if TYPE_CHECKING:
    from stack.host import HostStack
    from vnet.network import Host

V = "vnet_v1"

NETLINK_ROUTE = 0
MAX_LINKS = 32
ESOCKTNOSUPPORT = 94  # the SDK's errno.h value (not a WASI errno)
SOCKADDR_NL = struct.Struct("<HHII")
RECEIVE_BUFFER = 212992  # Linux's default SO_RCVBUF (and net.core.rmem_max)
SOL_SOCKET = 1
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_DROP_MEMBERSHIP = 2
NETLINK_NO_ENOBUFS = 5
NETLINK_LIST_MEMBERSHIPS = 9
NETLINK_CAP_ACK = 10
#: SOL_NETLINK options that are flags (PKTINFO, BROADCAST_ERROR, NO_ENOBUFS,
#: LISTEN_ALL_NSID, CAP_ACK, EXT_ACK, GET_STRICT_CHK)
NETLINK_FLAG_OPTIONS = frozenset({3, 4, 5, 8, 10, 11, 12})
TIMEVAL = struct.Struct("<qq")
MAX_SEND = 32768
DUMP_CHUNK_MIN = 4096 - 320  # NLMSG_GOODSIZE for 4 KiB pages
DUMP_CHUNK_MAX = 32768 - 320
MSG_PEEK = 0x2
MSG_TRUNC = 0x20
MSG_DONTWAIT = 0x40
IFF_LOWER_UP = 0x10000

#: While a request changes addresses ("address") or routes ("route"): its kind, the
#: requester's port id and the request's sequence number, which the notifications of
#: exactly those changes carry (as Linux's do; everything else notifies with 0, 0).
_requester: tuple[str, int, int] | None = None

#: Where a host keeps its netlink port ids in use: in its stack's annex, under this key.
NETLINK_PORTS = "vnet.rtnetlink.ports"


def _guest_family(version: int) -> int:
    return GUEST_AF_INET if version == 4 else GUEST_AF_INET6


def _version_of(family: int) -> int | None:
    return 4 if family == GUEST_AF_INET else 6 if family == GUEST_AF_INET6 else None


# --- messages: the host's configuration as rtnetlink shows it ------------------------

def link_body(iface: Interface, change: int = 0) -> bytes:
    flags = reported_flags(iface)
    if flags & IFF_UP:
        flags |= IFF_LOWER_UP
    header = nl.IFINFOMSG.pack(GUEST_AF_UNSPEC, link_type(iface), iface.index, flags, change)
    if not iface.is_up:
        operstate = nl.IF_OPER_DOWN
    elif iface.mac is not None and not iface.is_loopback:
        operstate = nl.IF_OPER_UP
    else:
        operstate = nl.IF_OPER_UNKNOWN
    attrs = [nl.attribute_str(nl.IFLA_IFNAME, iface.name),
             nl.attribute_u32(nl.IFLA_TXQLEN, 1000),
             nl.attribute(nl.IFLA_OPERSTATE, bytes((operstate,))),
             nl.attribute(nl.IFLA_LINKMODE, b"\0"),
             nl.attribute_u32(nl.IFLA_MTU, iface.mtu),
             nl.attribute_u32(nl.IFLA_MIN_MTU, 68),
             nl.attribute_u32(nl.IFLA_MAX_MTU, 65536 if iface.is_loopback else 65535),
             nl.attribute(nl.IFLA_CARRIER, b"\1")]
    if iface.is_loopback or iface.mac is not None:
        mac = iface.mac or bytes(6)
        broadcast = bytes(6) if iface.is_loopback else b"\xff" * 6
        attrs += [nl.attribute(nl.IFLA_ADDRESS, mac), nl.attribute(nl.IFLA_BROADCAST, broadcast)]
    c = iface.counters
    stats = struct.pack("<24Q", c.rx_frames, c.tx_frames, c.rx_bytes, c.tx_bytes, 0, 0,
                        sum(c.rx_dropped.values()), sum(c.tx_dropped.values()), *([0] * 16))
    attrs.append(nl.attribute(nl.IFLA_STATS64, stats))
    return header + b"".join(attrs)


def _address_scope(addr: InterfaceAddress) -> int:
    if addr.version == 4:
        return nl.RT_SCOPE_HOST if addr.address[0] == 127 else nl.RT_SCOPE_UNIVERSE
    if addr.address == bytes(15) + b"\1":
        return nl.RT_SCOPE_HOST
    if addr.address[0] == 0xFE and addr.address[1] & 0xC0 == 0x80:
        return nl.RT_SCOPE_LINK
    return nl.RT_SCOPE_UNIVERSE


def address_body(iface: Interface, addr: InterfaceAddress) -> bytes:
    header = nl.IFADDRMSG.pack(_guest_family(addr.version), addr.prefix_len, nl.IFA_F_PERMANENT,
                               _address_scope(addr), iface.index)
    cacheinfo = struct.pack("<IIII", 0xFFFFFFFF, 0xFFFFFFFF, 0, 0)
    if addr.version == 6:
        attrs = [nl.attribute(nl.IFA_ADDRESS, addr.address),
                 nl.attribute(nl.IFA_CACHEINFO, cacheinfo),
                 nl.attribute_u32(nl.IFA_FLAGS, nl.IFA_F_PERMANENT)]
        return header + b"".join(attrs)
    attrs = [nl.attribute(nl.IFA_ADDRESS, peer_of(iface, addr)),
             nl.attribute(nl.IFA_LOCAL, addr.address)]
    broadcast = broadcast_of(iface, addr)
    if broadcast is not None:
        attrs.append(nl.attribute(nl.IFA_BROADCAST, broadcast))
    attrs += [nl.attribute_str(nl.IFA_LABEL, iface.name),
              nl.attribute_u32(nl.IFA_FLAGS, nl.IFA_F_PERMANENT),
              nl.attribute(nl.IFA_CACHEINFO, cacheinfo)]
    return header + b"".join(attrs)


def route_body(stack: HostStack, route: Route) -> bytes:
    protocol, scope = route_origin(stack, route)
    table, route_type = nl.RT_TABLE_MAIN, nl.RTN_UNICAST
    iface = stack.interfaces.get(route.ifindex)
    if route.source == "connected" and iface is not None and iface.is_loopback:
        table, route_type, scope = nl.RT_TABLE_LOCAL, nl.RTN_LOCAL, nl.RT_SCOPE_HOST
    return _route_message_body(route.version, route.prefix, route.prefix_len, table, protocol,
                               scope, route_type, route.ifindex, route.gateway,
                               route.preferred_source, route.metric)


def _route_message_body(version: int, prefix: bytes, prefix_len: int, table: int,
                        protocol: int, scope: int, route_type: int, ifindex: int,
                        gateway: bytes | None, preferred_source: bytes | None,
                        metric: int) -> bytes:
    header = nl.RTMSG.pack(_guest_family(version), prefix_len, 0, 0,
                           table if table < 256 else nl.RT_TABLE_COMPAT, protocol, scope,
                           route_type, 0)
    attrs = [nl.attribute_u32(nl.RTA_TABLE, table)]
    if prefix_len:
        attrs.append(nl.attribute(nl.RTA_DST, prefix))
    if version == 6:
        default = 256 if protocol == nl.RTPROT_KERNEL else 1024
        attrs.append(nl.attribute_u32(nl.RTA_PRIORITY, metric or default))
    elif metric:
        attrs.append(nl.attribute_u32(nl.RTA_PRIORITY, metric))
    if preferred_source is not None:
        attrs.append(nl.attribute(nl.RTA_PREFSRC, preferred_source))
    if gateway is not None:
        attrs.append(nl.attribute(nl.RTA_GATEWAY, gateway))
    attrs.append(nl.attribute_u32(nl.RTA_OIF, ifindex))
    return header + b"".join(attrs)


def _local_table(stack: HostStack, version: int) -> list[bytes]:
    """The kernel's local table, derived from the addresses: a `local` route for each
    address of an interface that is up, and a `broadcast` route for each IPv4 subnet's
    broadcast address."""
    out = []
    for index in sorted(stack.interfaces):
        iface = stack.interfaces[index]
        if not iface.is_up:
            continue
        for addr in iface.addresses(version):
            bits = len(addr.address) * 8
            out.append(_route_message_body(version, addr.address, bits, nl.RT_TABLE_LOCAL,
                                           nl.RTPROT_KERNEL, nl.RT_SCOPE_HOST, nl.RTN_LOCAL,
                                           index, None, addr.address, 0))
            if version == 4 and addr.broadcast is not None:
                out.append(_route_message_body(4, addr.broadcast, 32, nl.RT_TABLE_LOCAL,
                                               nl.RTPROT_KERNEL, nl.RT_SCOPE_LINK,
                                               nl.RTN_BROADCAST, index, None, addr.address, 0))
    return out


def _sorted_routes(stack: HostStack, version: int) -> list[Route]:
    """Routes in the order Linux's FIB walk gives them: by prefix, longer first."""
    return sorted(stack.routes.routes(version),
                  key=lambda r: (r.prefix, -r.prefix_len, r.metric, r.ifindex))


# --- the socket ------------------------------------------------------------------

class NetlinkDescription(FileDescription):
    """An rtnetlink socket in a guest's fd table."""

    def __init__(self, ctx: GuestContext, host: Host, sock_type: int,
                 memory: SocketMemory) -> None:
        super().__init__()
        self.filetype = Filetype.SOCKET_DGRAM
        self.is_socket = True
        self.rights_base = int(RIGHTS_SOCKET_BASE)
        self.rights_inheriting = int(RIGHTS_SOCKET_BASE)
        self.ctx = ctx
        self.host = host
        #: The guest's socket budget: the socket's own cost and every queued byte
        self.memory = memory
        self.stack: HostStack = host.stack
        self.sock_type = sock_type
        self.port_id = 0
        self.groups = 0
        #: (datagram, the group it was sent to: 0 for a reply)
        self.queue: deque[tuple[bytes, int]] = deque()
        self.queued_bytes = 0
        self.overrun = False
        self.dump: deque[bytes] | None = None
        self.dump_seq = 0
        self.max_recv_len = 0
        self._listener: Callable[[ConfigChange], None] | None = None
        self.closed = False
        self.send_timeout_ns: int | None = None  # what fd_write's socket path reads
        self.recv_timeout_ns: int | None = None
        self.receive_buffer = RECEIVE_BUFFER
        self.send_buffer = RECEIVE_BUFFER
        #: SOL_NETLINK flags set through setsockopt (NETLINK_CAP_ACK, NETLINK_EXT_ACK …)
        self.options: dict[int, int] = {}
        self.passcred = 0

    # --- names ----------------------------------------------------------------
    def _ports(self) -> dict[int, NetlinkDescription]:
        ports = self.stack.annex.get(NETLINK_PORTS)
        if ports is None:
            ports = self.stack.annex[NETLINK_PORTS] = {}
        return cast("dict[int, NetlinkDescription]", ports)

    def autobind(self) -> None:
        if self.port_id:
            return
        ports = self._ports()
        candidate = 4096 + len(ports)
        while candidate in ports:
            candidate += 1
        self.port_id = candidate
        ports[candidate] = self

    def bind(self, port_id: int, groups: int) -> None:
        ports = self._ports()
        if port_id and port_id != self.port_id:
            if self.port_id:
                raise WasiError(Errno.EINVAL)  # Linux: a bound socket keeps its port id
            if port_id in ports:
                raise WasiError(Errno.EADDRINUSE)
            self.port_id = port_id
            ports[port_id] = self
        else:
            self.autobind()
        self.set_groups(groups)

    def set_groups(self, groups: int) -> None:
        self.groups = groups & 0xFFFFFFFF
        if self.groups and self._listener is None:
            self._listener = self._hear
            self.stack.config_listeners.append(self._listener)
        elif not self.groups and self._listener is not None:
            self.stack.config_listeners.remove(self._listener)
            self._listener = None

    # --- notifications --------------------------------------------------------------
    def _hear(self, change: ConfigChange) -> None:
        if change.kind in ("link", "dellink"):
            bit = nl.group_bit(nl.RTNLGRP_LINK)
            if self.groups & bit:
                msg_type = nl.RTM_NEWLINK if change.kind == "link" else nl.RTM_DELLINK
                self._deliver(nl.message(msg_type, 0, 0, 0, link_body(change.iface)), bit)
            return
        requester = _requester
        if change.address is not None:
            version = change.address.version
            bit = nl.group_bit(nl.RTNLGRP_IPV4_IFADDR if version == 4 else nl.RTNLGRP_IPV6_IFADDR)
            if self.groups & bit:
                msg_type = nl.RTM_NEWADDR if change.kind == "newaddr" else nl.RTM_DELADDR
                # Linux names the requester for IPv4 addresses only (IPv6's come from addrconf)
                port, seq = (requester[1:] if requester is not None
                             and requester[0] == "address" and version == 4 else (0, 0))
                self._deliver(nl.message(msg_type, 0, seq, port,
                                         address_body(change.iface, change.address)), bit)
            return
        if change.route is not None:
            version = change.route.version
            bit = nl.group_bit(nl.RTNLGRP_IPV4_ROUTE if version == 4 else nl.RTNLGRP_IPV6_ROUTE)
            if self.groups & bit:
                msg_type = nl.RTM_NEWROUTE if change.kind == "newroute" else nl.RTM_DELROUTE
                # the requested route, not the connected routes an address change makes
                port, seq = (requester[1:] if requester is not None and requester[0] == "route"
                             and change.route.source != "connected" else (0, 0))
                self._deliver(nl.message(msg_type, 0, seq, port,
                                         route_body(self.stack, change.route)), bit)

    def _deliver(self, datagram: bytes, group: int = 0) -> None:
        if self.queued_bytes + len(datagram) > self.receive_buffer or (
                not self.memory.try_charge(len(datagram))):
            if not self.options.get(NETLINK_NO_ENOBUFS):
                self.overrun = True
            self.stack.counters["netlink.drop.overrun"] += 1
        else:
            self.queue.append((datagram, group))
            self.queued_bytes += len(datagram)
        self.stack.driver.wake()

    # --- requests ------------------------------------------------------------------
    def send(self, data: bytes | memoryview, dest: object = None) -> int:
        """Process the requests of one datagram (fd_write's socket path passes dest None)."""
        if len(data) > MAX_SEND:
            raise WasiError(Errno.EMSGSIZE)
        self.autobind()
        requests, ignored = nl.split_messages(data)
        if ignored:
            # a header shorter than itself or longer than the datagram: Linux ignores the
            # rest silently; vnet counts it
            self.stack.counters["netlink.drop.malformed"] += 1
        for request in requests:
            self._handle(request)
        return len(data)

    def write(self, data: bytes | memoryview) -> int:
        return self.send(data)

    def _handle(self, request: nl.NetlinkMessage) -> None:
        ack = bool(request.flags & nl.NLM_F_ACK)
        if not request.flags & nl.NLM_F_REQUEST or request.msg_type < nl.NLMSG_MIN_TYPE:
            if ack:
                self._deliver(nl.error_message(0, request, self.port_id))
            return
        try:
            started_dump = self._dispatch(request)
        except WasiError as e:
            self.stack.counters["netlink.request.error"] += 1
            self._deliver(nl.error_message(-int(e.errno), request, self.port_id,
                                           capped=bool(self.options.get(NETLINK_CAP_ACK))))
            return
        if ack and not started_dump:
            self._deliver(nl.error_message(0, request, self.port_id))

    def _reply(self, request: nl.NetlinkMessage, msg_type: int, body: bytes) -> None:
        self._deliver(nl.message(msg_type, 0, request.seq, self.port_id, body))

    def _dispatch(self, request: nl.NetlinkMessage) -> bool:
        """Answer one request; True if it started a dump (which gets no ack)."""
        msg_type = request.msg_type
        if msg_type > nl.RTM_MAX:
            raise WasiError(Errno.ENOTSUP)
        if len(request.payload) < 1:
            return False  # Linux ignores an rtnetlink request without a family byte
        kind = (msg_type - 16) & 3
        if kind != 2:
            require_grant(self.ctx)
        if kind == 2 and request.flags & nl.NLM_F_DUMP == nl.NLM_F_DUMP:
            self._start_dump(request)
            return True
        handler = _HANDLERS.get(msg_type)
        if handler is None:
            raise WasiError(Errno.ENOTSUP)
        global _requester
        kind_of_change = _CHANGES.get(msg_type)
        _requester = (None if kind_of_change is None
                      else (kind_of_change, self.port_id, request.seq))
        try:
            handler(self, request)
        finally:
            _requester = None
        return False

    def _start_dump(self, request: nl.NetlinkMessage) -> None:
        if self.dump is not None:
            raise WasiError(Errno.EBUSY)
        family = request.payload[0]
        stack = self.stack
        bodies: list[tuple[int, bytes]] = []
        if request.msg_type == nl.RTM_GETLINK:
            bodies = [(nl.RTM_NEWLINK, link_body(stack.interfaces[i]))
                      for i in sorted(stack.interfaces)]
        elif request.msg_type == nl.RTM_GETADDR:
            for version in self._versions(family):
                for i in sorted(stack.interfaces):
                    iface = stack.interfaces[i]
                    bodies += [(nl.RTM_NEWADDR, address_body(iface, a))
                               for a in iface.addresses(version)]
        elif request.msg_type == nl.RTM_GETROUTE:
            for version in self._versions(family):
                bodies += [(nl.RTM_NEWROUTE, route_body(stack, r))
                           for r in _sorted_routes(stack, version)]
                bodies += [(nl.RTM_NEWROUTE, body) for body in _local_table(stack, version)]
        else:
            raise WasiError(Errno.ENOTSUP)
        self.dump = deque(nl.message(t, nl.NLM_F_MULTI, request.seq, self.port_id, body)
                          for t, body in bodies)
        self.dump.append(nl.done_message(request.seq, self.port_id))
        self.dump_seq = request.seq
        self.stack.driver.wake()

    @staticmethod
    def _versions(family: int) -> tuple[int, ...]:
        version = _version_of(family)
        return (4, 6) if version is None else (version,)

    def _next_dump_chunk(self) -> None:
        """Move the next datagram's worth of the running dump into the queue."""
        dump = self.dump
        assert dump is not None
        limit = max(DUMP_CHUNK_MIN, min(self.max_recv_len, DUMP_CHUNK_MAX))
        chunk = bytearray(dump.popleft())
        while dump and len(chunk) + len(dump[0]) <= limit:
            chunk += dump.popleft()
        if not dump:
            self.dump = None
        self.queue.append((bytes(chunk), 0))
        self.queued_bytes += len(chunk)
        self.memory.charge(len(chunk))  # one datagram at most: produced as the guest reads

    # --- receiving -------------------------------------------------------------------
    def recv(self, size: int, flags: int) -> tuple[bytes, int, int]:
        """(data, the datagram's full length, its group) or WasiError (EAGAIN, ENOBUFS)."""
        if self.overrun:
            self.overrun = False
            raise WasiError(Errno.ENOBUFS)
        self.max_recv_len = max(self.max_recv_len, size)
        if not self.queue and self.dump is not None:
            self._next_dump_chunk()
        if not self.queue:
            raise WasiError(Errno.EAGAIN)
        datagram, group = self.queue[0]
        if not flags & MSG_PEEK:
            self.queue.popleft()
            self.queued_bytes -= len(datagram)
            self.memory.charge(-len(datagram))
        return datagram[:size], len(datagram), group

    def read(self, size: int) -> bytes:
        return self.recv(size, 0)[0]

    def readiness_read(self) -> Readiness:
        if self.overrun:
            return Readiness(True, error=Errno.ENOBUFS)
        if self.queue:
            return Readiness(True, len(self.queue[0][0]))
        if self.dump is not None:
            return Readiness(True, 1)
        return Readiness(False)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.set_groups(0)
        if self.port_id:
            self._ports().pop(self.port_id, None)
        self.memory.charge(-(self.queued_bytes + SOCKET_OVERHEAD))
        self.queue.clear()
        self.queued_bytes = 0
        self.dump = None

    def __repr__(self) -> str:
        return f"<NetlinkDescription port {self.port_id} groups {self.groups:#x}>"


# --- request handlers (doit) ------------------------------------------------------

Handler = Callable[[NetlinkDescription, nl.NetlinkMessage], None]


def _body(request: nl.NetlinkMessage, layout: struct.Struct) -> tuple[tuple[int, ...],
                                                                        dict[int, bytes]]:
    if len(request.payload) < layout.size:
        raise WasiError(Errno.EINVAL)
    return layout.unpack_from(request.payload), nl.parse_attributes(
        request.payload[nl.align4(layout.size):])


def _find_link(sock: NetlinkDescription, index: int, attrs: dict[int, bytes]) -> Interface | None:
    if index > 0:
        return interface_by_index(sock.stack, index)
    name = nl.string_of(attrs.get(nl.IFLA_IFNAME)) or nl.string_of(attrs.get(nl.IFLA_ALT_IFNAME))
    if name is None:
        return None
    try:
        return interface_by_name(sock.stack, name)
    except WasiError:
        raise WasiError(Errno.ENODEV) from None


def get_link(sock: NetlinkDescription, request: nl.NetlinkMessage) -> None:
    (_family, _type, index, _flags, _change), attrs = _body(request, nl.IFINFOMSG)
    iface = _find_link(sock, index, attrs)
    if iface is None:
        raise WasiError(Errno.EINVAL)
    sock._reply(request, nl.RTM_NEWLINK, link_body(iface))


def set_link(sock: NetlinkDescription, request: nl.NetlinkMessage) -> None:
    (_family, _type, index, flags, change), attrs = _body(request, nl.IFINFOMSG)
    iface = _find_link(sock, index, attrs)
    if iface is None:
        if request.msg_type == nl.RTM_NEWLINK and request.flags & nl.NLM_F_CREATE:
            raise WasiError(Errno.ENOTSUP)  # creating devices: not through rtnetlink here
        raise WasiError(Errno.ENODEV)
    require_configurable(sock.ctx, iface)
    mtu = nl.u32_of(attrs.get(nl.IFLA_MTU))
    if mtu is not None:
        validate_mtu(iface, mtu)
    mac = attrs.get(nl.IFLA_ADDRESS)
    if mac is not None and (iface.mac is None or iface.is_loopback):
        raise WasiError(Errno.ENOTSUP)
    if mac is not None and (len(mac) != 6 or mac[0] & 1):
        raise WasiError(Errno.EINVAL)
    new_name = nl.string_of(attrs.get(nl.IFLA_IFNAME))
    if index > 0 and new_name is not None and new_name != iface.name:
        raise WasiError(Errno.ENOTSUP)  # renaming interfaces
    stack = sock.stack
    if mtu is not None:
        stack.set_mtu(iface, mtu)
    if mac is not None:
        stack.set_mac(iface, mac)
    if flags or change:
        combined = flags if not change else (flags & change) | (int(iface.flags) & ~change)
        change_flags(stack, iface, combined)


def delete_link(sock: NetlinkDescription, request: nl.NetlinkMessage) -> None:
    (_family, _type, index, _flags, _change), attrs = _body(request, nl.IFINFOMSG)
    iface = _find_link(sock, index, attrs)
    if iface is None:
        raise WasiError(Errno.ENODEV)
    require_configurable(sock.ctx, iface)
    raise WasiError(Errno.ENOTSUP)  # vnet's interfaces are the topology's


def _address_request(request: nl.NetlinkMessage) -> tuple[int, int, int, int, dict[int, bytes]]:
    (family, prefix_len, _flags, _scope, index), attrs = _body(request, nl.IFADDRMSG)
    version = _version_of(family)
    if version is None:
        raise WasiError(Errno.ENOTSUP)
    return version, prefix_len, index, family, attrs


def new_address(sock: NetlinkDescription, request: nl.NetlinkMessage) -> None:
    version, prefix_len, index, _family, attrs = _address_request(request)
    stack = sock.stack
    if version == 4:
        local = attrs.get(nl.IFA_LOCAL)
        if prefix_len > 32 or local is None or len(local) != 4:
            raise WasiError(Errno.EINVAL)
        peer = attrs.get(nl.IFA_ADDRESS, local)
        if len(peer) != 4:
            raise WasiError(Errno.EINVAL)
        iface = interface_by_index(stack, index)
        require_configurable(sock.ctx, iface)
        new = InterfaceAddress(local, prefix_len)
        if new in iface.ipv4:
            if request.flags & nl.NLM_F_EXCL or not request.flags & nl.NLM_F_REPLACE:
                raise WasiError(Errno.EEXIST)
            replace_ipv4(stack, iface, new, new, peer)
            return
        replace_ipv4(stack, iface, None, new, peer)
        return
    address = attrs.get(nl.IFA_LOCAL) or attrs.get(nl.IFA_ADDRESS)
    if address is None or len(address) != 16 or prefix_len > 128:
        raise WasiError(Errno.EINVAL)
    iface = interface_by_index(stack, index)
    require_configurable(sock.ctx, iface)
    if any(a.address == address for a in iface.ipv6):
        if request.flags & nl.NLM_F_EXCL or not request.flags & nl.NLM_F_REPLACE:
            raise WasiError(Errno.EEXIST)
        return
    add_ipv6(stack, iface, address, prefix_len)


def delete_address(sock: NetlinkDescription, request: nl.NetlinkMessage) -> None:
    version, prefix_len, index, _family, attrs = _address_request(request)
    stack = sock.stack
    if version == 6:
        address = attrs.get(nl.IFA_LOCAL) or attrs.get(nl.IFA_ADDRESS)
        if address is None or len(address) != 16 or prefix_len > 128:
            raise WasiError(Errno.EINVAL)
        iface = interface_by_index(stack, index)
        require_configurable(sock.ctx, iface)
        delete_ipv6(stack, iface, address, prefix_len)
        return
    iface = interface_by_index(stack, index)
    require_configurable(sock.ctx, iface)
    local = attrs.get(nl.IFA_LOCAL)
    label = nl.string_of(attrs.get(nl.IFA_LABEL))
    peer = attrs.get(nl.IFA_ADDRESS)
    for addr in iface.ipv4:
        if local is not None and local != addr.address:
            continue
        if label is not None and label != iface.name:
            continue
        if peer is not None and (prefix_len != addr.prefix_len or len(peer) != 4 or mask_address(
                peer, addr.prefix_len) != mask_address(peer_of(iface, addr), addr.prefix_len)):
            continue
        stack.remove_address(iface.name, addr)
        return
    raise WasiError(Errno.EADDRNOTAVAIL)


def _route_request(request: nl.NetlinkMessage) -> tuple[int, tuple[int, ...], dict[int, bytes]]:
    fields, attrs = _body(request, nl.RTMSG)
    version = _version_of(fields[0])
    if version is None:
        raise WasiError(Errno.ENOTSUP)
    return version, fields, attrs


def _address_attr(attrs: dict[int, bytes], attr: int, version: int) -> bytes | None:
    value = attrs.get(attr)
    if value is not None and len(value) != (4 if version == 4 else 16):
        raise WasiError(Errno.EINVAL)
    return value


def new_route(sock: NetlinkDescription, request: nl.NetlinkMessage) -> None:
    version, fields, attrs = _route_request(request)
    _fam, dst_len, _src_len, _tos, table, protocol, scope, route_type, _flags = fields
    width = 4 if version == 4 else 16
    if dst_len > width * 8:
        raise WasiError(Errno.EINVAL)
    table = nl.u32_of(attrs.get(nl.RTA_TABLE)) or table
    if table not in (nl.RT_TABLE_UNSPEC, nl.RT_TABLE_MAIN) or route_type not in (
            nl.RTN_UNSPEC, nl.RTN_UNICAST):
        raise WasiError(Errno.ENOTSUP)
    dst = _address_attr(attrs, nl.RTA_DST, version) or bytes(width)
    gateway = _address_attr(attrs, nl.RTA_GATEWAY, version)
    preferred = _address_attr(attrs, nl.RTA_PREFSRC, version)
    oif = nl.u32_of(attrs.get(nl.RTA_OIF))
    metric = nl.u32_of(attrs.get(nl.RTA_PRIORITY)) or (1024 if version == 6 else 0)
    stack = sock.stack
    if oif:
        interface_by_index(stack, oif)
    if preferred is not None and not stack.is_local_address(preferred):
        raise WasiError(Errno.EINVAL)
    if not request.flags & nl.NLM_F_CREATE and not find_routes(stack, dst, dst_len,
                                                               metric=metric):
        raise WasiError(Errno.ENOENT)
    route = add_route(sock.ctx, stack, dst, dst_len, oif or None, gateway, metric,
                      exclusive=bool(request.flags & nl.NLM_F_EXCL),
                      replace=bool(request.flags & nl.NLM_F_REPLACE), preferred_source=preferred)
    if scope == nl.RT_SCOPE_NOWHERE:
        scope = nl.RT_SCOPE_LINK if gateway is None else nl.RT_SCOPE_UNIVERSE
    remember_origin(stack, route, protocol or nl.RTPROT_BOOT, scope)


def delete_route(sock: NetlinkDescription, request: nl.NetlinkMessage) -> None:
    version, fields, attrs = _route_request(request)
    _fam, dst_len, _src_len, _tos, table, protocol, _scope, route_type, _flags = fields
    width = 4 if version == 4 else 16
    if dst_len > width * 8:
        raise WasiError(Errno.EINVAL)
    table = nl.u32_of(attrs.get(nl.RTA_TABLE)) or table
    dst = _address_attr(attrs, nl.RTA_DST, version) or bytes(width)
    gateway = _address_attr(attrs, nl.RTA_GATEWAY, version)
    oif = nl.u32_of(attrs.get(nl.RTA_OIF))
    metric = nl.u32_of(attrs.get(nl.RTA_PRIORITY))
    stack = sock.stack
    if table not in (nl.RT_TABLE_UNSPEC, nl.RT_TABLE_MAIN) or route_type not in (
            nl.RTN_UNSPEC, nl.RTN_UNICAST):
        raise WasiError(Errno.ESRCH)
    matches = [r for r in find_routes(stack, dst, dst_len, oif or None, gateway, metric)
               if not protocol or route_origin(stack, r)[0] == protocol]
    if not matches:
        raise WasiError(Errno.ESRCH)
    require_configurable(sock.ctx, stack.interfaces[matches[0].ifindex])
    stack.withdraw_route(matches[0])
    forget_origin(stack, matches[0])


def get_route(sock: NetlinkDescription, request: nl.NetlinkMessage) -> None:
    """`ip route get`: the route a packet to RTA_DST would take."""
    version, _fields, attrs = _route_request(request)
    width = 4 if version == 4 else 16
    dst = _address_attr(attrs, nl.RTA_DST, version) or bytes(width)
    stack = sock.stack
    try:
        out = stack.route_output(dst)
    except OSError as e:
        raise WasiError(Errno.ENETUNREACH if e.errno == 101 else Errno.EINVAL) from None
    local = stack.is_local_address(dst)
    gateway = out.next_hop if out.next_hop != dst else None
    body = _route_message_body(version, dst, width * 8,
                               nl.RT_TABLE_LOCAL if local else nl.RT_TABLE_MAIN,
                               nl.RTPROT_UNSPEC, nl.RT_SCOPE_UNIVERSE,
                               nl.RTN_LOCAL if local else nl.RTN_UNICAST, out.iface.index,
                               gateway, out.src, 0)
    flags_offset = 8
    body = body[:flags_offset] + struct.pack("<I", 0x200) + body[flags_offset + 4:]  # CLONED
    sock._reply(request, nl.RTM_NEWROUTE, body)


_CHANGES = {nl.RTM_NEWADDR: "address", nl.RTM_DELADDR: "address",
            nl.RTM_NEWROUTE: "route", nl.RTM_DELROUTE: "route"}

_HANDLERS: dict[int, Handler] = {
    nl.RTM_GETLINK: get_link,
    nl.RTM_NEWLINK: set_link,
    nl.RTM_SETLINK: set_link,
    nl.RTM_DELLINK: delete_link,
    nl.RTM_NEWADDR: new_address,
    nl.RTM_DELADDR: delete_address,
    nl.RTM_NEWROUTE: new_route,
    nl.RTM_DELROUTE: delete_route,
    nl.RTM_GETROUTE: get_route,
}


# --- the vnet_v1 imports the SDK calls -------------------------------------------------

def _netlink(ctx: GuestContext, fd: int) -> NetlinkDescription:
    description = ctx.fds.get(fd)
    if not isinstance(description, NetlinkDescription):
        raise WasiError(Errno.ENOTSOCK)  # the SDK then takes the ordinary socket path
    return description


def _read_sockaddr_nl(ctx: GuestContext, ptr: int, length: int) -> tuple[int, int, int]:
    if length < SOCKADDR_NL.size:
        raise WasiError(Errno.EINVAL)
    family, _pad, port_id, groups = ctx.mem.unpack(SOCKADDR_NL, ptr)
    return family, port_id, groups


@host_function(V, "netlink_open", "iii")
def netlink_open(ctx: GuestContext, sock_type: int, protocol: int, fd_ptr: int) -> int:
    """socket(AF_NETLINK, type, protocol): SOCK_RAW or SOCK_DGRAM, NETLINK_ROUTE only."""
    ctx.mem.check(fd_ptr, 4)
    if sock_type not in (_s.SOCK_RAW, _s.SOCK_DGRAM):
        return ESOCKTNOSUPPORT
    if protocol != NETLINK_ROUTE:
        raise WasiError(Errno.EPROTONOSUPPORT)
    host = _host(ctx)
    memory = guest_socket_memory(ctx, host)
    if not memory.try_charge(SOCKET_OVERHEAD):
        raise WasiError(Errno.ENOBUFS)
    description = NetlinkDescription(ctx, host, sock_type, memory)
    try:
        fd = ctx.fds.add(description)
    except WasiError:
        description.close()
        raise
    ctx.mem.write_u32(fd_ptr, fd)
    return Errno.SUCCESS


@host_function(V, "netlink_bind", "iii")
def netlink_bind(ctx: GuestContext, fd: int, addr_ptr: int, addr_len: int) -> int:
    sock = _netlink(ctx, fd)
    family, port_id, groups = _read_sockaddr_nl(ctx, addr_ptr, addr_len)
    if family != GUEST_AF_NETLINK:
        raise WasiError(Errno.EINVAL)
    sock.bind(port_id, groups)
    return Errno.SUCCESS


@host_function(V, "netlink_name", "ii")
def netlink_name(ctx: GuestContext, fd: int, addr_ptr: int) -> int:
    """getsockname(): a 12-byte sockaddr_nl (port id 0 before the socket is bound)."""
    sock = _netlink(ctx, fd)
    ctx.mem.write(addr_ptr, SOCKADDR_NL.pack(GUEST_AF_NETLINK, 0, sock.port_id, sock.groups))
    return Errno.SUCCESS


@host_function(V, "netlink_send", "iiiiiii")
def netlink_send(ctx: GuestContext, fd: int, iovs_ptr: int, iovs_len: int, flags: int,
                 addr_ptr: int, addr_len: int, size_ptr: int) -> int:
    """sendto/sendmsg to the kernel (an address, if given, must be AF_NETLINK port 0)."""
    sock = _netlink(ctx, fd)
    ctx.mem.check(size_ptr, 4)
    if addr_ptr:
        family, port_id, groups = _read_sockaddr_nl(ctx, addr_ptr, addr_len)
        if family != GUEST_AF_NETLINK:
            raise WasiError(Errno.EINVAL)
        if port_id or groups:
            raise WasiError(Errno.EPERM)  # to other sockets or groups: not for guests
    del flags  # MSG_DONTWAIT and friends: a request never waits
    iovs = ctx.mem.iovecs(iovs_ptr, iovs_len)
    total = sum(length for _, length in iovs)
    if total > MAX_SEND:
        raise WasiError(Errno.EMSGSIZE)
    data = ctx.mem.gather(iovs, 0, total)
    ctx.mem.write_u32(size_ptr, sock.send(data))
    return Errno.SUCCESS


@host_function(V, "netlink_recv", "iiiiiii")
def netlink_recv(ctx: GuestContext, fd: int, iovs_ptr: int, iovs_len: int, flags: int,
                 size_ptr: int, msg_flags_ptr: int, addr_ptr: int) -> int:
    """recv/recvfrom/recvmsg: one datagram; its full length with MSG_TRUNC, MSG_TRUNC in
    *msg_flags when it did not fit; the sender (the kernel, port 0) in a 12-byte sockaddr_nl."""
    sock = _netlink(ctx, fd)
    iovs = ctx.mem.iovecs(iovs_ptr, iovs_len)
    ctx.mem.check(size_ptr, 4)
    ctx.mem.check(msg_flags_ptr, 4)
    room = sum(length for _, length in iovs)

    def attempt() -> tuple[bytes, int, int]:
        return sock.recv(room, flags)

    if flags & MSG_DONTWAIT or sock.nonblocking:
        data, full_length, group = attempt()
    else:
        deadline = (None if sock.recv_timeout_ns is None
                    else ctx.now_ns() + sock.recv_timeout_ns)
        data, full_length, group = wait_for_io(ctx, sock, attempt, sock.readiness_read,
                                               deadline)
    ctx.mem.scatter(iovs, data)
    ctx.mem.write_u32(size_ptr, full_length if flags & MSG_TRUNC else len(data))
    ctx.mem.write_u32(msg_flags_ptr, MSG_TRUNC if full_length > len(data) else 0)
    if addr_ptr:
        ctx.mem.write(addr_ptr, SOCKADDR_NL.pack(GUEST_AF_NETLINK, 0, 0, group))
    return Errno.SUCCESS


def _set_option(sock: NetlinkDescription, level: int, name: int, raw: bytes) -> None:
    """setsockopt on a netlink socket, as Linux's netlink_setsockopt and sock_setsockopt."""
    if level == SOL_SOCKET and name in (_s.SO_RCVTIMEO, _s.SO_SNDTIMEO):
        if len(raw) < TIMEVAL.size:
            raise WasiError(Errno.EINVAL)
        seconds, micros = TIMEVAL.unpack_from(raw)
        if seconds < 0 or not 0 <= micros < 1_000_000:
            raise WasiError(Errno.EDOM)
        timeout = (seconds * 1_000_000_000 + micros * 1000) or None
        if name == _s.SO_RCVTIMEO:
            sock.recv_timeout_ns = timeout
        else:
            sock.send_timeout_ns = timeout
        return
    if len(raw) < 4:
        raise WasiError(Errno.EINVAL)
    (value,) = nl.I32.unpack_from(raw)
    if level == SOL_SOCKET:
        if name in (_s.SO_RCVBUF, getattr(_s, "SO_RCVBUFFORCE", 33)):
            sock.receive_buffer = max(2304, 2 * min(max(value, 0), RECEIVE_BUFFER))
        elif name in (_s.SO_SNDBUF, getattr(_s, "SO_SNDBUFFORCE", 32)):
            sock.send_buffer = max(4608, 2 * min(max(value, 0), RECEIVE_BUFFER))
        elif name == getattr(_s, "SO_PASSCRED", 16):
            sock.passcred = int(value != 0)
        else:
            raise WasiError(Errno.ENOPROTOOPT)
        return
    if level != SOL_NETLINK:
        raise WasiError(Errno.ENOPROTOOPT)
    if name in (NETLINK_ADD_MEMBERSHIP, NETLINK_DROP_MEMBERSHIP):
        if not 0 < value <= 64:
            raise WasiError(Errno.EINVAL)
        sock.autobind()
        if value <= 32:
            bit = nl.group_bit(value)
            sock.set_groups(sock.groups | bit if name == NETLINK_ADD_MEMBERSHIP
                            else sock.groups & ~bit)
        return
    if name in NETLINK_FLAG_OPTIONS:
        sock.options[name] = int(value != 0)
        return
    raise WasiError(Errno.ENOPROTOOPT)


def _get_option(sock: NetlinkDescription, level: int, name: int) -> bytes:
    if level == SOL_SOCKET:
        if name in (_s.SO_RCVTIMEO, _s.SO_SNDTIMEO):
            timeout = (sock.recv_timeout_ns if name == _s.SO_RCVTIMEO
                       else sock.send_timeout_ns) or 0
            return TIMEVAL.pack(timeout // 1_000_000_000, (timeout % 1_000_000_000) // 1000)
        values = {_s.SO_RCVBUF: sock.receive_buffer, _s.SO_SNDBUF: sock.send_buffer,
                  _s.SO_TYPE: sock.sock_type, getattr(_s, "SO_PROTOCOL", 38): NETLINK_ROUTE,
                  getattr(_s, "SO_DOMAIN", 39): GUEST_AF_NETLINK, _s.SO_ERROR: 0,
                  getattr(_s, "SO_PASSCRED", 16): sock.passcred}
        if name not in values:
            raise WasiError(Errno.ENOPROTOOPT)
        return nl.I32.pack(values[name])
    if level != SOL_NETLINK:
        raise WasiError(Errno.ENOPROTOOPT)
    if name == NETLINK_LIST_MEMBERSHIPS:  # rtnetlink has more than 32 groups: two words
        return nl.U32.pack(sock.groups) + bytes(4)
    if name in NETLINK_FLAG_OPTIONS:
        return nl.I32.pack(sock.options.get(name, 0))
    raise WasiError(Errno.ENOPROTOOPT)


@host_function(V, "netlink_setsockopt", "iiiii")
def netlink_setsockopt(ctx: GuestContext, fd: int, level: int, name: int, value_ptr: int,
                       value_len: int) -> int:
    sock = _netlink(ctx, fd)
    if value_len > 256:
        raise WasiError(Errno.EINVAL)
    _set_option(sock, level, name, ctx.mem.read(value_ptr, value_len))
    return Errno.SUCCESS


@host_function(V, "netlink_getsockopt", "iiiii")
def netlink_getsockopt(ctx: GuestContext, fd: int, level: int, name: int, value_ptr: int,
                       len_ptr: int) -> int:
    sock = _netlink(ctx, fd)
    capacity = ctx.mem.read_u32(len_ptr)
    data = _get_option(sock, level, name)[:capacity]
    ctx.mem.write(value_ptr, data)
    ctx.mem.write_u32(len_ptr, len(data))
    return Errno.SUCCESS
