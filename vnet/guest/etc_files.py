"""A guest's `/etc`: a synthetic, read-only preopen with `resolv.conf` and `hosts`.

A guest on a virtual host gets a preopened directory `/etc` that exists on
no disk, showing the host's resolver list (`HostStack.dns_servers`, set by
`Host.set_resolvers`, a topology's `resolvers = [...]`, `Network.dns(...,
clients=)`, `vnet run --resolver`, or learned from DHCP or RA's RDNSS —
also after the guest started):

- `resolv.conf`: a first line `# vnet resolv.conf for host NAME` (the
  SDK's resolver uses only a resolv.conf that starts so, never one of the
  real machine's a guest may see through a preopened host directory), one
  `nameserver ADDRESS` line per resolver (at most three, as glibc reads),
  then `options timeout:1 attempts:2`;
- `hosts`: `localhost` on 127.0.0.1 and ::1, and the host's own name on
  each of its addresses, as a Linux host's /etc/hosts has them. Other hosts
  of the topology are not listed: their names come from DNS, on the wire.

Contents are made when a file is opened, so a changed resolver list shows
at the next open. Everything that would write is EROFS (a read-only mount
on Linux); `..` is EPERM, an unknown name ENOENT.

Like vnet's /dev (vnet.guest.devfs), the directory sits at a fixed, high fd
(`ETC_DIR_FD`, not counted against --max-fds), so the fds a program opens
are numbered as on Linux; the SDK registers it as the preopen for "/etc"
from a constructor (vnet/sdk/src/etcfs.c) when `fd_prestat_get` finds it
there; a guest not built with the SDK finds it with `fd_prestat_get` too.
`install_etc` (called by `vnet.guest.runtime`) puts it there for every
guest on a host that was given no `/etc` (or `/`) of its own. With no
resolvers its resolv.conf lists no nameserver, and the SDK's getaddrinfo
asks the host call, as before DNS went on the wire. Touches no host file:
only the host's stack, read.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from .fdtable import Filestat
from .fs import Directory, DirEntry, OpenRequest, RegularFile
from .wasi_types import (
    FDFLAGS_APPEND,
    OFLAGS_CREAT,
    OFLAGS_DIRECTORY,
    OFLAGS_EXCL,
    OFLAGS_TRUNC,
    Errno,
    Filetype,
    WasiError,
)

if TYPE_CHECKING:
    from vnet.network import Host

    from .context import GuestContext

__all__ = ["ETC_DIR_FD", "EtcDirectory", "hosts_text", "install_etc", "resolv_conf_text",
           "wants_etc"]

GUEST_PATH = "/etc"
#: Where /etc sits in the fd table: must equal VNET_ETC_DIR_FD in vnet/sdk/src/etcfs.c
#: (just below /dev's, vnet.guest.devfs.DEV_DIR_FD).
ETC_DIR_FD = 0x3FFFFFFE  # above any fd limit, as /dev's
MAX_NAMESERVERS = 3  # glibc's MAXNS
_DEV = 0x7665  # "ve": a device number no host file system has
_INODES = {".": 1, "hosts": 2, "resolv.conf": 3}


#: The first line of the resolv.conf vnet writes: the SDK's resolver trusts only such a file.
RESOLV_MARK = "# vnet resolv.conf"


def resolv_conf_text(host: Host) -> bytes:
    lines = [f"{RESOLV_MARK} for host {host.name}"]
    lines += [f"nameserver {ipaddress.ip_address(a)}"
             for a in host.stack.dns_servers[:MAX_NAMESERVERS]]
    lines.append("options timeout:1 attempts:2")
    return ("\n".join(lines) + "\n").encode()


def hosts_text(host: Host) -> bytes:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    for iface in host.stack.interfaces.values():
        if iface.is_loopback:
            continue
        for a in iface.addresses():
            if a.address[:2] != b"\xfe\x80":
                lines.append(f"{ipaddress.ip_address(a.address)}\t{host.name}")
    return ("\n".join(lines) + "\n").encode()


def wants_etc(host: Host | None, preopens: list[tuple[str, str]]) -> bool:
    """A guest gets the synthetic /etc when it runs on a host and has no /etc of its own."""
    stack = getattr(host, "stack", None)
    if stack is None or not hasattr(stack, "dns_servers"):
        return False
    return not any(seen.rstrip("/") in ("", "/etc") for _real, seen in preopens)


def install_etc(ctx: GuestContext, host: Host | None, preopens: list[tuple[str, str]]) -> None:
    """Put the synthetic /etc at ETC_DIR_FD when the guest gets one (see `wants_etc`)."""
    if host is not None and wants_etc(host, preopens):
        ctx.fds.add_at(ETC_DIR_FD, EtcDirectory(host), preopen_name=GUEST_PATH)


def _stat(filetype: Filetype, ino: int, size: int) -> Filestat:
    return Filestat(_DEV, ino, filetype, 1, size, 0, 0, 0)


class EtcFile(RegularFile):
    """A read-only file whose bytes live in memory."""

    def __init__(self, name: str, data: bytes, fdflags: int = 0) -> None:
        super().__init__(-1, fdflags & FDFLAGS_APPEND, readable=True, writable=False)
        self.name = name
        self.data = data
        self.position = 0

    def set_fdflags(self, flags: int) -> None:
        self.fdflags = flags

    def read(self, size: int) -> bytes:
        chunk = self.data[self.position:self.position + size]
        self.position += len(chunk)
        return chunk

    def write(self, data: bytes | memoryview) -> int:
        raise WasiError(Errno.EBADF)

    def pread(self, size: int, offset: int) -> bytes:
        return self.data[offset:offset + size]

    def pwrite(self, data: bytes | memoryview, offset: int) -> int:
        raise WasiError(Errno.EBADF)

    def seek(self, offset: int, whence: int) -> int:
        base = (0, self.position, len(self.data))[whence] if 0 <= whence <= 2 else None
        if base is None or base + offset < 0:
            raise WasiError(Errno.EINVAL)
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def sync(self) -> None:
        pass

    def datasync(self) -> None:
        pass

    def advise(self, offset: int, length: int, advice: int) -> None:
        pass

    def filestat(self) -> Filestat:
        return _stat(Filetype.REGULAR_FILE, _INODES[self.name], len(self.data))

    def set_size(self, size: int) -> None:
        raise WasiError(Errno.EROFS)

    def set_times(self, atim: int, mtim: int, fst_flags: int) -> None:
        raise WasiError(Errno.EROFS)

    def close(self) -> None:
        self.data = b""


class EtcDirectory(Directory):
    """The synthetic `/etc` of one guest's host."""

    def __init__(self, host: Host) -> None:
        super().__init__(-1, None, host_path="<vnet /etc>")
        self.host = host

    def _contents(self, name: str) -> bytes:
        return resolv_conf_text(self.host) if name == "resolv.conf" else hosts_text(self.host)

    @staticmethod
    def _name(path: str) -> str:
        """The one entry `path` names ('.' for the directory itself)."""
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if path.startswith("/"):
            raise WasiError(Errno.EPERM)
        if any(p == ".." for p in parts):
            raise WasiError(Errno.EPERM)
        if not parts:
            return "."
        if len(parts) > 1:
            if parts[0] in _INODES:
                raise WasiError(Errno.ENOTDIR)
            raise WasiError(Errno.ENOENT)
        return parts[0]

    # --- as an open fd -----------------------------------------------------------
    def filestat(self) -> Filestat:
        return _stat(Filetype.DIRECTORY, _INODES["."], 0)

    def set_times(self, atim: int, mtim: int, fst_flags: int) -> None:
        raise WasiError(Errno.EROFS)

    def close(self) -> None:
        pass

    def readdir(self, cookie: int) -> list[DirEntry]:
        entries = [DirEntry(1, 1, Filetype.DIRECTORY, b"."), DirEntry(2, 1, Filetype.DIRECTORY,
                                                                      b"..")]
        for name in ("hosts", "resolv.conf"):
            entries.append(DirEntry(len(entries) + 1, _INODES[name], Filetype.REGULAR_FILE,
                                    name.encode()))
        return entries[cookie:]

    # --- paths -------------------------------------------------------------------
    def open(self, path: str, request: OpenRequest) -> Directory | RegularFile:
        oflags = request.oflags
        name = self._name(path)
        exists = name in _INODES
        if oflags & OFLAGS_CREAT and oflags & OFLAGS_EXCL and exists:
            raise WasiError(Errno.EEXIST)
        if not exists:
            raise WasiError(Errno.EROFS if oflags & OFLAGS_CREAT else Errno.ENOENT)
        if request.write or oflags & (OFLAGS_CREAT | OFLAGS_TRUNC):
            raise WasiError(Errno.EISDIR if name == "." else Errno.EROFS)
        if name == ".":
            return self
        if oflags & OFLAGS_DIRECTORY:
            raise WasiError(Errno.ENOTDIR)
        return EtcFile(name, self._contents(name), request.fdflags)

    def filestat_at(self, path: str, follow: bool) -> Filestat:
        name = self._name(path)
        if name == ".":
            return self.filestat()
        if name not in _INODES:
            raise WasiError(Errno.ENOENT)
        return _stat(Filetype.REGULAR_FILE, _INODES[name], len(self._contents(name)))

    def set_times_at(self, path: str, follow: bool, atim: int, mtim: int,
                     fst_flags: int) -> None:
        raise WasiError(Errno.EROFS)

    def create_directory(self, path: str) -> None:
        raise WasiError(Errno.EROFS)

    def remove_directory(self, path: str) -> None:
        raise WasiError(Errno.EROFS)

    def unlink_file(self, path: str) -> None:
        raise WasiError(Errno.EROFS)

    def symlink(self, target: str, path: str) -> None:
        raise WasiError(Errno.EROFS)

    def readlink(self, path: str) -> bytes:
        name = self._name(path)
        raise WasiError(Errno.EINVAL if name in _INODES else Errno.ENOENT)

    def link(self, old_path: str, follow: bool, new_dir: Directory, new_path: str) -> None:
        raise WasiError(Errno.EROFS)

    def rename(self, old_path: str, new_dir: Directory, new_path: str) -> None:
        raise WasiError(Errno.EROFS)
