"""The host filesystem behind a guest's preopened directories (sans-wasm).

This module is the only place a guest's path reaches the host filesystem. It
holds host file descriptors and makes *at system calls on them; it touches no
guest memory, no fd table and no wasm API (`wasi_fs` does that).

Theory of operation
-------------------
A `Directory` is a capability: a host directory fd plus the guarantee that
every path resolved against it stays beneath it. As in wasmtime (cap-std), an
opened subdirectory is a capability for its own subtree only: `..` can climb
back up to the directory it was resolved from, never above it.

Paths are resolved one component at a time (`_walk`). Every host lookup is an
`openat`/`fstatat`/`readlinkat` of a *single* name that is never `.`, `..` or
empty, made relative to a directory fd we hold, with `O_NOFOLLOW` — so the
kernel never follows a symlink or a `..` for us. The walk keeps a stack of
the directory fds it descended through: `..` pops that stack (an empty stack
is an escape → EPERM), and a symlink is expanded by reading its target and
pushing the target's components onto the work list, to be resolved under the
same rules (an absolute target → EPERM; more than `MAX_SYMLINK_EXPANSIONS` →
ELOOP). There is no string-level canonicalisation and no `realpath` check, so
renaming directories while a walk runs cannot move it outside the root.

Operations on a path's last component (mkdir, unlink, rename, symlink, link,
readlink, and stat/utimes without following) first open the *parent* with the
walk, then call the *at syscall on the base name, which is never `..`. The
split of a path into parent and base name, and the special cases for trailing
`/` and `/.`, follow cap-std's so that errno values match wasmtime's. Where
wasmtime and Linux differ from POSIX (e.g. `rmdir("d/")` → EINVAL), wasmtime
wins; the rules are listed in `split_parent` and `Directory`'s methods.

Host errors map to WASI errno through `HOST_ERRNO` (one table).
"""

from __future__ import annotations

import ctypes
import errno as host_errno
import fcntl
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from .fdtable import FileDescription, Filestat
from .wasi_types import (
    FDFLAGS_APPEND,
    FDFLAGS_DSYNC,
    FDFLAGS_NONBLOCK,
    FDFLAGS_RSYNC,
    FDFLAGS_SYNC,
    FSTFLAGS_ATIM,
    FSTFLAGS_ATIM_NOW,
    FSTFLAGS_MTIM,
    FSTFLAGS_MTIM_NOW,
    OFLAGS_CREAT,
    OFLAGS_DIRECTORY,
    OFLAGS_EXCL,
    OFLAGS_TRUNC,
    RIGHTS_DIRECTORY_BASE,
    RIGHTS_DIRECTORY_INHERITING,
    RIGHTS_REGULAR_FILE_BASE,
    Errno,
    Filetype,
    WasiError,
)

T = TypeVar("T")

#: Symlinks one resolution may expand before giving ELOOP (cap-std's limit).
MAX_SYMLINK_EXPANSIONS = 40

# --- host errno → WASI errno ------------------------------------------------

#: Every host errno with a WASI namesake maps to it (WASI's names are POSIX's);
#: EWOULDBLOCK/EOPNOTSUPP are aliases on Linux. Anything else becomes EIO.
HOST_ERRNO: dict[int, Errno] = {
    getattr(host_errno, e.name): e
    for e in Errno
    if e is not Errno.SUCCESS and hasattr(host_errno, e.name)
}
HOST_ERRNO.setdefault(host_errno.EWOULDBLOCK, Errno.EAGAIN)
HOST_ERRNO.setdefault(host_errno.EOPNOTSUPP, Errno.ENOTSUP)


def wasi_error(error: OSError) -> WasiError:
    """The WasiError for a host OSError."""
    return WasiError(HOST_ERRNO.get(error.errno or 0, Errno.EIO))


def _filetype(mode: int) -> Filetype:
    if stat.S_ISREG(mode):
        return Filetype.REGULAR_FILE
    if stat.S_ISDIR(mode):
        return Filetype.DIRECTORY
    if stat.S_ISLNK(mode):
        return Filetype.SYMBOLIC_LINK
    if stat.S_ISCHR(mode):
        return Filetype.CHARACTER_DEVICE
    if stat.S_ISBLK(mode):
        return Filetype.BLOCK_DEVICE
    if stat.S_ISSOCK(mode):
        return Filetype.SOCKET_STREAM
    return Filetype.UNKNOWN  # FIFOs: preview1 has no code for them


def filestat_of(st: os.stat_result) -> Filestat:
    """A WASI filestat from a host stat result (real dev and inode numbers)."""
    return Filestat(
        dev=st.st_dev, ino=st.st_ino, filetype=_filetype(st.st_mode), nlink=st.st_nlink,
        size=st.st_size, atim=st.st_atime_ns, mtim=st.st_mtime_ns, ctim=st.st_ctime_ns,
    )


# --- utimensat (os.utime cannot leave one time unchanged) -------------------

class _Timespec(ctypes.Structure):
    _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))


_UTIME_NOW = (1 << 30) - 1
_UTIME_OMIT = (1 << 30) - 2
_AT_SYMLINK_NOFOLLOW = 0x100
_libc = ctypes.CDLL(None, use_errno=True)  # the C library already loaded into Python
_utimensat = _libc.utimensat
_utimensat.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_Timespec), ctypes.c_int)
_utimensat.restype = ctypes.c_int
_futimens = _libc.futimens
_futimens.argtypes = (ctypes.c_int, ctypes.POINTER(_Timespec))
_futimens.restype = ctypes.c_int


def _timespec(value: int, set_flag: bool, now_flag: bool) -> _Timespec:
    if set_flag and now_flag:
        raise WasiError(Errno.EINVAL)
    if now_flag:
        return _Timespec(0, _UTIME_NOW)
    if set_flag:
        return _Timespec(value // 1_000_000_000, value % 1_000_000_000)
    return _Timespec(0, _UTIME_OMIT)


def set_times(dir_fd: int, name: str | None, atim: int, mtim: int, fst_flags: int) -> None:
    """utimensat(dir_fd, name, ..., AT_SYMLINK_NOFOLLOW); name None means dir_fd itself.

    fst_flags are WASI's: ATIM/MTIM set the given time, *_NOW the current one,
    neither leaves it unchanged; a time with both bits is EINVAL.
    """
    if fst_flags & ~(FSTFLAGS_ATIM | FSTFLAGS_ATIM_NOW | FSTFLAGS_MTIM | FSTFLAGS_MTIM_NOW):
        raise WasiError(Errno.EINVAL)
    times = (_Timespec * 2)(
        _timespec(atim, bool(fst_flags & FSTFLAGS_ATIM), bool(fst_flags & FSTFLAGS_ATIM_NOW)),
        _timespec(mtim, bool(fst_flags & FSTFLAGS_MTIM), bool(fst_flags & FSTFLAGS_MTIM_NOW)),
    )
    if name is None:
        result = _futimens(dir_fd, times)
    else:
        result = _utimensat(dir_fd, os.fsencode(name), times, _AT_SYMLINK_NOFOLLOW)
    if result != 0:
        raise wasi_error(OSError(ctypes.get_errno(), "utimensat"))


# --- path syntax -------------------------------------------------------------

_ROOT = "/"  # marks an absolute path or symlink target in a component list


def _components(path: str) -> list[str]:
    """Path components in order: '/' first if absolute, no '' and no interior '.'.

    A trailing '.' is kept (it means "open the directory itself"), and '..' is
    always kept.
    """
    parts = [p for p in path.split("/") if p and p != "."]
    if _has_trailing_dot(path):
        parts.append(".")
    if path.startswith("/"):
        parts.insert(0, _ROOT)
    return parts


def _has_trailing_dot(path: str) -> bool:
    stripped = path.rstrip("/")
    return stripped == "." or stripped.endswith("/.")


def _requires_dir(path: str) -> bool:
    return path.endswith("/") or path.endswith("/.")


def split_parent(path: str) -> tuple[str, str]:
    """(parent path, base name) for operations on a path's last component.

    The base name is a plain name or '.', never '..': a path ending in '/',
    '/.' or '..' names a directory, which is then `(path, '.')`. An empty path
    is ENOENT. Same rules as cap-std's, so `rmdir("d/")` works on `d/.` and
    gives EINVAL, as under wasmtime.
    """
    if not path:
        raise WasiError(Errno.ENOENT)
    if not _requires_dir(path):
        cut = path.rfind("/")
        last = path[cut + 1 :]
        if last and last != "..":
            if cut < 0:
                return "", last
            return path[:cut].rstrip("/") or "/", last
    return path, "."


def _strip_trailing_slashes(path: str) -> str:
    stripped = path.rstrip("/")
    return stripped if stripped or not path else "/"


# --- the walk ----------------------------------------------------------------

_O_PATH = getattr(os, "O_PATH", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_LOOKUP_FLAGS = _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class _Symlink(Exception):
    """Raised by a last-component handler: the name is a symlink to expand."""


@dataclass
class _Last:
    """What a last-component handler is told about the name it resolves."""

    base: int  # directory fd the name is in
    name: str  # a plain name: never '', '.', '..' and never containing '/'
    follow: bool  # may the handler ask for the symlink to be expanded?
    dir_required: bool  # the path (or a symlink target) ended in '/'


def _walk(
    start: int,
    path: str,
    follow: bool,
    last: Callable[[_Last], T],
    at_dir: Callable[[int], T],
) -> T:
    """Resolve `path` under `start` without ever leaving it.

    Directories on the way are opened O_PATH|O_NOFOLLOW; symlinks among them
    are always expanded. The last plain component goes to `last`, which may
    raise `_Symlink` when `follow` allows it (`follow` is the caller's flag,
    forced on by a trailing '/'). A path that ends in '.' or '..' (after any
    expansion) instead ends at a directory, which goes to `at_dir`.
    """
    if not path:
        raise WasiError(Errno.ENOENT)
    if "\0" in path:
        raise WasiError(Errno.EINVAL)
    work = _components(path)[::-1]  # a stack: next component last
    trailing_slash = path.endswith("/")
    stack = [start]  # stack[0] is borrowed; the rest are ours to close
    expansions = 0

    def expand(dir_fd: int, name: str, at_end: bool) -> None:
        nonlocal expansions, trailing_slash
        if expansions == MAX_SYMLINK_EXPANSIONS:
            raise WasiError(Errno.ELOOP)
        target = os.readlink(name, dir_fd=dir_fd)
        expansions += 1
        work.extend(_components(target)[::-1])
        if at_end:
            trailing_slash = trailing_slash or target.endswith("/")

    try:
        while work:
            part = work.pop()
            base = stack[-1]
            if part == _ROOT:
                raise WasiError(Errno.EPERM)  # absolute path or symlink target
            if part == ".":
                continue
            if part == "..":
                if len(stack) == 1:
                    raise WasiError(Errno.EPERM)  # would climb above `start`
                os.close(stack.pop())
                continue
            if not work:
                try:
                    return last(_Last(base, part, follow or trailing_slash, trailing_slash))
                except _Symlink:
                    expand(base, part, at_end=True)
                    continue
            fd = os.open(part, _LOOKUP_FLAGS, dir_fd=base)
            try:
                mode = os.fstat(fd).st_mode
            except BaseException:
                os.close(fd)
                raise
            if stat.S_ISDIR(mode):
                stack.append(fd)
                continue
            try:
                if not stat.S_ISLNK(mode):
                    raise WasiError(Errno.ENOTDIR)
                expand(fd, "", at_end=False)
            finally:
                os.close(fd)
        return at_dir(stack[-1])
    except OSError as e:
        raise wasi_error(e) from None
    finally:
        for fd in stack[1:]:
            os.close(fd)


def _open_dir_fd(start: int, path: str) -> int:
    """An O_PATH fd of the directory `path` names under `start` (symlinks followed)."""

    def last(c: _Last) -> int:
        fd = os.open(c.name, _LOOKUP_FLAGS, dir_fd=c.base)
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            return fd
        os.close(fd)
        if stat.S_ISLNK(mode):
            raise _Symlink
        raise WasiError(Errno.ENOTDIR)

    return _walk(start, path, True, last, lambda fd: os.open(".", _LOOKUP_FLAGS, dir_fd=fd))


class _Parent:
    """The directory holding a path's last component, and that component's name."""

    def __init__(self, start: int, path: str) -> None:
        parent, self.name = split_parent(path)
        self.fd = _open_dir_fd(start, parent) if parent else start
        self._owned = bool(parent)

    def __enter__(self) -> _Parent:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owned:
            os.close(self.fd)


def _host_call(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except OSError as e:
        raise wasi_error(e) from None


# --- open files --------------------------------------------------------------

_ADVICE = {
    0: os.POSIX_FADV_NORMAL, 1: os.POSIX_FADV_SEQUENTIAL, 2: os.POSIX_FADV_RANDOM,
    3: os.POSIX_FADV_WILLNEED, 4: os.POSIX_FADV_DONTNEED, 5: os.POSIX_FADV_NOREUSE,
}
_SYNC_FLAGS = FDFLAGS_DSYNC | FDFLAGS_RSYNC | FDFLAGS_SYNC


class RegularFile(FileDescription):
    """An open regular file: a host fd whose offset is the guest's file position.

    Append mode is the host's O_APPEND (so `fd_pwrite` appends too, as on
    Linux and under wasmtime). NONBLOCK is only recorded: files never block.
    The SYNC/DSYNC/RSYNC flags are refused (ENOTSUP at open, EINVAL from
    fd_fdstat_set_flags) as wasmtime refuses them.
    """

    def __init__(self, host_fd: int, fdflags: int = 0, readable: bool = True,
                 writable: bool = True) -> None:
        super().__init__()
        self.filetype = Filetype.REGULAR_FILE
        self.rights_base = int(RIGHTS_REGULAR_FILE_BASE)
        self.host_fd = host_fd
        self.fdflags = fdflags & (FDFLAGS_APPEND | FDFLAGS_NONBLOCK)
        self.readable = readable  # the host fd's access mode
        self.writable = writable

    def set_fdflags(self, flags: int) -> None:
        if flags & _SYNC_FLAGS:
            raise WasiError(Errno.EINVAL)

        def apply() -> None:
            current = fcntl.fcntl(self.host_fd, fcntl.F_GETFL)
            wanted = current | os.O_APPEND if flags & FDFLAGS_APPEND else current & ~os.O_APPEND
            if wanted != current:
                fcntl.fcntl(self.host_fd, fcntl.F_SETFL, wanted)

        _host_call(apply)
        self.fdflags = flags & (FDFLAGS_APPEND | FDFLAGS_NONBLOCK)

    def read(self, size: int) -> bytes:
        return _host_call(lambda: os.read(self.host_fd, size))

    def write(self, data: bytes | memoryview) -> int:
        return _host_call(lambda: os.write(self.host_fd, data))

    def pread(self, size: int, offset: int) -> bytes:
        _check_offset(offset)
        return _host_call(lambda: os.pread(self.host_fd, size, offset))

    def pwrite(self, data: bytes | memoryview, offset: int) -> int:
        _check_offset(offset)
        return _host_call(lambda: os.pwrite(self.host_fd, data, offset))

    def seek(self, offset: int, whence: int) -> int:
        if not -(1 << 63) <= offset < (1 << 63):
            raise WasiError(Errno.EINVAL)
        return _host_call(lambda: os.lseek(self.host_fd, offset, whence))

    def tell(self) -> int:
        return _host_call(lambda: os.lseek(self.host_fd, 0, os.SEEK_CUR))

    def sync(self) -> None:
        _host_call(lambda: os.fsync(self.host_fd))

    def datasync(self) -> None:
        _host_call(lambda: os.fdatasync(self.host_fd))

    def advise(self, offset: int, length: int, advice: int) -> None:
        if advice not in _ADVICE:
            raise WasiError(Errno.EINVAL)
        _check_offset(offset)
        _check_offset(length)
        _host_call(lambda: os.posix_fadvise(self.host_fd, offset, length, _ADVICE[advice]))

    def allocate(self, offset: int, length: int) -> None:
        raise WasiError(Errno.ENOTSUP)  # wasmtime: fd_allocate is not supported

    def filestat(self) -> Filestat:
        return filestat_of(_host_call(lambda: os.fstat(self.host_fd)))

    def set_size(self, size: int) -> None:
        _check_offset(size)
        _host_call(lambda: os.ftruncate(self.host_fd, size))

    def set_times(self, atim: int, mtim: int, fst_flags: int) -> None:
        set_times(self.host_fd, None, atim, mtim, fst_flags)

    def close(self) -> None:
        fd, self.host_fd = self.host_fd, -1
        if fd >= 0:
            os.close(fd)


def _check_offset(value: int) -> None:
    """EINVAL for a u64 file offset or size the host cannot represent."""
    if value >= 1 << 63:
        raise WasiError(Errno.EINVAL)


# --- directories -------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DirEntry:
    """One fd_readdir entry; `next` is the cookie that resumes after it."""

    next: int
    ino: int
    filetype: Filetype
    name: bytes


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """path_open's arguments, decoded: what to open and how."""

    follow: bool = False
    oflags: int = 0
    fdflags: int = 0
    read: bool = True
    write: bool = False


class Directory(FileDescription):
    """An open host directory and everything a guest can do beneath it.

    `host_fd` is an O_RDONLY|O_DIRECTORY fd (readable, so fd_readdir works).
    `preopen` is the preopened directory this one was reached from (itself
    for a preopen); it only names the capability in diagnostics — path
    resolution is bounded by this directory, not by the preopen.

    fd_readdir cookies are positions in a listing: 0 starts at '.', 1 at
    '..', 2 at the first host entry — wasmtime's numbering. A listing is read
    from the host when cookie 0 is asked for and kept until the next cookie-0
    call, so one pass over a directory sees one consistent snapshot.
    """

    def __init__(self, host_fd: int, preopen: Directory | None = None,
                 host_path: str | None = None) -> None:
        super().__init__()
        self.filetype = Filetype.DIRECTORY
        self.rights_base = int(RIGHTS_DIRECTORY_BASE)
        self.rights_inheriting = int(RIGHTS_DIRECTORY_INHERITING)
        self.host_fd = host_fd
        self.preopen: Directory = preopen if preopen is not None else self
        self.host_path: str = (
            host_path if host_path is not None else preopen.host_path if preopen else "?"
        )
        self._listing: list[DirEntry] | None = None

    # --- as an open fd (wasmtime: most fd calls need a file) ---------------
    def set_fdflags(self, flags: int) -> None:
        raise WasiError(Errno.EBADF)

    def sync(self) -> None:
        raise WasiError(Errno.EBADF)

    def datasync(self) -> None:
        raise WasiError(Errno.EBADF)

    def filestat(self) -> Filestat:
        return filestat_of(_host_call(lambda: os.fstat(self.host_fd)))

    def set_times(self, atim: int, mtim: int, fst_flags: int) -> None:
        set_times(self.host_fd, None, atim, mtim, fst_flags)

    def close(self) -> None:
        fd, self.host_fd = self.host_fd, -1
        self._listing = None
        if fd >= 0:
            os.close(fd)

    # --- fd_readdir --------------------------------------------------------
    def readdir(self, cookie: int) -> list[DirEntry]:
        """The entries from position `cookie` on (empty past the end)."""
        if cookie == 0 or self._listing is None:
            self._listing = self._read_listing()
        return self._listing[cookie:]

    def _read_listing(self) -> list[DirEntry]:
        own = _host_call(lambda: os.fstat(self.host_fd)).st_ino
        entries = [
            DirEntry(1, own, Filetype.DIRECTORY, b"."),
            DirEntry(2, own, Filetype.DIRECTORY, b".."),
        ]
        # A fresh fd, so the listing starts at the beginning whatever was read before.
        fd = _host_call(lambda: os.open(".", _DIR_FLAGS, dir_fd=self.host_fd))
        try:
            with os.scandir(fd) as it:
                for entry in it:
                    try:
                        name = entry.name.encode("utf-8")
                    except UnicodeEncodeError:
                        raise WasiError(Errno.EILSEQ) from None
                    entries.append(
                        DirEntry(len(entries) + 1, entry.inode(), _entry_type(entry), name)
                    )
        except OSError as e:
            raise wasi_error(e) from None
        finally:
            os.close(fd)
        return entries

    # --- path operations ---------------------------------------------------
    def open(self, path: str, request: OpenRequest) -> Directory | RegularFile:
        """path_open: a new description for what `path` names.

        Access is the host open mode; O_CREAT and O_TRUNC imply write access
        (as under wasmtime). Only regular files and directories can be opened
        (anything else → ENOTSUP rather than, say, blocking on a FIFO).
        """
        oflags, fdflags = request.oflags, request.fdflags
        if oflags & OFLAGS_DIRECTORY and oflags & (OFLAGS_CREAT | OFLAGS_EXCL | OFLAGS_TRUNC):
            raise WasiError(Errno.EINVAL)
        if fdflags & _SYNC_FLAGS:
            raise WasiError(Errno.ENOTSUP)
        write = request.write or bool(oflags & (OFLAGS_CREAT | OFLAGS_TRUNC))
        read = request.read or not request.write
        flags = os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
        flags |= os.O_RDWR if read and write else os.O_WRONLY if write else os.O_RDONLY
        if oflags & OFLAGS_CREAT:
            flags |= os.O_CREAT
        if oflags & OFLAGS_EXCL:
            flags |= os.O_EXCL
        if oflags & OFLAGS_TRUNC:
            flags |= os.O_TRUNC
        if oflags & OFLAGS_DIRECTORY:
            flags |= os.O_DIRECTORY
        if fdflags & FDFLAGS_APPEND:
            flags |= os.O_APPEND
        dir_precluded = write

        def last(c: _Last) -> int:
            if c.dir_required and flags & os.O_CREAT:
                raise WasiError(Errno.EISDIR)  # "name/" can only be a directory
            try:
                return os.open(c.name, flags | (os.O_DIRECTORY if c.dir_required else 0),
                               0o666, dir_fd=c.base)
            except OSError as e:
                # O_NOFOLLOW on a symlink: ELOOP, or ENOTDIR when O_DIRECTORY is set too.
                if e.errno in (host_errno.ELOOP, host_errno.ENOTDIR) and _is_symlink(
                        c.base, c.name):
                    if c.follow:
                        raise _Symlink from None
                    raise WasiError(Errno.ELOOP) from None
                raise

        def at_dir(fd: int) -> int:
            if oflags & OFLAGS_CREAT and oflags & OFLAGS_EXCL:
                raise WasiError(Errno.EEXIST)
            if dir_precluded:
                raise WasiError(Errno.EISDIR)
            return os.open(".", flags, 0o666, dir_fd=fd)

        fd = _walk(self.host_fd, path, request.follow, last, at_dir)
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISDIR(mode):
                if dir_precluded:
                    raise WasiError(Errno.EISDIR)
                return Directory(fd, self.preopen)
            if not stat.S_ISREG(mode):
                raise WasiError(Errno.ENOTSUP)
            return RegularFile(fd, fdflags, read, write)
        except OSError as e:
            os.close(fd)
            raise wasi_error(e) from None
        except BaseException:
            os.close(fd)
            raise

    def filestat_at(self, path: str, follow: bool) -> Filestat:
        """path_filestat_get (a trailing '/' follows a final symlink, as on Linux)."""

        def last(c: _Last) -> os.stat_result:
            st = os.stat(c.name, dir_fd=c.base, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode) and c.follow:
                raise _Symlink
            if c.dir_required and not stat.S_ISDIR(st.st_mode):
                raise WasiError(Errno.ENOTDIR)
            return st

        return filestat_of(_walk(self.host_fd, path, follow, last, os.fstat))

    def set_times_at(self, path: str, follow: bool, atim: int, mtim: int,
                     fst_flags: int) -> None:
        """path_filestat_set_times; without `follow` a final symlink's own times change."""
        if not follow:
            with _Parent(self.host_fd, path) as p:
                set_times(p.fd, p.name, atim, mtim, fst_flags)
            return

        def last(c: _Last) -> None:
            if c.follow and _is_symlink(c.base, c.name):
                raise _Symlink
            set_times(c.base, c.name, atim, mtim, fst_flags)

        _walk(self.host_fd, path, follow, last,
              lambda fd: set_times(fd, ".", atim, mtim, fst_flags))

    def create_directory(self, path: str) -> None:
        """path_create_directory (trailing slashes are ignored)."""
        with _Parent(self.host_fd, _strip_trailing_slashes(path)) as p:
            _host_call(lambda: os.mkdir(p.name, 0o777, dir_fd=p.fd))

    def remove_directory(self, path: str) -> None:
        """path_remove_directory ("d/" means "d/." and so gives EINVAL, as wasmtime)."""
        with _Parent(self.host_fd, path) as p:
            _host_call(lambda: os.rmdir(p.name, dir_fd=p.fd))

    def unlink_file(self, path: str) -> None:
        """path_unlink_file: removes a file or symlink, never follows one."""
        with _Parent(self.host_fd, path) as p:
            _host_call(lambda: os.unlink(p.name, dir_fd=p.fd))

    def symlink(self, target: str, path: str) -> None:
        """path_symlink. An absolute target is refused (EPERM, as wasmtime);
        a relative one may point anywhere, since following it is what is checked."""
        if target.startswith("/"):
            raise WasiError(Errno.EPERM)
        if "\0" in target:
            raise WasiError(Errno.EINVAL)
        with _Parent(self.host_fd, path) as p:
            _host_call(lambda: os.symlink(target, p.name, dir_fd=p.fd))

    def readlink(self, path: str) -> bytes:
        """path_readlink: the target's bytes (EILSEQ if it is not UTF-8, as wasmtime)."""
        with _Parent(self.host_fd, path) as p:
            target = _host_call(lambda: os.readlink(os.fsencode(p.name), dir_fd=p.fd))
        try:
            target.decode("utf-8")
        except UnicodeDecodeError:
            raise WasiError(Errno.EILSEQ) from None
        return target

    def link(self, old_path: str, follow: bool, new_dir: Directory, new_path: str) -> None:
        """path_link: a hard link to what old_path names (never to a symlink's target:
        following is refused with EINVAL, as wasmtime does)."""
        if follow:
            raise WasiError(Errno.EINVAL)
        with _Parent(self.host_fd, old_path) as old, _Parent(new_dir.host_fd, new_path) as new:
            _host_call(lambda: os.link(old.name, new.name, src_dir_fd=old.fd,
                                       dst_dir_fd=new.fd, follow_symlinks=False))

    def rename(self, old_path: str, new_dir: Directory, new_path: str) -> None:
        """path_rename. Trailing slashes are kept on the base names, so a file
        named with one gives ENOTDIR as rename(2) would."""
        old_slash, new_slash = old_path.endswith("/"), new_path.endswith("/")
        with _Parent(self.host_fd, _strip_trailing_slashes(old_path)) as old, \
                _Parent(new_dir.host_fd, _strip_trailing_slashes(new_path)) as new:
            old_name = old.name + "/" if old_slash else old.name
            new_name = new.name + "/" if new_slash else new.name
            _host_call(lambda: os.rename(old_name, new_name, src_dir_fd=old.fd,
                                         dst_dir_fd=new.fd))


def _is_symlink(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _entry_type(entry: os.DirEntry[str]) -> Filetype:
    try:
        if entry.is_symlink():
            return Filetype.SYMBOLIC_LINK
        if entry.is_dir(follow_symlinks=False):
            return Filetype.DIRECTORY
        if entry.is_file(follow_symlinks=False):
            return Filetype.REGULAR_FILE
        return _filetype(entry.stat(follow_symlinks=False).st_mode)
    except OSError:
        return Filetype.UNKNOWN  # vanished since the listing was read


def open_preopen(host_path: str) -> Directory:
    """A preopened directory for `host_path` (host configuration: symlinks in
    the host path itself are followed). Raises OSError if it cannot be opened."""
    fd = os.open(host_path, _DIR_FLAGS)
    return Directory(fd, None, host_path=os.path.abspath(host_path))
