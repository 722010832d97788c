"""The synthetic `/dev` every guest sees: null, zero, random, urandom and net/tun.

No host directory backs it. `install_dev` puts a read-only `DevDirectory` in
the guest's fd table at `DEV_DIR_FD` (a fixed high number, so the fds a
program opens are numbered as on Linux: its first socket is still fd 3; and
not counted against --max-fds, since on Linux /dev takes no fd); the
SDK registers that fd as the preopen for "/dev" from a constructor
(vnet/sdk/src/devfs.c, `__wasilibc_register_preopened_fd`), so wasi-libc
maps `open("/dev/urandom")`, `fopen("/dev/null")` … to `path_open` on it. A
guest not built with the SDK can reach it as a preopen too: `fd_prestat_get`
names it "/dev".

Devices (Linux's behaviour): `null` reads end of file and takes every write;
`zero` reads zeros; `random` and `urandom` read bytes from the guest's random
source — the seeded per-guest generator in virtual time, the host's
os.urandom in real time, as `random_get` — so a run's output depends only on
its seed; `net/tun` exists only for a guest granted a TUN/TAP device
(vnet.guest.tundev): without a grant `open("/dev/net/tun")` is ENOENT, as on
a host without the tun module. Creating, removing or renaming anything here
is EROFS; directories list their entries (fd_readdir) and stat as
directories; devices stat as character devices with Linux's device numbers.

May touch: the calling guest's fd table (installing the directory) and its
random source; no host files.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .context import GuestContext
from .fdtable import FileDescription, Filestat, Readiness
from .fs import Directory, DirEntry, OpenRequest
from .tundev import TunFile, grants
from .wasi_types import (
    OFLAGS_CREAT,
    OFLAGS_DIRECTORY,
    OFLAGS_EXCL,
    OFLAGS_TRUNC,
    RIGHTS_REGULAR_FILE_BASE,
    Errno,
    Filetype,
    WasiError,
)

#: Where the /dev directory lives in every guest's fd table (the SDK's devfs.c agrees).
DEV_DIR_FD = 0x3FFFFFFF  # above any fd limit: never a number a program's own fds take
DEV_PREOPEN_NAME = "/dev"
#: st_dev of everything here (Linux's devtmpfs is a device of its own).
_DEV = 5


def _makedev(major: int, minor: int) -> int:
    return (major << 8) | minor


class CharacterDevice(FileDescription):
    """A character device: reads from `source`, writes swallowed (null/zero/random)."""

    def __init__(self, rdev: int, source: Callable[[int], bytes],
                 readable: bool = True, writable: bool = True) -> None:
        super().__init__()
        self.filetype = Filetype.CHARACTER_DEVICE
        self.rights_base = int(RIGHTS_REGULAR_FILE_BASE)
        self.rdev = rdev
        self._source = source
        self.readable = readable
        self.writable = writable

    def read(self, size: int) -> bytes:
        return self._source(size)

    def write(self, data: bytes | memoryview) -> int:
        return len(data)

    def pread(self, size: int, offset: int) -> bytes:
        return self._source(size)

    def pwrite(self, data: bytes | memoryview, offset: int) -> int:
        return len(data)

    def seek(self, offset: int, whence: int) -> int:
        return 0  # Linux: lseek on these devices succeeds and stays at 0

    def tell(self) -> int:
        return 0

    def filestat(self) -> Filestat:
        return Filestat(_DEV, self.rdev, Filetype.CHARACTER_DEVICE, 1, 0, 0, 0, 0)

    def readiness_read(self) -> Readiness:
        return Readiness(True, 0)


def _zeros(size: int) -> bytes:
    return bytes(size)


def _nothing(_size: int) -> bytes:
    return b""


def _random_source(ctx: GuestContext) -> Callable[[int], bytes]:
    def randomness(size: int) -> bytes:
        size = min(size, 1 << 20)
        return ctx.rng.randbytes(size) if ctx.scheduler.virtual else os.urandom(size)
    return randomness


#: name → (inode, Linux's device number); "net" is the directory of "tun".
_DEVICES = {"null": (2, _makedev(1, 3)), "zero": (3, _makedev(1, 5)),
            "random": (4, _makedev(1, 8)), "urandom": (5, _makedev(1, 9))}
_NET_INO = 6
_TUN = ("tun", 7, _makedev(10, 200))
_ROOT_INO = 1


class DevDirectory(Directory):
    """/dev or /dev/net for one guest: a fixed listing, nothing on the host."""

    def __init__(self, ctx: GuestContext, subdir: str = "") -> None:
        super().__init__(-1, None, host_path=f"(vnet){DEV_PREOPEN_NAME}/{subdir}".rstrip("/"))
        self.ctx = ctx
        self.subdir = subdir

    # --- what exists ---------------------------------------------------------
    def _entries(self, subdir: str) -> dict[str, tuple[int, Filetype]]:
        if subdir == "":
            found = {name: (ino, Filetype.CHARACTER_DEVICE) for name, (ino, _) in
                     _DEVICES.items()}
            found["net"] = (_NET_INO, Filetype.DIRECTORY)
            return found
        if subdir == "net" and grants(self.ctx):
            return {_TUN[0]: (_TUN[1], Filetype.CHARACTER_DEVICE)}
        return {}

    def _resolve(self, path: str) -> tuple[str, str | None]:
        """(directory, name in it) for `path`; name None when the path is a directory."""
        if not path:
            raise WasiError(Errno.ENOENT)
        if "\0" in path:
            raise WasiError(Errno.EINVAL)
        if path.startswith("/"):
            raise WasiError(Errno.EPERM)
        parts = [self.subdir] if self.subdir else []
        for part in path.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise WasiError(Errno.EPERM)  # above the preopen, as fs.py
                parts.pop()
                continue
            parts.append(part)
        if not parts:
            return "", None
        *dirs, last = parts
        directory = "/".join(dirs)
        if len(dirs) > 1 or (dirs and dirs[0] != "net"):
            raise WasiError(Errno.ENOENT)
        entries = self._entries(directory)
        if last not in entries:
            raise WasiError(Errno.ENOENT)
        if entries[last][1] == Filetype.DIRECTORY:
            return (f"{directory}/{last}" if directory else last), None
        if path.endswith("/"):
            raise WasiError(Errno.ENOTDIR)
        return directory, last

    # --- as an open fd -------------------------------------------------------
    def filestat(self) -> Filestat:
        ino = _NET_INO if self.subdir == "net" else _ROOT_INO
        return Filestat(_DEV, ino, Filetype.DIRECTORY, 2, 0, 0, 0, 0)

    def set_times(self, atim: int, mtim: int, fst_flags: int) -> None:
        raise WasiError(Errno.EROFS)

    def close(self) -> None:
        self._listing = None

    def readdir(self, cookie: int) -> list[DirEntry]:
        own = self.filestat().ino
        listing = [DirEntry(1, own, Filetype.DIRECTORY, b"."),
                   DirEntry(2, _ROOT_INO, Filetype.DIRECTORY, b"..")]
        for name, (ino, filetype) in self._entries(self.subdir).items():
            listing.append(DirEntry(len(listing) + 1, ino, filetype, name.encode()))
        return listing[cookie:]

    # --- path operations -------------------------------------------------------
    def open(self, path: str, request: OpenRequest) -> Directory:
        """A device's description (not a Directory or RegularFile: wasi_fs.path_open
        only reads `readable`/`writable` from what it gets)."""
        oflags = request.oflags
        try:
            directory, name = self._resolve(path)
        except WasiError as e:
            if e.errno == Errno.ENOENT and oflags & OFLAGS_CREAT:
                raise WasiError(Errno.EROFS) from None
            raise
        if name is None:
            if oflags & OFLAGS_CREAT and oflags & OFLAGS_EXCL:
                raise WasiError(Errno.EEXIST)
            if request.write or oflags & (OFLAGS_CREAT | OFLAGS_TRUNC):
                raise WasiError(Errno.EISDIR)
            return DevDirectory(self.ctx, directory)
        if oflags & OFLAGS_DIRECTORY:
            raise WasiError(Errno.ENOTDIR)
        if oflags & OFLAGS_CREAT and oflags & OFLAGS_EXCL:
            raise WasiError(Errno.EEXIST)
        read = request.read or not request.write
        write = request.write or bool(oflags & (OFLAGS_CREAT | OFLAGS_TRUNC))
        device: FileDescription
        if directory == "net":
            device = TunFile(self.ctx, read, write)
        elif name == "null":
            device = CharacterDevice(_DEVICES[name][1], _nothing, read, write)
        elif name == "zero":
            device = CharacterDevice(_DEVICES[name][1], _zeros, read, write)
        else:
            device = CharacterDevice(_DEVICES[name][1], _random_source(self.ctx), read, write)
        device.fdflags = request.fdflags
        return device  # type: ignore[return-value]

    def filestat_at(self, path: str, follow: bool) -> Filestat:
        directory, name = self._resolve(path)
        if name is None:
            return DevDirectory(self.ctx, directory).filestat()
        if directory == "net":
            return Filestat(_DEV, _TUN[1], Filetype.CHARACTER_DEVICE, 1, 0, 0, 0, 0)
        ino, _rdev = _DEVICES[name]
        return Filestat(_DEV, ino, Filetype.CHARACTER_DEVICE, 1, 0, 0, 0, 0)

    def set_times_at(self, path: str, follow: bool, atim: int, mtim: int,
                     fst_flags: int) -> None:
        self._resolve(path)
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
        self._resolve(path)
        raise WasiError(Errno.EINVAL)  # nothing here is a symlink

    def link(self, old_path: str, follow: bool, new_dir: Directory, new_path: str) -> None:
        raise WasiError(Errno.EROFS)

    def rename(self, old_path: str, new_dir: Directory, new_path: str) -> None:
        raise WasiError(Errno.EROFS)


def install_dev(ctx: GuestContext) -> None:
    """Put /dev at DEV_DIR_FD in the guest's fd table (before it runs)."""
    ctx.fds.add_at(DEV_DIR_FD, DevDirectory(ctx), preopen_name=DEV_PREOPEN_NAME)
