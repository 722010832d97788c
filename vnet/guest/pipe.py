"""A pipe inside one guest (`pipe()`/`pipe2()`), with Linux's buffer rules.

`Pipe` is the kernel object; `PipeReadEnd` and `PipeWriteEnd` are the two
open file descriptions the guest's fd table holds (dup'ed fds share them).
The buffer is Linux's (fs/pipe.c): a ring of at most 16 pages of 4096 bytes
(64 KiB). A write first merges its last `len % 4096` bytes into the newest
page when they fit there, then fills fresh pages, so a write of at most
PIPE_BUF (4096) bytes is never split and a non-blocking write that finds no
free page is EAGAIN. A read takes bytes from the oldest pages, as many as
asked for and available. Reading with no writer left is end of file (0);
writing with no reader left is EPIPE (there is no SIGPIPE).

Readiness is Linux's `pipe_poll`: the read end is readable while data is
queued and hung up once every writer is gone; the write end is writable
while a page is free, and in error (EPIPE) once every reader is gone.
A blocking write returns short when the buffer fills (Linux would block
until a reader makes room; a single-threaded guest would then wait forever).

Bytes queued in a pipe are charged to the guest's socket memory budget when
it has one (its --max-memory), as socket queues are. Touches no guest memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from .fdtable import FileDescription, Filestat, Readiness
from .wasi_types import Errno, Filetype, Rights, WasiError

PIPE_PAGE = 4096
PIPE_PAGES = 16  # Linux's default pipe size: 16 pages, 64 KiB
PIPE_BUF = 4096

PIPE_READ_RIGHTS = int(Rights.FD_READ | Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_FILESTAT_GET
                       | Rights.POLL_FD_READWRITE)
PIPE_WRITE_RIGHTS = int(Rights.FD_WRITE | Rights.FD_FDSTAT_SET_FLAGS | Rights.FD_FILESTAT_GET
                        | Rights.POLL_FD_READWRITE)

_NOT_READY = Readiness(False)


class Pipe:
    """The shared buffer: pages of bytes, and whether each end is still open."""

    def __init__(self, memory: Any = None, wake: Callable[[], None] | None = None) -> None:
        # each page: [bytearray of what was written into it, read offset]
        self.pages: deque[list[Any]] = deque()
        self.queued = 0
        self.readers = 1
        self.writers = 1
        self.memory = memory  # a stack.socket_memory.SocketMemory, or None
        #: tells the scheduler that a waiter's readiness may have changed (another
        #: thread of the guest blocked on the other end); called under the network lock
        self.wake = wake

    def changed(self) -> None:
        if self.wake is not None:
            self.wake()

    def _charge(self, size: int) -> bool:
        if self.memory is None:
            return True
        if size > 0:
            return bool(self.memory.try_charge(size))
        self.memory.charge(size)
        return True

    def full(self) -> bool:
        return len(self.pages) >= PIPE_PAGES

    def room_for_a_page(self) -> bool:
        """A fresh page fits in the ring and in the memory budget (POLLOUT)."""
        if len(self.pages) >= PIPE_PAGES:
            return False
        return self.memory is None or self.memory.available() >= PIPE_PAGE

    def write(self, data: bytes | memoryview) -> int:
        if not self.readers:
            raise WasiError(Errno.EPIPE)
        total = len(data)
        if total == 0:
            return 0
        view = memoryview(data)
        done = 0
        tail = total % PIPE_PAGE
        if tail and self.pages:  # merge the tail of the write into the newest page
            page = self.pages[-1][0]
            if len(page) + tail <= PIPE_PAGE:
                if not self._charge(tail):
                    raise WasiError(Errno.EAGAIN)
                page += view[:tail]
                done = tail
        while done < total and not self.full():
            size = min(PIPE_PAGE, total - done)
            if not self._charge(size):
                break
            self.pages.append([bytearray(view[done:done + size]), 0])
            done += size
        self.queued += done
        if done == 0:
            raise WasiError(Errno.EAGAIN)
        self.changed()
        return done

    def read(self, size: int) -> bytes:
        if not self.pages:
            if not self.writers:
                return b""
            raise WasiError(Errno.EAGAIN)
        out = bytearray()
        while self.pages and len(out) < size:
            entry = self.pages[0]
            page, offset = entry
            take = min(size - len(out), len(page) - offset)
            out += page[offset:offset + take]
            offset += take
            if offset >= len(page):
                self.pages.popleft()
            else:
                entry[1] = offset
        self.queued -= len(out)
        self._charge(-len(out))
        self.changed()
        return bytes(out)

    def release(self) -> None:
        """Both ends closed: give the queued bytes' charge back."""
        if self.queued:
            self._charge(-self.queued)
        self.pages.clear()
        self.queued = 0


class PipeReadEnd(FileDescription):
    def __init__(self, pipe: Pipe) -> None:
        super().__init__()
        self.filetype = Filetype.UNKNOWN  # WASI has no FIFO file type
        self.rights_base = PIPE_READ_RIGHTS
        self.pipe = pipe

    def read(self, size: int) -> bytes:
        return self.pipe.read(size)

    def filestat(self) -> Filestat:
        return Filestat(0, id(self.pipe) & 0xFFFFFFFF, self.filetype, 1, 0, 0, 0, 0)

    def readiness_read(self) -> Readiness:
        pipe = self.pipe
        if pipe.queued:
            return Readiness(True, pipe.queued, hangup=not pipe.writers)
        if not pipe.writers:
            return Readiness(True, 0, hangup=True)
        return _NOT_READY

    def readiness_write(self) -> Readiness:
        return _NOT_READY  # Linux's pipe_poll never reports POLLOUT on the read end

    def close(self) -> None:
        pipe = self.pipe
        pipe.readers -= 1
        if not pipe.readers:
            pipe.release()  # nobody can read what is queued any more
        pipe.changed()


class PipeWriteEnd(FileDescription):
    def __init__(self, pipe: Pipe) -> None:
        super().__init__()
        self.filetype = Filetype.UNKNOWN
        self.rights_base = PIPE_WRITE_RIGHTS
        self.pipe = pipe

    def write(self, data: bytes | memoryview) -> int:
        return self.pipe.write(data)

    def filestat(self) -> Filestat:
        return Filestat(0, id(self.pipe) & 0xFFFFFFFF, self.filetype, 1, 0, 0, 0, 0)

    def readiness_read(self) -> Readiness:
        return _NOT_READY  # …nor POLLIN on the write end

    def readiness_write(self) -> Readiness:
        pipe = self.pipe
        if not pipe.readers:
            return Readiness(True, error=Errno.EPIPE)
        if not pipe.room_for_a_page():
            return _NOT_READY
        return Readiness(True, (PIPE_PAGES - len(pipe.pages)) * PIPE_PAGE)

    def close(self) -> None:
        pipe = self.pipe
        pipe.writers -= 1
        if not pipe.readers and not pipe.writers:
            pipe.release()
        pipe.changed()


def new_pipe(memory: Any = None, wake: Callable[[], None] | None = None
             ) -> tuple[PipeReadEnd, PipeWriteEnd]:
    pipe = Pipe(memory, wake)
    return PipeReadEnd(pipe), PipeWriteEnd(pipe)
