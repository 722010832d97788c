"""A guest's file-descriptor table and the interface every open file implements.

One table per guest holds stdio, preopened directories, open files and (from
the socket ABI on) sockets, so `fd_read`, `fd_write`, `fd_close` and
`poll_oneoff` work on all of them alike.

`FileDescription` operations never block: one that cannot proceed raises
`WasiError(EAGAIN)`, and the WASI layer decides whether to wait (through the
scheduler, until `readiness()` says so) or to return EAGAIN to a non-blocking
guest. Defaults raise the errno a Linux host gives for the operation on a
description that does not support it. Touches no guest memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import GetSetDescriptorType, MemberDescriptorType
from typing import Final, Protocol

from .mypyc_hints import mypyc_attr
from .wasi_types import (
    FDFLAGS_NONBLOCK,
    RIGHTS_TTY_BASE,
    Errno,
    Filetype,
    WasiError,
)


@dataclass(slots=True)
class Readiness:
    """What poll_oneoff reports for one direction of one description."""

    ready: bool
    nbytes: int = 0
    hangup: bool = False
    error: Errno = Errno.SUCCESS


READY = Readiness(True)


class PollState(Protocol):
    """What a poll probe returns: `Readiness`, or a stack socket's own readiness."""

    @property
    def ready(self) -> bool: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def hangup(self) -> bool: ...
    @property
    def error(self) -> int: ...


#: How poll_oneoff learns one direction of a description: a function returning its
#: PollState, and the table that turns the state's errors into WASI errnos (None when
#: they already are WASI errnos).
PollProbe = tuple[Callable[[], PollState], Mapping[int, int] | None]


@dataclass(slots=True)
class Filestat:
    dev: int
    ino: int
    filetype: Filetype
    nlink: int
    size: int
    atim: int
    mtim: int
    ctim: int


#: Filetype.UNKNOWN as a constant: compiled, a class attribute's default is evaluated
#: for every new instance, and a Final is read without a lookup (an enum member is not).
_UNKNOWN: Final = Filetype.UNKNOWN
_NONBLOCK: Final = FDFLAGS_NONBLOCK


@mypyc_attr(allow_interpreted_subclasses=True)  # files, pipes, /dev, netlink …
class FileDescription:
    """An open file, directory, stream or socket, as the fd table sees it."""

    filetype: Filetype = _UNKNOWN
    is_socket = False
    #: A socket of the network stack (TCP, UDP, ICMP echo), which the per-guest socket
    #: limit counts (vnet.guest.sockets.SocketDescription; netlink sockets are not).
    is_stack_socket = False
    #: Whether `poll_probe`'s function reads only state that other threads change one
    #: whole Python operation at a time, so poll_oneoff may call it without the
    #: network lock (vnet.guest.wasi_core.poll_ready_unlocked).
    poll_is_atomic = False
    rights_base: int = 0
    rights_inheriting: int = 0
    #: A test that holds exactly when a read would not fail with EAGAIN, for the
    #: descriptions that know one (sockets): a blocking read that finds it false
    #: waits for it first instead of trying (vnet.guest.wasi_core.wait_to_receive).
    receive_ready: Callable[[], bool] | None = None

    def __init__(self) -> None:
        self.fdflags = 0
        if type(self) not in _CHECKED_SUBCLASSES:
            _check_subclass(type(self))

    # --- flags -------------------------------------------------------------
    @property
    def nonblocking(self) -> bool:
        return bool(self.fdflags & _NONBLOCK)

    def set_fdflags(self, flags: int) -> None:
        self.fdflags = flags

    # --- data --------------------------------------------------------------
    def read(self, size: int) -> bytes:
        raise WasiError(Errno.EBADF)

    def write(self, data: bytes | memoryview) -> int:
        raise WasiError(Errno.EBADF)

    def pread(self, size: int, offset: int) -> bytes:
        raise WasiError(Errno.ESPIPE)

    def pwrite(self, data: bytes | memoryview, offset: int) -> int:
        raise WasiError(Errno.ESPIPE)

    def seek(self, offset: int, whence: int) -> int:
        raise WasiError(Errno.ESPIPE)

    def tell(self) -> int:
        raise WasiError(Errno.ESPIPE)

    def sync(self) -> None:
        raise WasiError(Errno.EINVAL)

    def datasync(self) -> None:
        raise WasiError(Errno.EINVAL)

    def advise(self, offset: int, length: int, advice: int) -> None:
        raise WasiError(Errno.EBADF)

    def allocate(self, offset: int, length: int) -> None:
        raise WasiError(Errno.EBADF)

    def filestat(self) -> Filestat:
        return Filestat(0, 0, self.filetype, 1, 0, 0, 0, 0)

    def set_size(self, size: int) -> None:
        raise WasiError(Errno.EBADF)

    def set_times(self, atim: int, mtim: int, fst_flags: int) -> None:
        raise WasiError(Errno.EBADF)

    # --- poll --------------------------------------------------------------
    def readiness_read(self) -> Readiness:
        return READY

    def readiness_write(self) -> Readiness:
        return READY

    def poll_probe(self, write: bool) -> PollProbe:
        """What poll_oneoff calls, each time it looks, for reading (or writing) readiness.

        The same answers as `readiness_read`/`readiness_write`; a description
        may hand out a cheaper function that gives them (a socket: its stack
        socket's own poll, with Linux errnos and the table to translate them).
        """
        return (self.readiness_write if write else self.readiness_read), None

    # --- lifetime ----------------------------------------------------------
    def close(self) -> None:
        """Release host resources. Called once, when the last fd referring to it closes."""


#: FileDescription's attributes with a class-level default, which a subclass written in
#: Python must set in its ``__init__`` instead (see `_check_subclass`).
_PER_INSTANCE = ("filetype", "is_socket", "is_stack_socket", "poll_is_atomic", "rights_base",
                 "rights_inheriting", "receive_ready")
#: Modules whose subclasses are compiled with FileDescription (vnet/compile_stack.py).
_COMPILED_WITH_IT = frozenset({__name__, "vnet.guest.sockets"})
_CHECKED_SUBCLASSES: Final[set[type]] = set()


def _check_subclass(cls: type) -> None:
    """Refuse a subclass that sets one of `_PER_INSTANCE` at class level.

    Compiled (vnet/compile_stack.py), FileDescription keeps these in slots of its
    own, which compiled code reads directly, while a Python subclass's class
    attribute of the same name hides the slot from Python code: the two would
    disagree. Setting it in ``__init__`` writes the slot, on either build.
    """
    for klass in cls.__mro__:
        if klass is FileDescription:
            break
        if klass.__module__ in _COMPILED_WITH_IT:
            continue
        for name in _PER_INSTANCE:
            if name in klass.__dict__ and not isinstance(
                    klass.__dict__[name], (property, GetSetDescriptorType, MemberDescriptorType)):
                raise TypeError(f"{klass.__qualname__}.{name}: set it in __init__, not at class "
                                "level (FileDescription may be compiled: vnet/guest/fdtable.py)")
    _CHECKED_SUBCLASSES.add(cls)


class OutputStream(FileDescription):
    """stdout/stderr: every write is handed to a sink callable (never blocks)."""

    filetype = Filetype.CHARACTER_DEVICE
    rights_base = int(RIGHTS_TTY_BASE)

    def __init__(self, sink: object) -> None:
        super().__init__()
        self._sink = sink

    def write(self, data: bytes | memoryview) -> int:
        payload = bytes(data)
        self._sink(payload)  # type: ignore[operator]
        return len(payload)


class InputStream(FileDescription):
    """stdin: a byte buffer fed by the host (a test, or a reader thread on fd 0).

    `feed()` appends data, `close_input()` marks end of input; both may be
    called from any thread, and the owner wakes the scheduler afterwards.
    """

    filetype = Filetype.CHARACTER_DEVICE
    rights_base = int(RIGHTS_TTY_BASE)

    def __init__(self, data: bytes = b"", eof: bool = True) -> None:
        super().__init__()
        self._buffer = bytearray(data)
        self._eof = eof

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def close_input(self) -> None:
        self._eof = True

    def read(self, size: int) -> bytes:
        if self._buffer:
            chunk = bytes(self._buffer[:size])
            del self._buffer[:size]
            return chunk
        if self._eof:
            return b""
        raise WasiError(Errno.EAGAIN)

    def readiness_read(self) -> Readiness:
        if self._buffer:
            return Readiness(True, len(self._buffer))
        if self._eof:
            return Readiness(True, 0, hangup=True)
        return Readiness(False)

    def readiness_write(self) -> Readiness:
        return Readiness(True, error=Errno.EBADF)


class FdEntry:
    """One slot of the table: the description plus this fd's rights.

    A plain class, not a dataclass: compiled, a dataclass's generated ``__init__``
    stays interpreted (every open would run Python code to make its entry).
    """

    __slots__ = ("description", "rights_base", "rights_inheriting")

    def __init__(self, description: FileDescription, rights_base: int,
                 rights_inheriting: int) -> None:
        self.description = description
        self.rights_base = rights_base
        self.rights_inheriting = rights_inheriting

    def __repr__(self) -> str:
        return (f"FdEntry(description={self.description!r}, rights_base={self.rights_base}, "
                f"rights_inheriting={self.rights_inheriting})")


class FdTable:
    """fd number → FdEntry, with a cap on how many may be open."""

    def __init__(self, max_fds: int = 1024) -> None:
        self.max_fds = max_fds
        self._entries: dict[int, FdEntry] = {}
        self._preopen_names: dict[int, str] = {}
        #: fds installed by `add_at` that do not count against max_fds (the synthetic /dev).
        self._uncounted: set[int] = set()
        #: How many fds refer to each open description (by id()): the last one closed
        #: closes it.
        self._refs: dict[object, int] = {}
        #: How many fds refer to stack sockets (the per-guest socket limit counts them).
        self.socket_fds = 0

    def _set(self, fd: int, entry: FdEntry) -> None:
        """Put `entry` at `fd` (which must be free) and count its reference."""
        self._entries[fd] = entry
        description = entry.description
        key: object = id(description)  # an object: compiled, boxed once for both lookups
        self._refs[key] = self._refs.get(key, 0) + 1
        if description.is_stack_socket:
            self.socket_fds += 1

    def __len__(self) -> int:
        return len(self._entries)

    def counted(self) -> int:
        """The open fds that count against max_fds (not the synthetic /dev and /etc)."""
        return len(self._entries) - len(self._uncounted)

    def __contains__(self, fd: int) -> bool:
        return fd in self._entries

    def entry(self, fd: int) -> FdEntry:
        entry = self._entries.get(fd)
        if entry is None:
            raise WasiError(Errno.EBADF)
        return entry

    def get(self, fd: int, rights: int = 0) -> FileDescription:
        """The description behind fd; EBADF if it is not open or lacks `rights`."""
        entry = self._entries.get(fd)
        if entry is None or (entry.rights_base & rights) != rights:
            raise WasiError(Errno.EBADF)
        return entry.description

    def add(
        self,
        description: FileDescription,
        rights_base: int | None = None,
        rights_inheriting: int | None = None,
        preopen_name: str | None = None,
    ) -> int:
        """Install at the lowest free number; EMFILE past the cap."""
        if self.counted() >= self.max_fds:
            raise WasiError(Errno.EMFILE)
        entries = self._entries
        fd = 0
        while fd in entries:
            fd += 1
        self._set(fd, FdEntry(
            description,
            description.rights_base if rights_base is None else rights_base,
            description.rights_inheriting if rights_inheriting is None else rights_inheriting,
        ))
        if preopen_name is not None:
            self._preopen_names[fd] = preopen_name
        return fd

    def add_at(self, fd: int, description: FileDescription,
               preopen_name: str | None = None) -> int:
        """Install at a given free number, not counted against max_fds (the guest's
        synthetic /dev, which on Linux takes no fd); EBADF if the number is taken."""
        if fd in self._entries:
            raise WasiError(Errno.EBADF)
        self._set(fd, FdEntry(description, description.rights_base,
                              description.rights_inheriting))
        if preopen_name is not None:
            self._preopen_names[fd] = preopen_name
        self._uncounted.add(fd)
        return fd

    def preopen_name(self, fd: int) -> str | None:
        self.entry(fd)
        return self._preopen_names.get(fd)

    def _release(self, description: FileDescription) -> None:
        """One fd fewer refers to `description` (its entry is gone): close it if it was
        the last."""
        if description.is_stack_socket:
            self.socket_fds -= 1
        key: object = id(description)  # boxed once (see _set)
        refs = self._refs
        left = refs.get(key, 1) - 1
        if left > 0:
            refs[key] = left
            return
        if key in refs:  # (`in` and `del` rather than pop(key, None): compiled, no
            del refs[key]  # method lookup)
        description.close()

    def close(self, fd: int) -> None:
        entries = self._entries
        entry = entries.get(fd)
        if entry is None:
            raise WasiError(Errno.EBADF)
        del entries[fd]
        if fd in self._preopen_names:
            del self._preopen_names[fd]
        self._uncounted.discard(fd)
        self._release(entry.description)

    def renumber(self, fd_from: int, fd_to: int) -> None:
        """fd_renumber: both must be open (as wasmtime requires); `to` is replaced."""
        source = self.entry(fd_from)
        target = self.entry(fd_to)
        if fd_from == fd_to:
            return
        del self._entries[fd_from]
        name = self._preopen_names.pop(fd_from, None)
        self._entries[fd_to] = source  # moved: the count of its description stays
        self._preopen_names.pop(fd_to, None)
        self._uncounted.discard(fd_from)
        self._uncounted.discard(fd_to)
        if name is not None:
            self._preopen_names[fd_to] = name
        self._release(target.description)

    def dup(self, fd: int, lowest: int = 0) -> int:
        """dup / fcntl(F_DUPFD): a new fd (the lowest free one ≥ `lowest`) for the same
        description and rights; the description stays open until its last fd closes."""
        entry = self.entry(fd)
        if lowest >= self.max_fds:
            raise WasiError(Errno.EINVAL)  # F_DUPFD past RLIMIT_NOFILE, as Linux
        if self.counted() >= self.max_fds:
            raise WasiError(Errno.EMFILE)
        new = lowest
        while new in self._entries:
            new += 1
        if new >= self.max_fds:
            raise WasiError(Errno.EMFILE)
        self._set(new, FdEntry(entry.description, entry.rights_base, entry.rights_inheriting))
        return new

    def dup_to(self, fd: int, target: int) -> int:
        """dup2: `target` refers to fd's description; what it referred to is closed
        (released if that was its last fd). EBADF for a target past the fd limit."""
        entry = self.entry(fd)
        if not 0 <= target < self.max_fds:
            raise WasiError(Errno.EBADF)
        if target == fd:
            return target
        old = self._entries.pop(target, None)
        self._set(target, FdEntry(entry.description, entry.rights_base,
                                  entry.rights_inheriting))
        self._preopen_names.pop(target, None)
        if old is not None:
            self._release(old.description)
        return target

    def close_all(self) -> None:
        for fd in sorted(self._entries):
            entry = self._entries.pop(fd)
            self._release(entry.description)
        self._preopen_names.clear()
        self._uncounted.clear()

    def items(self) -> list[tuple[int, FdEntry]]:
        return sorted(self._entries.items())
