"""Interface configuration for guests: Linux's SIOC* ioctls, and the rules rtnetlink shares.

A guest reads every interface of its own virtual host (SIOCGIF*, as `ip
addr` may) but changes only the interfaces it may configure: the names in
`GuestContext.configurable_interfaces` (a guest TUN/TAP device it created,
a NIC a test or the user granted; `EVERY_INTERFACE`, "*", for a guest run
with `vnet run --guest-net-admin`). A guest with no such name is an
unprivileged Linux process: every change is EPERM before anything else is
looked at; a guest with one gets ENODEV for an unknown name, and EPERM for
an interface that exists but is not its own. Changes go through the
stack's configuration methods (`stack.host.HostStack.set_link_up`,
`set_mtu`, `add_address`, `install_route` …), which tell rtnetlink
subscribers what changed.

The ioctl handlers take their argument as a wasm32 Linux program lays it
out: `struct ifreq` is 32 bytes (a 16-byte name, a 16-byte union whose
`struct sockaddr` has the SDK's address family numbers: AF_INET 1, AF_INET6
2), `struct ifconf` 8 bytes (length, pointer), `struct rtentry` 84 bytes
(with `rt_dev` a pointer into guest memory), `struct in6_rtmsg` 72 bytes
(on an AF_INET6 socket), `struct in6_ifreq` 24 bytes. What Linux does for
each request and mistake — which fd kinds take it (any socket for the
device requests, AF_INET sockets for the IPv4 address ones, AF_INET6 for
in6_ifreq and in6_rtmsg, a TUN fd for its own hardware address; ENOTTY on
other fds), the errno of each bad value, classful netmasks from
SIOCSIFADDR, a /32 on a point-to-point interface — was checked call by
call against a real TUN device (tests/guest/test_ifconf.py). Deliberate
difference: a broadcast address other than the subnet's on an interface
with IFF_BROADCAST is EOPNOTSUPP (vnet derives it from the prefix).

Touches the calling guest's host's stack configuration and guest memory.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import TYPE_CHECKING, cast

from stack.interface import (
    IFF_BROADCAST,
    IFF_POINTOPOINT,
    IFF_RUNNING,
    IFF_UP,
    Interface,
    InterfaceAddress,
    mask_address,
)
from stack.routing import Route

from .context import GuestContext
from .fdtable import FileDescription
from .ioctl import ioctl_handler
from .sockets import SocketDescription
from .tundev import TunFile
from .wasi_types import Errno, WasiError
from .wasix import _host

if TYPE_CHECKING:
    from stack.host import HostStack

# The SDK's address families (wasi-libc's numbering), as guest structs carry them.
GUEST_AF_UNSPEC = 0
GUEST_AF_INET = 1
GUEST_AF_INET6 = 2
GUEST_AF_NETLINK = 16

SIOCADDRT = 0x890B
SIOCDELRT = 0x890C
SIOCGIFNAME = 0x8910
SIOCGIFCONF = 0x8912
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
SIOCGIFADDR = 0x8915
SIOCSIFADDR = 0x8916
SIOCGIFDSTADDR = 0x8917
SIOCSIFDSTADDR = 0x8918
SIOCGIFBRDADDR = 0x8919
SIOCSIFBRDADDR = 0x891A
SIOCGIFNETMASK = 0x891B
SIOCSIFNETMASK = 0x891C
SIOCGIFMTU = 0x8921
SIOCSIFMTU = 0x8922
SIOCSIFHWADDR = 0x8924
SIOCGIFHWADDR = 0x8927
SIOCGIFINDEX = 0x8933
SIOCDIFADDR = 0x8936
SIOCDEVPRIVATE = 0x89F0

IFNAMSIZ = 16
IFREQ_SIZE = 32
RTENTRY_SIZE = 84
IN6_IFREQ = struct.Struct("<16sIi")
SOCKADDR_IN = struct.Struct("<HH4s8x")
IFCONF = struct.Struct("<iI")

RTF_UP = 0x1
RTF_GATEWAY = 0x2
RTF_HOST = 0x4
RTF_REJECT = 0x200

ARPHRD_ETHER = 1
ARPHRD_LOOPBACK = 772
ARPHRD_NONE = 0xFFFE

MIN_MTU = 68
MAX_MTU = 65535
#: The flags SIOCSIFFLAGS / RTM_NEWLINK may change besides IFF_UP, as Linux's
#: dev_change_flags: DEBUG, NOTRAILERS, NOARP, PROMISC, ALLMULTI, MULTICAST,
#: PORTSEL, AUTOMEDIA, DYNAMIC.
CHANGEABLE_FLAGS = 0x4 | 0x20 | 0x80 | 0x100 | 0x200 | 0x1000 | 0x2000 | 0x4000 | 0x8000


# --- who may configure what ------------------------------------------------------

#: In `configurable_interfaces`: every interface of the host (`--guest-net-admin`).
EVERY_INTERFACE = "*"


def stack_of(ctx: GuestContext) -> HostStack:
    return _host(ctx).stack


def may_configure_anything(ctx: GuestContext) -> bool:
    """Does the guest hold any configuration grant (as CAP_NET_ADMIN would)?"""
    return bool(ctx.configurable_interfaces)


def require_grant(ctx: GuestContext) -> None:
    """EPERM for a guest with no grant at all: what an unprivileged Linux process gets."""
    if not may_configure_anything(ctx):
        raise WasiError(Errno.EPERM)


def require_configurable(ctx: GuestContext, iface: Interface) -> None:
    """EPERM unless the guest may change this interface."""
    if iface.name not in ctx.configurable_interfaces and (
            EVERY_INTERFACE not in ctx.configurable_interfaces):
        raise WasiError(Errno.EPERM)


# --- lookups and what Linux reports ----------------------------------------------------

def interface_by_name(stack: HostStack, name: str) -> Interface:
    base = name.split(":", 1)[0]  # an alias label (eth0:1) names its interface
    for iface in stack.interfaces.values():
        if iface.name == base:
            return iface
    raise WasiError(Errno.ENODEV)


def interface_by_index(stack: HostStack, index: int) -> Interface:
    iface = stack.interfaces.get(index)
    if iface is None:
        raise WasiError(Errno.ENODEV)
    return iface


def link_type(iface: Interface) -> int:
    """The ARPHRD_* type: loopback, Ethernet, or none (a TUN device's)."""
    if iface.is_loopback:
        return ARPHRD_LOOPBACK
    return ARPHRD_ETHER if iface.mac is not None else ARPHRD_NONE


def reported_flags(iface: Interface) -> int:
    """IFF_* as Linux reports them: RUNNING only while the interface is up."""
    flags = int(iface.flags)
    if not flags & IFF_UP:
        flags &= ~IFF_RUNNING
    return flags


def broadcast_of(iface: Interface, addr: InterfaceAddress) -> bytes | None:
    """An IPv4 address's broadcast address, on an interface that has broadcast."""
    if addr.version != 4:
        return None
    if not int(iface.flags) & IFF_BROADCAST:
        return iface.broadcasts.get(addr.address)
    return addr.broadcast


def peer_of(iface: Interface, addr: InterfaceAddress) -> bytes:
    """IFA_ADDRESS / SIOCGIFDSTADDR: the point-to-point peer, or the address itself."""
    return iface.peers.get(addr.address, addr.address)


def classful_prefix(address: bytes) -> int | None:
    """Linux's inet_abc_len: the prefix SIOCSIFADDR gives; None for class D."""
    first = address[0]
    if address == bytes(4) or address == b"\xff\xff\xff\xff":
        return 0
    if first < 128:
        return 8
    if first < 192:
        return 16
    if first < 224:
        return 24
    if first < 240:
        return None
    return 32


def prefix_of_mask(mask: bytes) -> int | None:
    """The prefix length of a contiguous netmask, or None (Linux's bad_mask)."""
    value = int.from_bytes(mask, "big")
    inverted = ~value & 0xFFFFFFFF
    if inverted & (inverted + 1):
        return None
    return 32 - inverted.bit_length()


# --- changes (shared with rtnetlink) ------------------------------------------------------

def validate_mtu(iface: Interface, mtu: int) -> None:
    if mtu < MIN_MTU or mtu > (65536 if iface.is_loopback else MAX_MTU):
        raise WasiError(Errno.EINVAL)


def change_flags(stack: HostStack, iface: Interface, flags: int) -> None:
    """dev_change_flags: the changeable bits as given, then IFF_UP."""
    changeable = (flags & CHANGEABLE_FLAGS) | (int(iface.flags) & ~CHANGEABLE_FLAGS)
    stack.set_link_flags(iface, changeable)
    stack.set_link_up(iface, bool(flags & IFF_UP))


def replace_ipv4(stack: HostStack, iface: Interface, old: InterfaceAddress | None,
                 new: InterfaceAddress | None, peer: bytes | None,
                 broadcast: bytes | None = None) -> None:
    """Take `old` off and put `new` on (with its peer, and the broadcast address kept
    for an interface without IFF_BROADCAST), as Linux re-inserts an ifa."""
    if old is not None:
        if broadcast is None and new is not None and new.address == old.address:
            broadcast = iface.broadcasts.get(old.address)
        stack.remove_address(iface.name, old)
    if new is not None:
        if peer is not None and peer != new.address:
            iface.peers[new.address] = peer
        if broadcast is not None and not int(iface.flags) & IFF_BROADCAST:
            iface.broadcasts[new.address] = broadcast
        stack.add_address(iface.name, new)


def connected_route_prefix(iface: Interface, addr: InterfaceAddress) -> bytes:
    return mask_address(peer_of(iface, addr), addr.prefix_len)


def check_gateway(stack: HostStack, gateway: bytes, ifindex: int | None) -> int:
    """The interface a gateway is reached through (on a connected network), or
    ENETUNREACH as Linux's fib_check_nh; ENETDOWN when that interface is down."""
    for route in stack.routes.routes(4 if len(gateway) == 4 else 6):
        if route.gateway is None and (ifindex is None or route.ifindex == ifindex) and (
                route.prefix == mask_address(gateway, route.prefix_len)):
            if not stack.interfaces[route.ifindex].is_up:
                raise WasiError(Errno.ENETDOWN)
            return route.ifindex
    raise WasiError(Errno.ENETUNREACH)


def find_routes(stack: HostStack, prefix: bytes, prefix_len: int, ifindex: int | None = None,
                gateway: bytes | None = None, metric: int | None = None) -> list[Route]:
    network = mask_address(prefix, prefix_len)
    return [r for r in stack.routes.routes(4 if len(prefix) == 4 else 6)
            if r.prefix == network and r.prefix_len == prefix_len
            and (ifindex is None or r.ifindex == ifindex)
            and (gateway is None or r.gateway == gateway)
            and (metric is None or r.metric == metric)]


RTPROT_KERNEL = 2
RTPROT_BOOT = 3
RTPROT_RA = 9
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_LINK = 253

#: Where a host keeps the protocol and scope each route was installed with (rtnetlink,
#: SIOCADDRT): in its stack's annex, under this key.
ROUTE_ORIGINS = "vnet.ifconfig.route_origins"


def _route_origins(stack: HostStack) -> dict[Route, tuple[int, int]]:
    origins = stack.annex.get(ROUTE_ORIGINS)
    if origins is None:
        origins = stack.annex[ROUTE_ORIGINS] = {}
    return cast("dict[Route, tuple[int, int]]", origins)


def remember_origin(stack: HostStack, route: Route, protocol: int, scope: int) -> None:
    _route_origins(stack)[route] = (protocol, scope)


def forget_origin(stack: HostStack, route: Route) -> None:
    _route_origins(stack).pop(route, None)


def route_origin(stack: HostStack, route: Route) -> tuple[int, int]:
    """(rtnetlink protocol, scope) of a route in vnet's table: kernel for connected
    routes, what it was installed with, else boot (ra for router advertisements)."""
    if route.source == "connected":
        return RTPROT_KERNEL, RT_SCOPE_LINK
    known = _route_origins(stack).get(route)
    if known is not None:
        return known
    protocol = RTPROT_RA if route.source == "ra" else RTPROT_BOOT
    return protocol, RT_SCOPE_UNIVERSE if route.gateway else RT_SCOPE_LINK


# --- struct ifreq ------------------------------------------------------------------------

def read_name(ctx: GuestContext, ptr: int) -> str:
    raw = ctx.mem.read(ptr, IFNAMSIZ)[:IFNAMSIZ - 1]  # Linux forces ifr_name[15] = 0
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def write_sockaddr_in(ctx: GuestContext, ptr: int, address: bytes) -> None:
    ctx.mem.write(ptr, SOCKADDR_IN.pack(GUEST_AF_INET, 0, address))


def read_sockaddr_in(ctx: GuestContext, ptr: int) -> tuple[int, bytes]:
    family, _port, address = ctx.mem.unpack(SOCKADDR_IN, ptr)
    return family, bytes(address)


def _description(ctx: GuestContext, fd: int) -> FileDescription:
    """The fd's description; ENOTTY unless it is a socket (Linux sends SIOC* to sockets).

    A TUN/TAP fd answers as Linux's tun driver: EBADF (Linux: EBADFD) before
    TUNSETIFF, EINVAL for the requests it does not take (all but the hardware
    address ones, see `_tun_interface`)."""
    description = ctx.fds.get(fd)
    if isinstance(description, TunFile):
        description._attached()
        raise WasiError(Errno.EINVAL)
    if not description.is_socket:
        raise WasiError(Errno.ENOTTY)
    return description


def _tun_interface(ctx: GuestContext, fd: int) -> Interface | None:
    """The interface of an attached TUN/TAP fd (SIOC[GS]IFHWADDR on it act on its own
    device, whatever name the ifreq holds, as Linux's tun driver), or None for a socket."""
    description = ctx.fds.get(fd)
    if isinstance(description, TunFile):
        return description._attached().iface
    return None


def _family(description: FileDescription) -> int:
    """The socket's family in Linux numbering (AF_INET 2, AF_INET6 10, AF_NETLINK 16)."""
    if isinstance(description, SocketDescription):
        return description.family
    return 16


def _inet_socket(ctx: GuestContext, fd: int) -> None:
    """The requests devinet_ioctl answers exist on AF_INET sockets only (else ENOTTY)."""
    if _family(_description(ctx, fd)) != 2:
        raise WasiError(Errno.ENOTTY)


# --- requests any socket takes (Linux's dev_ioctl) ----------------------------------------

@ioctl_handler(SIOCGIFINDEX)
def get_index(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    _description(ctx, fd)
    iface = interface_by_name(stack_of(ctx), read_name(ctx, arg_ptr))
    ctx.mem.write(arg_ptr + IFNAMSIZ, struct.pack("<i", iface.index))
    return 0


@ioctl_handler(SIOCGIFNAME)
def get_name(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    _description(ctx, fd)
    (index,) = ctx.mem.unpack(struct.Struct("<i"), arg_ptr + IFNAMSIZ)
    iface = interface_by_index(stack_of(ctx), index)
    ctx.mem.write(arg_ptr, iface.name.encode()[:IFNAMSIZ - 1].ljust(IFNAMSIZ, b"\0"))
    return 0


@ioctl_handler(SIOCGIFFLAGS)
def get_flags(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    _description(ctx, fd)
    iface = interface_by_name(stack_of(ctx), read_name(ctx, arg_ptr))
    ctx.mem.write(arg_ptr + IFNAMSIZ, struct.pack("<H", reported_flags(iface) & 0xFFFF))
    return 0


@ioctl_handler(SIOCSIFFLAGS)
def set_flags(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    description = _description(ctx, fd)
    require_grant(ctx)
    stack = stack_of(ctx)
    iface = interface_by_name(stack, read_name(ctx, arg_ptr))
    require_configurable(ctx, iface)
    (flags,) = ctx.mem.unpack(struct.Struct("<H"), arg_ptr + IFNAMSIZ)
    del description
    change_flags(stack, iface, flags)
    return 0


@ioctl_handler(SIOCGIFMTU)
def get_mtu(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    _description(ctx, fd)
    iface = interface_by_name(stack_of(ctx), read_name(ctx, arg_ptr))
    ctx.mem.write(arg_ptr + IFNAMSIZ, struct.pack("<i", iface.mtu))
    return 0


@ioctl_handler(SIOCSIFMTU)
def set_mtu(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    _description(ctx, fd)
    require_grant(ctx)
    stack = stack_of(ctx)
    iface = interface_by_name(stack, read_name(ctx, arg_ptr))
    require_configurable(ctx, iface)
    (mtu,) = ctx.mem.unpack(struct.Struct("<i"), arg_ptr + IFNAMSIZ)
    validate_mtu(iface, mtu)
    stack.set_mtu(iface, mtu)
    return 0


@ioctl_handler(SIOCGIFHWADDR)
def get_hwaddr(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    iface = _tun_interface(ctx, fd)
    if iface is None:
        _description(ctx, fd)
        iface = interface_by_name(stack_of(ctx), read_name(ctx, arg_ptr))
    mac = iface.mac or bytes(6)
    ctx.mem.write(arg_ptr + IFNAMSIZ, struct.pack("<H", link_type(iface)) + mac.ljust(14, b"\0"))
    return 0


@ioctl_handler(SIOCSIFHWADDR)
def set_hwaddr(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    stack = stack_of(ctx)
    iface = _tun_interface(ctx, fd)  # the device's own fd needs no grant
    if iface is None:
        _description(ctx, fd)
        require_grant(ctx)
        iface = interface_by_name(stack, read_name(ctx, arg_ptr))
        require_configurable(ctx, iface)
    raw = ctx.mem.read(arg_ptr + IFNAMSIZ, 16)
    if iface.mac is None or iface.is_loopback:
        raise WasiError(Errno.ENOTSUP)  # no link-layer address to set (TUN, lo)
    (family,) = struct.unpack_from("<H", raw)
    mac = raw[2:8]
    if family != ARPHRD_ETHER or mac[0] & 1 or mac == bytes(6):
        raise WasiError(Errno.EINVAL if family != ARPHRD_ETHER else Errno.EADDRNOTAVAIL)
    stack.set_mac(iface, mac)
    return 0


@ioctl_handler(*range(SIOCDEVPRIVATE, SIOCDEVPRIVATE + 16))
def device_private(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    """SIOCDEVPRIVATE…+15: a driver's own requests, which no vnet interface has."""
    _description(ctx, fd)
    interface_by_name(stack_of(ctx), read_name(ctx, arg_ptr))
    raise WasiError(Errno.ENOTSUP)


@ioctl_handler(SIOCGIFCONF)
def get_conf(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    """Each IPv4 address as one ifreq (name, address); a NULL buffer asks the size."""
    _description(ctx, fd)
    length, buf = ctx.mem.unpack(IFCONF, arg_ptr)
    stack = stack_of(ctx)
    entries = [(iface.name, a.address) for index in sorted(stack.interfaces)
               for iface in (stack.interfaces[index],) for a in iface.ipv4]
    if buf == 0:
        ctx.mem.write(arg_ptr, struct.pack("<i", len(entries) * IFREQ_SIZE))
        return 0
    if length < 0:
        raise WasiError(Errno.EINVAL)
    fit = min(len(entries), length // IFREQ_SIZE)
    out = bytearray()
    for name, address in entries[:fit]:
        out += name.encode()[:IFNAMSIZ - 1].ljust(IFNAMSIZ, b"\0")
        out += SOCKADDR_IN.pack(GUEST_AF_INET, 0, address)
    ctx.mem.write(buf, out)
    ctx.mem.write(arg_ptr, struct.pack("<i", len(out)))
    return 0


# --- IPv4 addresses (Linux's devinet_ioctl, AF_INET sockets) ----------------------------

_GETS = (SIOCGIFADDR, SIOCGIFBRDADDR, SIOCGIFDSTADDR, SIOCGIFNETMASK)
_SETS = (SIOCSIFADDR, SIOCSIFDSTADDR, SIOCSIFNETMASK, SIOCSIFBRDADDR)


def _label_address(iface: Interface, wanted: bytes | None) -> InterfaceAddress | None:
    """The address an ioctl acts on: the one equal to `wanted` (4.4BSD style), else the first."""
    if wanted is not None:
        for a in iface.ipv4:
            if a.address == wanted:
                return a
    return iface.ipv4[0] if iface.ipv4 else None


def ipv4_address_request(ctx: GuestContext, fd: int, request: int, arg_ptr: int) -> int:
    description = _description(ctx, fd)
    family = _family(description)
    if request == SIOCSIFADDR and family == 10:
        return ipv6_address_request(ctx, request, arg_ptr)
    if family != 2:
        raise WasiError(Errno.ENOTTY)
    name = read_name(ctx, arg_ptr)
    sa_family, sa_address = read_sockaddr_in(ctx, arg_ptr + IFNAMSIZ)
    if request in _SETS:
        require_grant(ctx)
        if sa_family != GUEST_AF_INET:
            raise WasiError(Errno.EINVAL)
    stack = stack_of(ctx)
    iface = interface_by_name(stack, name)
    addr = _label_address(iface, sa_address if sa_family == GUEST_AF_INET else None)
    if addr is None and request != SIOCSIFADDR:
        raise WasiError(Errno.EADDRNOTAVAIL)
    result_ptr = arg_ptr + IFNAMSIZ
    if request == SIOCGIFADDR:
        assert addr is not None
        write_sockaddr_in(ctx, result_ptr, addr.address)
        return 0
    if request == SIOCGIFBRDADDR:
        assert addr is not None
        write_sockaddr_in(ctx, result_ptr, broadcast_of(iface, addr) or bytes(4))
        return 0
    if request == SIOCGIFDSTADDR:
        assert addr is not None
        write_sockaddr_in(ctx, result_ptr, peer_of(iface, addr))
        return 0
    if request == SIOCGIFNETMASK:
        assert addr is not None
        write_sockaddr_in(ctx, result_ptr, mask_address(b"\xff" * 4, addr.prefix_len))
        return 0
    require_configurable(ctx, iface)
    if request == SIOCSIFADDR:
        prefix = classful_prefix(sa_address)
        if prefix is None:
            raise WasiError(Errno.EINVAL)
        if addr is not None and addr.address == sa_address:
            return 0
        if int(iface.flags) & IFF_POINTOPOINT:
            prefix = 32
        if sa_address == bytes(4):  # "ifconfig tun0 0.0.0.0": the address goes away
            replace_ipv4(stack, iface, addr, None, None)
            return 0
        replace_ipv4(stack, iface, addr, InterfaceAddress(sa_address, prefix), None)
        return 0
    assert addr is not None
    if request == SIOCSIFDSTADDR:
        if peer_of(iface, addr) == sa_address:
            return 0
        if classful_prefix(sa_address) is None:
            raise WasiError(Errno.EINVAL)
        replace_ipv4(stack, iface, addr, addr, sa_address)
        return 0
    if request == SIOCSIFBRDADDR:
        # vnet derives the broadcast address from the prefix: setting that one (or any, on
        # an interface without IFF_BROADCAST, where Linux keeps but never uses it) is
        # accepted; another one is not something vnet can do
        if int(iface.flags) & IFF_BROADCAST:
            if sa_address != addr.broadcast:
                raise WasiError(Errno.ENOTSUP)
        elif sa_address != iface.broadcasts.get(addr.address):
            replace_ipv4(stack, iface, addr, addr, iface.peers.get(addr.address), sa_address)
        return 0
    # SIOCSIFNETMASK
    prefix = prefix_of_mask(sa_address)
    if prefix is None:
        raise WasiError(Errno.EINVAL)
    if prefix != addr.prefix_len:
        replace_ipv4(stack, iface, addr, InterfaceAddress(addr.address, prefix),
                     iface.peers.get(addr.address))
    return 0


def _register_ipv4(request: int) -> None:
    @ioctl_handler(request)
    def handler(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
        return ipv4_address_request(ctx, fd, request, arg_ptr)


for _request in (*_GETS, *_SETS):
    _register_ipv4(_request)


# --- IPv6 addresses: struct in6_ifreq on an AF_INET6 socket ------------------------------

def ipv6_address_request(ctx: GuestContext, request: int, arg_ptr: int) -> int:
    require_grant(ctx)
    raw_address, prefix_len, ifindex = ctx.mem.unpack(IN6_IFREQ, arg_ptr)
    address = bytes(raw_address)
    if prefix_len > 128:
        raise WasiError(Errno.EINVAL)
    stack = stack_of(ctx)
    iface = interface_by_index(stack, ifindex)
    require_configurable(ctx, iface)
    if request == SIOCSIFADDR:
        add_ipv6(stack, iface, address, prefix_len)
    else:
        delete_ipv6(stack, iface, address, prefix_len)
    return 0


def add_ipv6(stack: HostStack, iface: Interface, address: bytes, prefix_len: int) -> None:
    ip = ipaddress.IPv6Address(address)
    if ip.is_unspecified or ip.is_multicast or (ip.is_loopback and not iface.is_loopback):
        raise WasiError(Errno.EADDRNOTAVAIL)
    if any(a.address == address for a in iface.ipv6):
        raise WasiError(Errno.EEXIST)
    stack.add_address(iface.name, InterfaceAddress(address, prefix_len))


def delete_ipv6(stack: HostStack, iface: Interface, address: bytes, prefix_len: int) -> None:
    for a in iface.ipv6:
        if a.address == address and a.prefix_len == prefix_len:
            stack.remove_address(iface.name, a)
            return
    raise WasiError(Errno.EADDRNOTAVAIL)


@ioctl_handler(SIOCDIFADDR)
def delete_address(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    if _family(_description(ctx, fd)) != 10:
        raise WasiError(Errno.ENOTTY)
    return ipv6_address_request(ctx, SIOCDIFADDR, arg_ptr)


# --- routes: struct rtentry on an AF_INET socket (Linux's ip_rt_ioctl) ------------------

IN6_RTMSG_SIZE = 72  # wasm32: rtmsg_info is a 4-byte unsigned long
IP6_RT_PRIO_USER = 1024


def route6_request(ctx: GuestContext, request: int, arg_ptr: int) -> int:
    """SIOCADDRT / SIOCDELRT with a `struct in6_rtmsg` on an AF_INET6 socket."""
    require_grant(ctx)
    raw = ctx.mem.read(arg_ptr, IN6_RTMSG_SIZE)
    dst, gateway = raw[0:16], raw[32:48]
    dst_len, _src_len, metric = struct.unpack_from("<HHI", raw, 52)
    flags, ifindex = struct.unpack_from("<Ii", raw, 64)
    stack = stack_of(ctx)
    gw = gateway if flags & RTF_GATEWAY else None
    if request == SIOCDELRT:
        matches = [r for r in find_routes(stack, mask_address(dst, min(dst_len, 128)),
                                          min(dst_len, 128), ifindex or None, gw,
                                          metric or None)
                   if route_origin(stack, r)[0] == RTPROT_BOOT]
        if dst_len > 128 or not matches:
            raise WasiError(Errno.ESRCH)
        require_configurable(ctx, stack.interfaces[matches[0].ifindex])
        stack.withdraw_route(matches[0])
        forget_origin(stack, matches[0])
        return 0
    if dst_len > 128:
        raise WasiError(Errno.EINVAL)
    if ifindex:
        interface_by_index(stack, ifindex)
    if gw is not None and gw[:2] == b"\xfe\x80" and ifindex:
        gw_ifindex: int | None = ifindex  # a link-local gateway is on the link named
    elif gw is not None:
        try:
            gw_ifindex = check_gateway(stack, gw, ifindex or None)
        except WasiError as e:
            raise WasiError(Errno.EHOSTUNREACH if e.errno == Errno.ENETUNREACH
                            else e.errno) from None
    else:
        gw_ifindex = ifindex or None
    route = add_route(ctx, stack, mask_address(dst, dst_len), dst_len, gw_ifindex, None,
                      metric or IP6_RT_PRIO_USER, exclusive=False, replace=False,
                      gateway_checked=gw)
    remember_origin(stack, route, RTPROT_BOOT, RT_SCOPE_UNIVERSE)
    return 0


def route_request(ctx: GuestContext, fd: int, request: int, arg_ptr: int) -> int:
    family = _family(_description(ctx, fd))
    if family == 10:
        return route6_request(ctx, request, arg_ptr)
    if family != 2:
        raise WasiError(Errno.ENOTTY)
    require_grant(ctx)
    raw = ctx.mem.read(arg_ptr, RTENTRY_SIZE)
    dst_family, _, dst = SOCKADDR_IN.unpack_from(raw, 4)
    gw_family, _, gateway = SOCKADDR_IN.unpack_from(raw, 20)
    mask_family, _, mask = SOCKADDR_IN.unpack_from(raw, 36)
    (flags,) = struct.unpack_from("<H", raw, 52)
    (metric,) = struct.unpack_from("<h", raw, 64)
    (dev_ptr,) = struct.unpack_from("<I", raw, 68)
    if dst_family != GUEST_AF_INET:
        raise WasiError(Errno.EAFNOSUPPORT)
    prefix_len = 32
    if not flags & RTF_HOST:
        if mask_family != GUEST_AF_INET and (mask != bytes(4) or mask_family):
            raise WasiError(Errno.EAFNOSUPPORT)
        plen = prefix_of_mask(mask)
        if plen is None or mask_address(dst, plen) != dst:
            raise WasiError(Errno.EINVAL)
        prefix_len = plen
    if flags & RTF_REJECT:
        raise WasiError(Errno.ENOTSUP)  # unreachable routes: not in vnet's table
    stack = stack_of(ctx)
    ifindex: int | None = None
    if dev_ptr:
        size = ctx.mem.size
        name_bytes = ctx.mem.read(dev_ptr, min(IFNAMSIZ, max(0, size - dev_ptr)) or 1)
        name = name_bytes[:IFNAMSIZ - 1].split(b"\0", 1)[0].decode("utf-8", "replace")
        ifindex = interface_by_name(stack, name).index
    gw: bytes | None = gateway if gw_family == GUEST_AF_INET and gateway != bytes(4) else None
    route_metric = metric - 1 if metric > 0 else 0
    if request == SIOCDELRT:
        matches = find_routes(stack, dst, prefix_len, ifindex, gw,
                              route_metric if metric else None)
        if not matches:
            raise WasiError(Errno.ESRCH)
        require_configurable(ctx, stack.interfaces[matches[0].ifindex])
        stack.withdraw_route(matches[0])
        return 0
    if flags & RTF_GATEWAY and gw is None:
        raise WasiError(Errno.EINVAL)
    add_route(ctx, stack, dst, prefix_len, ifindex, gw, route_metric, exclusive=False,
              replace=False)
    return 0


def add_route(ctx: GuestContext, stack: HostStack, dst: bytes, prefix_len: int,
              ifindex: int | None, gateway: bytes | None, metric: int, *, exclusive: bool,
              replace: bool, preferred_source: bytes | None = None,
              gateway_checked: bytes | None = None) -> Route:
    """Install a unicast route as Linux's fib_table_insert; EPERM, ENODEV, ENETUNREACH,
    ENETDOWN or EEXIST as Linux for the same request. `gateway_checked`: a gateway the
    caller already found `ifindex` for."""
    if gateway is not None:
        ifindex = check_gateway(stack, gateway, ifindex)
    else:
        gateway = gateway_checked
    if ifindex is None:
        raise WasiError(Errno.ENODEV)
    iface = interface_by_index(stack, ifindex)
    if not iface.is_up:
        raise WasiError(Errno.ENETDOWN)
    require_configurable(ctx, iface)
    route = Route(mask_address(dst, prefix_len), prefix_len, ifindex, gateway, metric,
                  preferred_source=preferred_source)
    same_key = find_routes(stack, dst, prefix_len, metric=metric)
    if route in same_key or (same_key and exclusive):
        raise WasiError(Errno.EEXIST)
    if same_key and replace:
        for old in same_key:
            require_configurable(ctx, stack.interfaces[old.ifindex])
            stack.withdraw_route(old)
    stack.install_route(route)
    return route


def _register_route(request: int) -> None:
    @ioctl_handler(request)
    def handler(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
        return route_request(ctx, fd, request, arg_ptr)


for _request in (SIOCADDRT, SIOCDELRT):
    _register_route(_request)

__all__ = [
    "EVERY_INTERFACE", "GUEST_AF_INET", "GUEST_AF_INET6", "GUEST_AF_NETLINK", "GUEST_AF_UNSPEC",
    "add_ipv6", "add_route", "broadcast_of", "change_flags", "delete_ipv6", "find_routes",
    "forget_origin", "interface_by_index", "interface_by_name", "link_type", "peer_of",
    "remember_origin", "replace_ipv4", "reported_flags", "require_configurable",
    "require_grant", "route_origin", "stack_of", "validate_mtu",
]
