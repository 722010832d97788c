"""`/dev/net/tun` for guests: the clone device, TUNSETIFF and friends, with Linux's rules.

A guest granted a device (`GuestConfig.devices`, `vnet run --guest-tun`, a
topology's `devices` key) sees `/dev/net/tun` (vnet.guest.devfs); opening it
gives a `TunFile`, an fd in the guest's one fd table that is attached to
nothing until `ioctl(fd, TUNSETIFF, &ifr)` creates the interface
(`vnet.link.guest_tun.GuestTunDevice`) on the guest's virtual host. Then
`read`/`write` move one packet (TUN) or frame (TAP) per call, `poll`/`select`
see the receive queue, O_NONBLOCK gives EAGAIN, and closing the fd removes
the interface.

The ioctls and their errors follow Linux's tun driver (drivers/net/tun.c),
checked against a real device by tests/kernel/test_guest_tun_ioctl.py:

- TUNSETIFF: `ifr_flags` must hold IFF_TUN or IFF_TAP (both: TUN), else
  EINVAL; IFF_NO_PI drops the 4-byte `struct tun_pi`; IFF_ONE_QUEUE and
  unknown bits are ignored (and echoed back, as Linux). The name is cut to 15
  bytes; empty means `tun%d`/`tap%d`, and `%d` is filled with the lowest free
  number, as Linux names devices. A second TUNSETIFF on the same fd is
  EEXIST; a name that is another guest's live device is EBUSY (EINVAL if its
  kind differs), a name of one of the host's other interfaces (`eth0`, `lo`)
  EINVAL, an invalid name EINVAL. The name (filled in) is written back.
- The capability: creating a device needs a grant for exactly that name and
  kind; without it TUNSETIFF is EPERM (Linux without CAP_NET_ADMIN). Without
  any grant `/dev/net/tun` does not exist (ENOENT, as on a host without the
  tun module).
- Deliberate differences: IFF_MULTI_QUEUE, IFF_VNET_HDR, IFF_NAPI and
  IFF_NAPI_FRAGS are not supported, so TUNGETFEATURES does not list them and
  TUNSETIFF refuses them with EINVAL (as a kernel without the feature);
  TUNSETPERSIST(1) is EPERM (a sandbox's device never outlives its fd),
  TUNSETPERSIST(0), TUNSETOWNER, TUNSETGROUP and TUNSETNOCSUM succeed and
  change nothing, TUNSETOFFLOAD accepts only 0. Where Linux answers EBADFD (an
  fd not attached yet: read, write, TUNGETIFF, TUNSET*), vnet answers EBADF:
  WASI has no EBADFD.

Reads and writes (Linux's): a read returns the next packet cut to the buffer
(the rest is lost); with packet information a buffer shorter than 4 bytes is
EINVAL and a cut packet has TUN_PKT_STRIP set; a zero-length read returns 0
and consumes nothing. Write errors are in `GuestTunDevice.write`.

The device's name goes into `ctx.configurable_interfaces`, the set of
interfaces the guest may configure with SIOCS* ioctls and rtnetlink.

May touch: the calling guest's fd table, its memory (the ifreq), its host's
stack through GuestTunDevice.
"""

from __future__ import annotations

import re
import weakref
from typing import TYPE_CHECKING

from vnet.link.guest_tun import DeviceWriteError, GuestDeviceGrant, GuestTunDevice

from .context import GuestContext
from .fdtable import FileDescription, Readiness
from .ioctl import ioctl_handler
from .wasi_types import RIGHTS_REGULAR_FILE_BASE, Errno, Filetype, WasiError

if TYPE_CHECKING:
    from vnet.network import Host

# <linux/if_tun.h>
TUNSETNOCSUM = 0x400454C8
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
TUNSETOWNER = 0x400454CC
TUNSETGROUP = 0x400454CE
TUNGETFEATURES = 0x800454CF
TUNSETOFFLOAD = 0x400454D0
TUNGETIFF = 0x800454D2

IFF_TUN = 0x0001
IFF_TAP = 0x0002
IFF_NAPI = 0x0010
IFF_NAPI_FRAGS = 0x0020
IFF_MULTI_QUEUE = 0x0100
IFF_NO_PI = 0x1000
IFF_ONE_QUEUE = 0x2000
IFF_VNET_HDR = 0x4000
#: What TUNGETFEATURES reports: the flags TUNSETIFF takes.
FEATURES = IFF_TUN | IFF_TAP | IFF_NO_PI | IFF_ONE_QUEUE
_UNSUPPORTED = IFF_MULTI_QUEUE | IFF_VNET_HDR | IFF_NAPI | IFF_NAPI_FRAGS

IFNAMSIZ = 16
IFREQ_FLAGS_OFFSET = 16
#: The part of struct ifreq these requests read and write: the name and ifr_flags.
IFREQ_NAME_AND_FLAGS = IFNAMSIZ + 2

GRANTS_KEY = "device_grants"

_ERRNO = {"EINVAL": Errno.EINVAL, "EIO": Errno.EIO}
_NAME_OK = re.compile(r"^[^/:\s]+$")

#: Each host's live guest devices by name (a name is EBUSY while its fd is open).
_LIVE: weakref.WeakKeyDictionary[Host, dict[str, GuestTunDevice]] = weakref.WeakKeyDictionary()


def grants(ctx: GuestContext) -> list[GuestDeviceGrant]:
    """The devices this guest may create (empty: /dev/net/tun does not exist for it)."""
    found = ctx.extensions.get(GRANTS_KEY)
    return list(found) if found else []


class TunFile(FileDescription):
    """An open /dev/net/tun: unattached until TUNSETIFF, then one device's packets."""

    def __init__(self, ctx: GuestContext, readable: bool = True, writable: bool = True) -> None:
        super().__init__()
        self.filetype = Filetype.CHARACTER_DEVICE
        self.rights_base = int(RIGHTS_REGULAR_FILE_BASE)
        self.ctx = ctx
        self.readable = readable
        self.writable = writable
        self.device: GuestTunDevice | None = None
        self.requested_flags = 0

    def _attached(self) -> GuestTunDevice:
        if self.device is None:
            raise WasiError(Errno.EBADF)  # Linux: EBADFD
        return self.device

    def read(self, size: int) -> bytes:
        device = self._attached()
        if size == 0:
            return b""
        try:
            packet = device.read(size)
        except DeviceWriteError as e:
            raise WasiError(_ERRNO[e.errno_name]) from None
        if packet is None:
            raise WasiError(Errno.EAGAIN)
        return packet

    def write(self, data: bytes | memoryview) -> int:
        device = self._attached()
        try:
            return device.write(bytes(data))
        except DeviceWriteError as e:
            raise WasiError(_ERRNO[e.errno_name]) from None

    def readiness_read(self) -> Readiness:
        if self.device is None:
            return Readiness(False, error=Errno.EBADF)
        pending = self.device.readable()
        return Readiness(pending > 0, pending)

    def readiness_write(self) -> Readiness:
        if self.device is None:
            return Readiness(False, error=Errno.EBADF)
        return Readiness(True)

    def attach(self, device: GuestTunDevice, flags: int) -> None:
        self.device = device
        self.requested_flags = flags
        _LIVE.setdefault(device.host, {})[device.name] = device
        self.ctx.configurable_interfaces.add(device.name)

    def close(self) -> None:
        device, self.device = self.device, None
        if device is None:
            return
        live = _LIVE.get(device.host, {})
        if live.get(device.name) is device:
            del live[device.name]
        self.ctx.configurable_interfaces.discard(device.name)
        device.close()


def _tun_file(ctx: GuestContext, fd: int) -> TunFile:
    description = ctx.fds.get(fd)
    if not isinstance(description, TunFile):
        raise WasiError(Errno.ENOTTY)
    return description


def _read_ifreq(ctx: GuestContext, arg_ptr: int) -> tuple[bytes, int]:
    ctx.mem.check(arg_ptr, IFREQ_NAME_AND_FLAGS)
    raw = ctx.mem.read(arg_ptr, IFREQ_NAME_AND_FLAGS)
    name = raw[:IFNAMSIZ - 1].split(b"\0", 1)[0]  # Linux sets ifr_name[15] = 0
    flags = int.from_bytes(raw[IFNAMSIZ:IFNAMSIZ + 2], "little")
    return name, flags


def _fill_in_name(host: Host, pattern: str) -> str:
    """Linux's dev_alloc_name: one '%d' becomes the lowest number no interface uses."""
    if pattern.count("%") != 1 or "%d" not in pattern:
        raise WasiError(Errno.EINVAL)
    taken = {iface.name for iface in host.stack.interfaces.values()}
    for number in range(32768):
        name = pattern.replace("%d", str(number))
        if len(name) >= IFNAMSIZ:
            break
        if name not in taken:
            return name
    raise WasiError(Errno.ENFILE)


@ioctl_handler(TUNSETIFF)
def tunsetiff(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    tun = _tun_file(ctx, fd)
    raw_name, flags = _read_ifreq(ctx, arg_ptr)
    if tun.device is not None:
        raise WasiError(Errno.EEXIST)
    host = ctx.extensions.get("host")
    if host is None:
        raise WasiError(Errno.ENODEV)
    try:
        name = raw_name.decode()
    except UnicodeDecodeError:
        raise WasiError(Errno.EINVAL) from None
    existing = next((i for i in host.stack.interfaces.values() if i.name == name), None)
    if existing is not None:
        live = _LIVE.get(host, {}).get(name)
        if live is None:
            raise WasiError(Errno.EINVAL)  # a NIC or lo: not a tun device
        wanted = "tap" if not flags & IFF_TUN and flags & IFF_TAP else "tun"
        raise WasiError(Errno.EBUSY if wanted == live.grant.kind else Errno.EINVAL)
    if not grants(ctx):
        raise WasiError(Errno.EPERM)
    if flags & IFF_TUN:
        kind = "tun"
    elif flags & IFF_TAP:
        kind = "tap"
    else:
        raise WasiError(Errno.EINVAL)
    if flags & _UNSUPPORTED:
        raise WasiError(Errno.EINVAL)
    if not name:
        name = f"{kind}%d"
    if "%" in name:
        name = _fill_in_name(host, name)
    if name in (".", "..") or not _NAME_OK.match(name):
        raise WasiError(Errno.EINVAL)
    grant = next((g for g in grants(ctx) if g.name == name and g.kind == kind), None)
    if grant is None:
        raise WasiError(Errno.EPERM)
    device = GuestTunDevice(host, grant, name, packet_info=not flags & IFF_NO_PI)
    tun.attach(device, flags)
    ctx.mem.write(arg_ptr, name.encode().ljust(IFNAMSIZ, b"\0"))
    return 0


@ioctl_handler(TUNGETIFF)
def tungetiff(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    tun = _tun_file(ctx, fd)
    device = tun._attached()
    ctx.mem.check(arg_ptr, IFREQ_NAME_AND_FLAGS)
    kind = IFF_TAP if device.is_tap else IFF_TUN
    flags = kind | (tun.requested_flags & (IFF_NO_PI | IFF_ONE_QUEUE))
    ctx.mem.write(arg_ptr, device.name.encode().ljust(IFNAMSIZ, b"\0")
                  + flags.to_bytes(2, "little"))
    return 0


@ioctl_handler(TUNGETFEATURES)
def tungetfeatures(ctx: GuestContext, fd: int, arg_ptr: int) -> int:
    _tun_file(ctx, fd)
    ctx.mem.check(arg_ptr, 4)
    ctx.mem.write_u32(arg_ptr, FEATURES)
    return 0


@ioctl_handler(TUNSETPERSIST)
def tunsetpersist(ctx: GuestContext, fd: int, value: int) -> int:
    _tun_file(ctx, fd)._attached()
    if value:
        raise WasiError(Errno.EPERM)  # a guest's device never outlives its fd
    return 0


@ioctl_handler(TUNSETOWNER, TUNSETGROUP, TUNSETNOCSUM)
def tunset_accepted(ctx: GuestContext, fd: int, _value: int) -> int:
    """Owner, group and checksum settings: accepted, nothing to change in a sandbox."""
    _tun_file(ctx, fd)._attached()
    return 0


@ioctl_handler(TUNSETOFFLOAD)
def tunsetoffload(ctx: GuestContext, fd: int, value: int) -> int:
    _tun_file(ctx, fd)._attached()
    if value:
        raise WasiError(Errno.EINVAL)  # no checksum or segmentation offload
    return 0
