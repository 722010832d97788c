"""wasi_snapshot_preview1: everything but the path_* filesystem calls.

Args and environment, clocks (read from the scheduler), random_get (seeded
in virtual time), proc_exit, sched_yield, poll_oneoff — the one place a guest
blocks — and the fd calls that work on any open description (files, stdio,
sockets). The path-based filesystem calls live in `wasi_fs`.

Semantics follow the preview1 witx and, where it is silent, what wasmtime's
own preview1 implementation does (tests compare against it). Each function
reads and writes guest memory only through `ctx.mem` and touches host state
only through the fd table's descriptions and the scheduler.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Mapping
from typing import Final, TypeVar

from .abi import UNLOCKED_FIRST, GuestExit, host_function
from .context import GuestContext
from .fdtable import FileDescription, PollState, Readiness
from .memory import iovecs_total
from .wasi_types import (
    EVENT,
    EVENTRWFLAGS_HANGUP,
    FDFLAGS_ALL,
    FDFLAGS_NONBLOCK,
    FDSTAT,
    FILESTAT,
    PREOPENTYPE_DIR,
    PRESTAT,
    SUBCLOCKFLAGS_ABSTIME,
    SUBSCRIPTION_SIZE,
    Clockid,
    Errno,
    Eventtype,
    Rights,
    WasiError,
)

M = "wasi_snapshot_preview1"
T = TypeVar("T")

# One read/write call moves at most this much; more is a short read/write, as
# Linux's MAX_RW_COUNT (0x7ffff000) but smaller, so one call stays short.
MAX_IO_BYTES: Final = 64 * 1024 * 1024
WRITE_CHUNK: Final = 1024 * 1024  # a file write copies guest data this much at a time


# --- args and environment ---------------------------------------------------

def _write_string_list(ctx: GuestContext, items: list[bytes], ptrs: int, buf: int) -> int:
    mem = ctx.mem
    mem.check(ptrs, 4 * len(items))
    mem.check(buf, sum(len(i) + 1 for i in items))
    offset = buf
    for index, item in enumerate(items):
        mem.write_u32(ptrs + 4 * index, offset)
        mem.write(offset, item + b"\0")
        offset += len(item) + 1
    return Errno.SUCCESS


def _args(ctx: GuestContext) -> list[bytes]:
    return [a.encode() for a in ctx.args]


def _environ(ctx: GuestContext) -> list[bytes]:
    return [f"{k}={v}".encode() for k, v in ctx.env]


@host_function(M, "args_get", "ii")
def args_get(ctx: GuestContext, argv: int, argv_buf: int) -> int:
    return _write_string_list(ctx, _args(ctx), argv, argv_buf)


@host_function(M, "args_sizes_get", "ii")
def args_sizes_get(ctx: GuestContext, argc_ptr: int, size_ptr: int) -> int:
    items = _args(ctx)
    ctx.mem.write_u32(argc_ptr, len(items))
    ctx.mem.write_u32(size_ptr, sum(len(i) + 1 for i in items))
    return Errno.SUCCESS


@host_function(M, "environ_get", "ii")
def environ_get(ctx: GuestContext, environ: int, environ_buf: int) -> int:
    return _write_string_list(ctx, _environ(ctx), environ, environ_buf)


@host_function(M, "environ_sizes_get", "ii")
def environ_sizes_get(ctx: GuestContext, count_ptr: int, size_ptr: int) -> int:
    items = _environ(ctx)
    ctx.mem.write_u32(count_ptr, len(items))
    ctx.mem.write_u32(size_ptr, sum(len(i) + 1 for i in items))
    return Errno.SUCCESS


# --- clocks and randomness --------------------------------------------------

# Plain ints for the hot calls: an enum member costs an attribute lookup per use (and
# Final ones, compiled, cost no lookup at all).
_REALTIME: Final = int(Clockid.REALTIME)
_MONOTONIC: Final = int(Clockid.MONOTONIC)
SUCCESS: Final = int(Errno.SUCCESS)
# Rights as plain ints: `int & Rights.X` would go through enum.Flag's Python-level
# __rand__ (about a microsecond) on every poll, read and write.
_POLL_RIGHTS: Final = int(Rights.POLL_FD_READWRITE)
_READ_RIGHTS: Final = int(Rights.FD_READ)
_WRITE_RIGHTS: Final = int(Rights.FD_WRITE)
_NONBLOCK: Final = int(FDFLAGS_NONBLOCK)


def _clock_now(ctx: GuestContext, clock_id: int) -> int:
    if clock_id == _MONOTONIC:
        return ctx.scheduler.monotonic_ns()
    if clock_id == _REALTIME:
        return ctx.scheduler.realtime_ns()
    raise WasiError(Errno.EINVAL)


@host_function(M, "clock_res_get", "ii")
def clock_res_get(ctx: GuestContext, clock_id: int, res_ptr: int) -> int:
    if clock_id not in (Clockid.REALTIME, Clockid.MONOTONIC):
        raise WasiError(Errno.EINVAL)
    ctx.mem.write_u64(res_ptr, 1)
    return Errno.SUCCESS


@host_function(M, "clock_time_get", "iIi")
def clock_time_get(ctx: GuestContext, clock_id: int, _precision: int, time_ptr: int) -> int:
    if clock_id == _MONOTONIC:  # _clock_now, inlined: a guest may read the clock often
        now = ctx.scheduler.monotonic_ns()
    elif clock_id == _REALTIME:
        now = ctx.scheduler.realtime_ns()
    else:
        raise WasiError(Errno.EINVAL)
    ctx.mem.write_u64(time_ptr, now)
    return SUCCESS


@host_function(M, "random_get", "ii")
def random_get(ctx: GuestContext, buf: int, length: int) -> int:
    ctx.mem.check(buf, length)
    for offset in range(0, length, WRITE_CHUNK):  # never a copy of the whole request
        size = min(WRITE_CHUNK, length - offset)
        data = ctx.rng.randbytes(size) if ctx.scheduler.virtual else os.urandom(size)
        ctx.mem.write(buf + offset, data)
    return Errno.SUCCESS


# --- process ---------------------------------------------------------------

@host_function(M, "proc_exit", "i", "")
def proc_exit(ctx: GuestContext, code: int) -> int:
    raise GuestExit(code, "exit")


@host_function(M, "proc_raise", "i")
def proc_raise(ctx: GuestContext, _signal: int) -> int:
    return Errno.ENOSYS


@host_function(M, "sched_yield", "")
def sched_yield(ctx: GuestContext) -> int:
    assert ctx.task is not None
    ctx.scheduler.yield_task(ctx.task)
    return Errno.SUCCESS


# --- blocking helper --------------------------------------------------------

def wait_for_io(
    ctx: GuestContext,
    description: FileDescription,
    attempt: Callable[[], T],
    readiness: Callable[[], Readiness],
    deadline_ns: int | None = None,
    tried: bool = False,
) -> T:
    """Try a non-blocking operation; on EAGAIN block until ready (unless O_NONBLOCK).

    A deadline that passes raises EAGAIN, as SO_RCVTIMEO/SO_SNDTIMEO do on Linux.
    `tried`: the caller's own first attempt failed with EAGAIN on a blocking
    description already (a call that tries directly, without the closure):
    block first.
    """
    while True:
        if tried:
            if not ctx.block_until(lambda: readiness().ready, deadline_ns):
                raise WasiError(Errno.EAGAIN)
        tried = True
        try:
            return attempt()
        except WasiError as e:
            if e.errno != Errno.EAGAIN or description.nonblocking:
                raise


def wait_to_receive(ctx: GuestContext, description: FileDescription,
                    deadline_ns: int | None = None,
                    ready: Callable[[], bool] | None = None) -> None:
    """Before a blocking read: wait while the description says it would block.

    For a description with a `receive_ready` test (sockets) that is false, and
    not O_NONBLOCK: block until it holds, so the read that follows finds its
    data (or error, or EOF) without first failing with EAGAIN — no exception
    raised, caught and translated on every receive that waits. A deadline that
    passes raises EAGAIN, as `wait_for_io` does. Otherwise returns at once.
    `ready` replaces the description's test (accept() has one of its own).
    """
    if ready is None:
        ready = description.receive_ready
    if ready is not None and not ready() and not description.fdflags & _NONBLOCK:
        if not ctx.block_until(ready, deadline_ns):
            raise WasiError(Errno.EAGAIN)


# --- poll_oneoff ------------------------------------------------------------

def max_subscriptions(ctx: GuestContext) -> int:
    """The most subscriptions one poll_oneoff takes: what poll() needs for max_fds pollfds.

    Linux's poll() is EINVAL when nfds exceeds RLIMIT_NOFILE; the SDK's poll()
    subscribes each pollfd for reading and writing, plus one clock.
    """
    return 2 * ctx.limits.max_fds + 1


#: One whole subscription (48 bytes): userdata, tag, and the union read as a clock
#: (id, timeout, precision, flags), whose first field is also an fd subscription's fd.
_SUBSCRIPTION: Final = struct.Struct("<QB7xI4xQQH6x")
assert _SUBSCRIPTION.size == SUBSCRIPTION_SIZE
_CLOCK: Final = int(Eventtype.CLOCK)
_FD_READ: Final = int(Eventtype.FD_READ)
_FD_WRITE: Final = int(Eventtype.FD_WRITE)
_EINVAL: Final = int(Errno.EINVAL)
_EIO: Final = int(Errno.EIO)
EVENT_SIZE: Final = EVENT.size
_EVENT_PACK: Final = EVENT.pack_into
_U32_PACK: Final = struct.Struct("<I").pack_into
#: An event for the guest: (userdata, errno, type, nbytes, flags), as EVENT packs it.
PollEvent = tuple[int, int, int, int, int]


#: A subscribed fd: (userdata, event type, its probe, the probe's errno table or None).
PollProbeEntry = tuple[int, int, Callable[[], PollState], Mapping[int, int] | None]


def _poll_events(immediate: list[PollEvent], probes: list[PollProbeEntry],
                 clocks: list[tuple[int, int]], now: int) -> list[PollEvent]:
    """The events a poll_oneoff has at monotonic time `now`: the immediate ones,
    ready fds, clocks due."""
    events = immediate[:]
    for userdata, tag, probe, errnos in probes:
        state = probe()
        if state.ready or state.hangup or state.error:
            error = state.error
            if error and errnos is not None:
                error = errnos.get(error, _EIO)
            events.append((userdata, error, tag, state.nbytes,
                           EVENTRWFLAGS_HANGUP if state.hangup else 0))
    if clocks:
        for userdata, deadline in clocks:
            if deadline <= now:
                events.append((userdata, SUCCESS, _CLOCK, 0, 0))
    return events


def _poll_wait(ctx: GuestContext, immediate: list[PollEvent], probes: list[PollProbeEntry],
               clocks: list[tuple[int, int]]) -> list[PollEvent]:
    """Nothing to report yet: wait until an fd is ready or the earliest clock is due."""
    sched = ctx.scheduler
    earliest = min([d for _, d in clocks]) if clocks else None
    found: list[PollEvent] = []

    def ready() -> bool:
        # block_until returns True right after the waiting guest's own call of
        # this (under the lock): what it found then is the answer, not collected again
        nonlocal found
        found = _poll_events(immediate, probes, clocks, sched.monotonic_ns()) if probes else []
        return bool(found)

    if ctx.block_until(ready, earliest):
        return found
    return _poll_events(immediate, probes, clocks, sched.monotonic_ns())


def _subscriptions(ctx: GuestContext, view: memoryview, in_ptr: int, in_end: int, now: int,
                   ) -> tuple[list[PollEvent], list[PollProbeEntry], list[tuple[int, int]], bool]:
    """poll_oneoff's subscriptions, read from memory's whole view (range checked).

    Returns the events known at once, the fd probes, the clocks as (userdata,
    monotonic deadline), and whether every probed description's poll may run
    without the network lock. EINVAL for an unknown subscription type.
    """
    clocks: list[tuple[int, int]] = []
    probes: list[PollProbeEntry] = []
    immediate: list[PollEvent] = []
    atomic = True
    fds = ctx.fds
    unpack = _SUBSCRIPTION.unpack_from
    for base in range(in_ptr, in_end, SUBSCRIPTION_SIZE):
        userdata, tag, ident, timeout, _precision, flags = unpack(view, base)
        if tag == _CLOCK:
            if ident != _MONOTONIC and ident != _REALTIME:
                immediate.append((userdata, _EINVAL, tag, 0, 0))
                continue
            if flags & SUBCLOCKFLAGS_ABSTIME:
                current = _clock_now(ctx, ident)
                deadline = now + max(0, timeout - current)
            else:
                deadline = now + timeout
            clocks.append((userdata, deadline))
        elif tag == _FD_READ or tag == _FD_WRITE:
            try:
                description = fds.get(ident, _POLL_RIGHTS)
            except WasiError as e:
                immediate.append((userdata, int(e.errno), tag, 0, 0))
                continue
            probe, errnos = description.poll_probe(tag == _FD_WRITE)
            probes.append((userdata, tag, probe, errnos))
            atomic = atomic and description.poll_is_atomic
        else:
            raise WasiError(Errno.EINVAL)
    return immediate, probes, clocks, atomic


@host_function(M, "poll_oneoff", "iiii")
def poll_oneoff(ctx: GuestContext, in_ptr: int, out_ptr: int, nsubscriptions: int,
                nevents_ptr: int) -> int:
    """The subscriptions are read with one struct, straight from memory's view.

    Each fd subscription keeps its description's poll probe (a socket's is
    its stack socket's own poll), so looking again — as the scheduler does
    while the guest waits — costs one call per fd. Every range is checked
    before anything is read or written. (`poll_ready_unlocked` answers first,
    without the network lock, when it can.)
    """
    if nsubscriptions == 0 or nsubscriptions > 2 * ctx.limits.max_fds + 1:
        raise WasiError(Errno.EINVAL)  # max_subscriptions; checked before anything is read
    mem = ctx.mem
    in_end = in_ptr + nsubscriptions * SUBSCRIPTION_SIZE
    out_end = out_ptr + nsubscriptions * EVENT_SIZE
    size = mem.known_size  # the pointers are u32s: only the ends can be out of range
    if in_end > size or out_end > size or nevents_ptr + 4 > size:
        mem.check(in_ptr, in_end - in_ptr)  # re-reads the size; EFAULT if still outside
        mem.check(out_ptr, out_end - out_ptr)
        mem.check(nevents_ptr, 4)
    view = mem.checked_view()
    now = ctx.scheduler.monotonic_ns()
    immediate, probes, clocks, _atomic = _subscriptions(ctx, view, in_ptr, in_end, now)
    events = _poll_events(immediate, probes, clocks, now)
    if events:  # the guest did not run since the checks: the view still covers them
        _write_events(view, out_ptr, nevents_ptr, events)
        return SUCCESS
    events = _poll_wait(ctx, immediate, probes, clocks)
    mem.pack_each(EVENT, out_ptr, events)  # checked again: others ran meanwhile
    mem.write_u32(nevents_ptr, len(events))
    return SUCCESS


def _write_events(view: memoryview, out_ptr: int, nevents_ptr: int,
                  events: list[PollEvent]) -> None:
    pack_event = _EVENT_PACK
    at = out_ptr
    for event in events:
        pack_event(view, at, *event)
        at += EVENT_SIZE
    _U32_PACK(view, nevents_ptr, len(events))


def poll_ready_unlocked(ctx: GuestContext, in_ptr: int, out_ptr: int, nsubscriptions: int,
                        nevents_ptr: int) -> int | None:
    """poll_oneoff's first try, without the network lock (vnet.guest.abi.UNLOCKED_FIRST).

    Answers only the plain case: a single-threaded guest, every range inside
    memory as last seen, every subscription valid, every fd one whose poll
    reads state other threads change one whole operation at a time (a UDP
    socket's queue), and something to report now — exactly the events
    poll_oneoff would report. Anything else (an error to return, a wait)
    returns None and the call runs under the lock as poll_oneoff.
    """
    if (ctx.thread_blocker is not None or nsubscriptions == 0
            or nsubscriptions > 2 * ctx.limits.max_fds + 1):
        return None
    mem = ctx.memory
    if mem is None:
        return None
    in_end = in_ptr + nsubscriptions * SUBSCRIPTION_SIZE
    size = mem.known_size
    if (in_end > size or out_ptr + nsubscriptions * EVENT_SIZE > size
            or nevents_ptr + 4 > size):
        return None
    view = mem.checked_view()
    now = ctx.scheduler.monotonic_ns()
    immediate, probes, clocks, atomic = _subscriptions(ctx, view, in_ptr, in_end, now)
    if immediate or not atomic or not probes:
        return None
    events = _poll_events(immediate, probes, clocks, now)
    if not events:
        return None
    _write_events(view, out_ptr, nevents_ptr, events)
    return SUCCESS


UNLOCKED_FIRST[f"{M}.poll_oneoff"] = poll_ready_unlocked


# --- fd calls on any description ---------------------------------------------

@host_function(M, "fd_close", "i")
def fd_close(ctx: GuestContext, fd: int) -> int:
    ctx.fds.close(fd)
    return SUCCESS


@host_function(M, "fd_fdstat_get", "ii")
def fd_fdstat_get(ctx: GuestContext, fd: int, stat_ptr: int) -> int:
    entry = ctx.fds.entry(fd)
    d = entry.description
    ctx.mem.pack(FDSTAT, stat_ptr, d.filetype, d.fdflags, entry.rights_base,
                 entry.rights_inheriting)
    return SUCCESS


@host_function(M, "fd_fdstat_set_flags", "ii")
def fd_fdstat_set_flags(ctx: GuestContext, fd: int, flags: int) -> int:
    description = ctx.fds.get(fd)
    if flags & ~FDFLAGS_ALL:
        raise WasiError(Errno.EINVAL)
    description.set_fdflags(flags)
    return Errno.SUCCESS


@host_function(M, "fd_fdstat_set_rights", "iII")
def fd_fdstat_set_rights(ctx: GuestContext, fd: int, base: int, inheriting: int) -> int:
    entry = ctx.fds.entry(fd)
    if (base & ~entry.rights_base) or (inheriting & ~entry.rights_inheriting):
        raise WasiError(Errno.ENOTCAPABLE)
    entry.rights_base = base
    entry.rights_inheriting = inheriting
    return Errno.SUCCESS


@host_function(M, "fd_renumber", "ii")
def fd_renumber(ctx: GuestContext, fd_from: int, fd_to: int) -> int:
    ctx.fds.renumber(fd_from, fd_to)
    return Errno.SUCCESS


@host_function(M, "fd_prestat_get", "ii")
def fd_prestat_get(ctx: GuestContext, fd: int, prestat_ptr: int) -> int:
    name = ctx.fds.preopen_name(fd)
    if name is None:
        raise WasiError(Errno.EBADF)
    ctx.mem.pack(PRESTAT, prestat_ptr, PREOPENTYPE_DIR, len(name.encode()))
    return Errno.SUCCESS


@host_function(M, "fd_prestat_dir_name", "iii")
def fd_prestat_dir_name(ctx: GuestContext, fd: int, path: int, path_len: int) -> int:
    name = ctx.fds.preopen_name(fd)
    if name is None:
        raise WasiError(Errno.ENOTDIR)  # as wasmtime: an open fd that is no preopen
    data = name.encode()
    if path_len < len(data):
        raise WasiError(Errno.ENAMETOOLONG)
    ctx.mem.write(path, data)
    return Errno.SUCCESS


def _iov_total(iovs: list[tuple[int, int]]) -> int:
    return min(iovecs_total(iovs), MAX_IO_BYTES)


@host_function(M, "fd_read", "iiii")
def fd_read(ctx: GuestContext, fd: int, iovs_ptr: int, iovs_len: int, nread_ptr: int) -> int:
    d = ctx.fds.get(fd, _READ_RIGHTS)
    mem = ctx.mem
    iovs = mem.iovecs(iovs_ptr, iovs_len)
    mem.check(nread_ptr, 4)
    total = _iov_total(iovs)
    deadline: int | None = None  # read only by a read that waits
    ready = d.receive_ready
    if ready is not None and not ready():  # wait first, rather than fail with EAGAIN first
        deadline = _receive_deadline(ctx, d)
        wait_to_receive(ctx, d, deadline)
    try:  # wait_for_io's first attempt, without its closure: most reads find their data
        data = d.read(total)
    except WasiError as e:
        if e.errno != Errno.EAGAIN or d.nonblocking:
            raise
        if deadline is None:
            deadline = _receive_deadline(ctx, d)
        data = _read_waiting(ctx, d, total, deadline)
    mem.write_u32(nread_ptr, mem.scatter(iovs, data))
    return SUCCESS


def _receive_deadline(ctx: GuestContext, d: FileDescription) -> int | None:
    """When a read of `d` that waits gives up: a socket's SO_RCVTIMEO bounds read() as it
    bounds recv() (Linux: EAGAIN); None: never."""
    timeout_ns: int | None = getattr(d, "recv_timeout_ns", None) if d.is_socket else None
    return None if timeout_ns is None else ctx.now_ns() + timeout_ns


def _read_waiting(ctx: GuestContext, d: FileDescription, total: int,
                  deadline: int | None) -> bytes:
    """fd_read's read once its first try found nothing: wait, and try again (a function
    of its own, so that fd_read makes no closure when it does not wait)."""
    return wait_for_io(ctx, d, lambda: d.read(total), d.readiness_read, deadline, tried=True)


def write_in_chunks(ctx: GuestContext, iovs: list[tuple[int, int]],
                    write: Callable[[bytes, int], int]) -> int:
    """Write the iovecs' stream (up to MAX_IO_BYTES) in WRITE_CHUNK copies.

    write(chunk, offset) returns how much it took; a short write ends the call,
    and an error after some bytes were written becomes a short write.
    """
    total = _iov_total(iovs)
    done = 0
    while True:
        chunk = ctx.mem.gather(iovs, done, min(WRITE_CHUNK, total - done))
        try:
            written = write(chunk, done)
        except WasiError:
            if done:
                return done
            raise
        done += written
        if done >= total or written < len(chunk):
            return done


_send_iovecs: Callable[..., int] | None = None


def _socket_send_iovecs() -> Callable[..., int]:
    """vnet.guest.wasix.send_iovecs, imported on first use (the socket layer imports
    this module) and then kept: an import statement per write costs a lookup."""
    global _send_iovecs
    if _send_iovecs is None:
        from .wasix import send_iovecs

        _send_iovecs = send_iovecs
    return _send_iovecs


@host_function(M, "fd_write", "iiii")
def fd_write(ctx: GuestContext, fd: int, iovs_ptr: int, iovs_len: int, nwritten_ptr: int) -> int:
    d = ctx.fds.get(fd, _WRITE_RIGHTS)
    mem = ctx.mem
    iovs = mem.iovecs(iovs_ptr, iovs_len)
    mem.check(nwritten_ptr, 4)
    if d.is_socket:
        written = _socket_send_iovecs()(ctx, d, iovs, None)
    else:
        written = _write_not_socket(ctx, d, iovs)
    mem.write_u32(nwritten_ptr, written)
    return SUCCESS


def _write_not_socket(ctx: GuestContext, d: FileDescription, iovs: list[tuple[int, int]]) -> int:
    """fd_write to anything but a socket: in chunks, each waiting while `d` would block (a
    function of its own, so that fd_write to a socket makes no closures)."""
    return write_in_chunks(ctx, iovs, lambda chunk, _offset: wait_for_io(
        ctx, d, lambda: d.write(chunk), d.readiness_write))


@host_function(M, "fd_pread", "iiiIi")
def fd_pread(ctx: GuestContext, fd: int, iovs_ptr: int, iovs_len: int, offset: int,
             nread_ptr: int) -> int:
    d = ctx.fds.get(fd, Rights.FD_READ | Rights.FD_SEEK)
    iovs = ctx.mem.iovecs(iovs_ptr, iovs_len)
    ctx.mem.check(nread_ptr, 4)
    data = d.pread(_iov_total(iovs), offset)
    ctx.mem.write_u32(nread_ptr, ctx.mem.scatter(iovs, data))
    return Errno.SUCCESS


@host_function(M, "fd_pwrite", "iiiIi")
def fd_pwrite(ctx: GuestContext, fd: int, iovs_ptr: int, iovs_len: int, offset: int,
              nwritten_ptr: int) -> int:
    d = ctx.fds.get(fd, Rights.FD_WRITE | Rights.FD_SEEK)
    iovs = ctx.mem.iovecs(iovs_ptr, iovs_len)
    ctx.mem.check(nwritten_ptr, 4)
    written = write_in_chunks(ctx, iovs, lambda chunk, done: d.pwrite(chunk, offset + done))
    ctx.mem.write_u32(nwritten_ptr, written)
    return Errno.SUCCESS


@host_function(M, "fd_seek", "iSii")
def fd_seek(ctx: GuestContext, fd: int, offset: int, whence: int, newoffset_ptr: int) -> int:
    rights = Rights.FD_TELL if (offset == 0 and whence == 1) else Rights.FD_SEEK | Rights.FD_TELL
    d = ctx.fds.get(fd, rights)
    if whence > 2:
        raise WasiError(Errno.EINVAL)
    ctx.mem.check(newoffset_ptr, 8)
    ctx.mem.write_u64(newoffset_ptr, d.seek(offset, whence))
    return Errno.SUCCESS


@host_function(M, "fd_tell", "ii")
def fd_tell(ctx: GuestContext, fd: int, offset_ptr: int) -> int:
    d = ctx.fds.get(fd, Rights.FD_TELL)
    ctx.mem.check(offset_ptr, 8)
    ctx.mem.write_u64(offset_ptr, d.tell())
    return Errno.SUCCESS


@host_function(M, "fd_sync", "i")
def fd_sync(ctx: GuestContext, fd: int) -> int:
    ctx.fds.get(fd).sync()
    return Errno.SUCCESS


@host_function(M, "fd_datasync", "i")
def fd_datasync(ctx: GuestContext, fd: int) -> int:
    ctx.fds.get(fd).datasync()
    return Errno.SUCCESS


@host_function(M, "fd_advise", "iIIi")
def fd_advise(ctx: GuestContext, fd: int, offset: int, length: int, advice: int) -> int:
    if advice > 5:
        raise WasiError(Errno.EINVAL)
    ctx.fds.get(fd).advise(offset, length, advice)
    return Errno.SUCCESS


@host_function(M, "fd_allocate", "iII")
def fd_allocate(ctx: GuestContext, fd: int, offset: int, length: int) -> int:
    ctx.fds.get(fd).allocate(offset, length)
    return Errno.SUCCESS


@host_function(M, "fd_filestat_get", "ii")
def fd_filestat_get(ctx: GuestContext, fd: int, buf: int) -> int:
    st = ctx.fds.get(fd).filestat()
    ctx.mem.pack(FILESTAT, buf, st.dev, st.ino, int(st.filetype), st.nlink, st.size,
                 st.atim, st.mtim, st.ctim)
    return Errno.SUCCESS


@host_function(M, "fd_filestat_set_size", "iI")
def fd_filestat_set_size(ctx: GuestContext, fd: int, size: int) -> int:
    ctx.fds.get(fd).set_size(size)
    return Errno.SUCCESS


@host_function(M, "fd_filestat_set_times", "iIIi")
def fd_filestat_set_times(ctx: GuestContext, fd: int, atim: int, mtim: int, flags: int) -> int:
    ctx.fds.get(fd).set_times(atim, mtim, flags)
    return Errno.SUCCESS
