"""POSIX threads for guests built with `vnet cc -pthread`: green threads over Asyncify.

A `-pthread` guest is linked with vnet's pthread runtime (vnet/sdk/pthread/)
and then transformed by Binaryen's Asyncify (`wasm-opt --asyncify`, see
vnet/asyncify.py), which lets the wasm stack be unwound at the imports in
`ASYNCIFY_IMPORTS` and rewound later. All of a guest's threads run in its one
instance, on its one scheduler task: one memory, one fd table, one virtual
host, one set of limits (linear memory holds every thread's stack; the epoch
slices and the CPU budget count whatever thread runs; the fd table is shared).

Theory of operation:

- A thread that would block in a host call (`GuestContext.block_until`,
  reached from poll_oneoff, accept, recv, connect, sleep or a futex wait)
  raises `ThreadSwitch` when another thread of the guest is alive. The import's
  wrapper (`threaded_functions`: -pthread modules get a linker of their own,
  so other guests never run these wrappers) catches it, saves
  the thread's `__stack_pointer` and calls `asyncify_start_unwind`: the wasm
  stack unwinds into the thread's buffer and the export that runs the thread
  returns to `GuestThreads.run`.
- `run` picks the next thread: the oldest runnable one (FIFO), after moving to
  the run queue, in thread-id order, every blocked thread whose condition now
  holds or whose deadline passed. When none can run, the guest task blocks in
  the scheduler until any thread's condition holds or the earliest deadline:
  exactly like a single-threaded guest blocked in one call.
- To resume a thread, `run` restores its stack pointer, calls
  `asyncify_start_rewind` and calls the thread's entry again (`_start` for the
  main thread, `vnet_thread_start(thread)` for the others); the wasm stack is
  rebuilt up to the import, which is called again with the same arguments.
  The wrapper then stops the rewind and runs the host call once more; its
  first block keeps the deadline it had (a sleep is not restarted). Calls
  that have side effects before they block are made safe: connect resumes
  waiting for its handshake instead of connecting again; writes wait for room
  (switchably) before writing, and one that would wait again after part of
  its data went out returns the short count while the guest has other
  threads (a lone thread blocks until all is written); recv with MSG_WAITALL
  blocks in place.
- A thread spinning without host calls keeps its siblings waiting (the
  threads are cooperative), but never other guests: epoch interruption
  preempts the guest as a whole, as for any guest.

What the model does not give (as a user sees it): a thread that spins on a
flag without any host call never lets the sibling that would set it run (use
a mutex, a condition variable, sched_yield or a sleep); `_Thread_local` /
`__thread` variables and `errno` are one per guest, not per thread (wasm
without the atomics feature has one TLS block; errno is still right after any
failed call, since it is set after the call returns); stdio streams are not
locked (flockfile is a no-op), as in any single-threaded libc. Threads never
run in parallel on two cores.

Everything is deterministic: the order of threads is a function of the order
of host calls, so in virtual time the same seed gives the same interleaving.

Limits: at most `MAX_THREADS` threads alive per guest (the main thread
included); `pthread_create` past it returns EAGAIN, as Linux does past
RLIMIT_NPROC. Each thread's stack (256 KiB unless the attribute says
otherwise) and its 64 KiB unwind buffer are malloc'ed in the guest's linear
memory, so --max-memory bounds them too (malloc failing is EAGAIN).

This module touches the guest's instance (its asyncify exports and
`__stack_pointer`), its memory and the scheduler's block/yield; nothing else.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import wasmtime

from vnet.asyncify import ASYNCIFY_IMPORTS
from vnet.scheduler import TaskKilled

from . import wasix
from .abi import HOST_FUNCTIONS, GuestExit, HostFunction, HostFunctionTable, host_function
from .context import GuestContext
from .wasi_core import _clock_now, max_subscriptions
from .wasi_types import (
    RIFLAGS_RECV_WAITALL,
    SUBCLOCKFLAGS_ABSTIME,
    SUBSCRIPTION_CLOCK,
    SUBSCRIPTION_HEAD,
    SUBSCRIPTION_SIZE,
    Clockid,
    Errno,
    Eventtype,
    WasiError,
)

T = "vnet_threads"
P1 = "wasi_snapshot_preview1"
X = "wasix_32v1"

#: Threads alive at once in one guest, the main thread included.
MAX_THREADS = 128
#: Bytes of setjmp snapshots kept per guest (host memory); past it the oldest go,
#: and a longjmp to one of those aborts the guest.
MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024


#: What a module built with -pthread exports for this module.
REQUIRED_EXPORTS = ("asyncify_start_unwind", "asyncify_stop_unwind", "asyncify_start_rewind",
                    "asyncify_stop_rewind", "__stack_pointer")

RUNNABLE, RUNNING, BLOCKED, DONE = "runnable", "running", "blocked", "done"


class ThreadSwitch(BaseException):
    """Raised out of a host call to switch the calling thread out (caught by the wrapper)."""


@dataclass(eq=False)
class GreenThread:
    tid: int
    address: int  # the C runtime's struct vnet_thread
    unwind_buffer: int
    unwind_size: int
    stack_top: int = 0
    stack_pointer: int = 0
    started: bool = False
    state: str = RUNNABLE
    ready: Callable[[], bool] | None = None
    deadline: int | None = None
    #: rewound into the host call it was switched out of; its next block is the same one
    retrying: bool = False
    futex_woken: bool = False
    futex_address: int = -1
    #: setjmp asked for a snapshot of this thread's stack into this jmp_buf
    setjmp_env: int | None = None
    #: longjmp asked to rewind this snapshot; setjmp then returns setjmp_value
    longjmp_to: Snapshot | None = None
    setjmp_value: int = 0
    #: poll_oneoff's relative clocks made absolute while it may be retried: (address,
    #: timeout, flags) as the guest wrote them
    relative_clocks: list[tuple[int, int, int]] = field(default_factory=list)


@dataclass(eq=False)
class Snapshot:
    """A thread's unwound stack at a setjmp: the Asyncify data and the stack pointer."""

    serial: int
    tid: int
    data: bytes
    stack_pointer: int


@dataclass
class _Exports:
    start_unwind: wasmtime.Func
    stop_unwind: wasmtime.Func
    start_rewind: wasmtime.Func
    stop_rewind: wasmtime.Func
    stack_pointer: wasmtime.Global
    thread_start: wasmtime.Func | None


class GuestThreads:
    """The green threads of one guest and its thread scheduler."""

    def __init__(self, ctx: GuestContext, store: wasmtime.Store, exports: Any,
                 main_entry: wasmtime.Func) -> None:
        self.ctx = ctx
        self.store = store
        self.main_entry = main_entry
        start = exports.get("vnet_thread_start")
        self.exports = _Exports(
            exports["asyncify_start_unwind"], exports["asyncify_stop_unwind"],
            exports["asyncify_start_rewind"], exports["asyncify_stop_rewind"],
            exports["__stack_pointer"], start if isinstance(start, wasmtime.Func) else None)
        self.threads: list[GreenThread] = []  # alive ones, in tid order
        self.main: GreenThread | None = None
        self.current: GreenThread | None = None
        self.current_pointer = 0  # where the C runtime keeps the current thread
        self.runq: deque[GreenThread] = deque()
        self.futex_waiters: dict[int, deque[GreenThread]] = {}
        self.next_tid = 1
        #: setjmp snapshots by jmp_buf address (oldest first), at most MAX_SNAPSHOT_BYTES
        self.snapshots: dict[int, Snapshot] = {}
        self.snapshot_bytes = 0
        self.snapshot_serial = 0
        self.unwinding = False
        self.rewinding = False
        self.may_switch = False
        self.writing = False  # inside a write, after its wait for room (see _wait_for_room)
        self.switches = 0

    @staticmethod
    def wanted(module: wasmtime.Module) -> bool:
        """Whether `module` was built with -pthread (transformed by Asyncify)."""
        names = {e.name for e in module.exports}
        return all(name in names for name in REQUIRED_EXPORTS)

    # --- blocking ---------------------------------------------------------------

    def others_alive(self) -> bool:
        return len(self.threads) > 1

    def block(self, ready: Callable[[], bool], deadline_ns: int | None) -> bool:
        """`GuestContext.block_until` for a threaded guest: switch threads, or block."""
        thread = self.current
        ctx = self.ctx
        if thread is not None and thread.retrying:
            thread.retrying = False
            if deadline_ns is not None and thread.deadline is not None:
                deadline_ns = thread.deadline  # the call's first deadline, not a new one
        if self.writing and self.others_alive():
            return ready()  # a write that would wait after progress returns short
        if thread is None or not self.may_switch or not self.others_alive():
            assert ctx.task is not None
            return ctx.scheduler.block(ctx.task, ready, deadline_ns)
        if ready():
            return True
        if deadline_ns is not None and ctx.now_ns() >= deadline_ns:
            return False
        thread.state = BLOCKED
        thread.ready = ready
        thread.deadline = deadline_ns
        raise ThreadSwitch()

    def switch_out(self) -> None:
        """Inside a host call: unwind the wasm stack of the current thread."""
        thread = self.current
        assert thread is not None
        store = self.store
        exports = self.exports
        thread.stack_pointer = int(exports.stack_pointer.value(store))
        mem = self.ctx.mem
        mem.write_u32(thread.unwind_buffer, thread.unwind_buffer + 8)
        mem.write_u32(thread.unwind_buffer + 4, thread.unwind_buffer + thread.unwind_size)
        self.unwinding = True
        self.switches += 1
        exports.start_unwind(store, thread.unwind_buffer)

    def finish_rewind(self) -> None:
        """The first host call of a rewound thread: stop rewinding, mark it retrying."""
        self.rewinding = False
        self.exports.stop_rewind(self.store)
        assert self.current is not None
        self.current.retrying = True

    # --- the loop ---------------------------------------------------------------

    def run(self, start: wasmtime.Func) -> None:
        """Run `_start` and every thread it creates until main returns or all end."""
        store = self.store
        call: Callable[[], Any] = functools.partial(start, store)
        while True:
            call()
            current = self.current
            if self.unwinding:
                self.unwinding = False
                self.exports.stop_unwind(store)
                assert current is not None
                if current.setjmp_env is not None:
                    self._take_snapshot(current)
                    call = self._resume(current)  # setjmp returns 0 at once
                    continue
                if current.longjmp_to is not None:
                    self._restore_snapshot(current)
                    call = self._resume(current)  # setjmp returns again
                    continue
                if current.state == DONE:
                    self._forget(current)
            elif current is None or current is self.main:
                return  # main returned: the process ends with every thread
            else:
                current.state = DONE  # returned from its start routine
                self._forget(current)
            if not self.threads:
                return  # the last thread ended (main had called pthread_exit): exit 0
            try:
                thread = self._next()
            except TaskKilled:  # killed while every thread waited: as inside a host call
                self.ctx.exit_request = GuestExit(137, "killed")
                raise wasmtime.Trap("vnet: guest killed") from None
            call = self._resume(thread)

    def _take_snapshot(self, thread: GreenThread) -> None:
        env = thread.setjmp_env
        assert env is not None
        thread.setjmp_env = None
        mem = self.ctx.mem
        start = thread.unwind_buffer + 8
        data = mem.read(start, mem.read_u32(thread.unwind_buffer) - start)
        self.snapshot_serial = (self.snapshot_serial + 1) & 0xFFFFFFFF or 1
        old = self.snapshots.pop(env, None)
        if old is not None:
            self.snapshot_bytes -= len(old.data)
        self.snapshots[env] = Snapshot(self.snapshot_serial, thread.tid, data,
                                       thread.stack_pointer)
        self.snapshot_bytes += len(data)
        while self.snapshot_bytes > MAX_SNAPSHOT_BYTES and len(self.snapshots) > 1:
            oldest = next(iter(self.snapshots))
            self.snapshot_bytes -= len(self.snapshots.pop(oldest).data)
        mem.write_u32(env, self.snapshot_serial)
        mem.write_u32(env + 4, thread.tid)
        thread.setjmp_value = 0

    def _restore_snapshot(self, thread: GreenThread) -> None:
        snapshot = thread.longjmp_to
        assert snapshot is not None
        thread.longjmp_to = None
        mem = self.ctx.mem
        start = thread.unwind_buffer + 8
        mem.write(start, snapshot.data)
        mem.write_u32(thread.unwind_buffer, start + len(snapshot.data))
        thread.stack_pointer = snapshot.stack_pointer

    def _forget(self, thread: GreenThread) -> None:
        if thread in self.threads:
            self.threads.remove(thread)

    def _next(self) -> GreenThread:
        sched = self.ctx.scheduler
        lock = sched.host_call_lock  # the network lock in real time, none in virtual time
        while True:
            with lock:
                self._promote()
            if self.runq:
                return self.runq.popleft()
            blocked = [t for t in self.threads if t.state == BLOCKED]
            deadlines = [t.deadline for t in blocked if t.deadline is not None]
            earliest = min(deadlines) if deadlines else None
            task = self.ctx.task
            assert task is not None

            with lock, sched.atomic():
                sched.block(task, _any_ready(blocked), earliest)

    def _promote(self) -> None:
        now = self.ctx.now_ns()
        for thread in self.threads:
            if thread.state == BLOCKED and (
                    (thread.deadline is not None and now >= thread.deadline)
                    or (thread.ready is not None and thread.ready())):
                thread.state = RUNNABLE
                self.runq.append(thread)

    def _resume(self, thread: GreenThread) -> Callable[[], Any]:
        store = self.store
        exports = self.exports
        self.current = thread
        thread.state = RUNNING
        self.ctx.mem.write_u32(self.current_pointer, thread.address)
        if not thread.started:
            thread.started = True
            exports.stack_pointer.set_value(store, wasmtime.Val.i32(thread.stack_top))
            entry = exports.thread_start
            assert entry is not None
            return functools.partial(entry, store, thread.address)
        exports.stack_pointer.set_value(store, wasmtime.Val.i32(thread.stack_pointer))
        exports.start_rewind(store, thread.unwind_buffer)
        self.rewinding = True
        if thread is self.main:
            return functools.partial(self.main_entry, store)
        entry = exports.thread_start
        assert entry is not None
        return functools.partial(entry, store, thread.address)

    # --- what the host functions do -----------------------------------------------

    def register_main(self, address: int, unwind: int, size: int, current_ptr: int) -> int:
        if self.main is not None:
            return Errno.EINVAL
        self.ctx.mem.check(unwind, size)
        self.ctx.mem.check(current_ptr, 4)
        main = GreenThread(0, address, unwind, size, state=RUNNING, started=True)
        self.main = main
        self.current = main
        self.threads.append(main)
        self.current_pointer = current_ptr
        return Errno.SUCCESS

    def spawn(self, address: int, stack_top: int, unwind: int, size: int) -> GreenThread:
        if self.main is None or self.exports.thread_start is None:
            raise WasiError(Errno.EAGAIN)
        if len(self.threads) >= MAX_THREADS:
            raise WasiError(Errno.EAGAIN)
        if size < 64:
            raise WasiError(Errno.EINVAL)
        self.ctx.mem.check(unwind, size)
        thread = GreenThread(self.next_tid, address, unwind, size, stack_top=stack_top & ~15)
        self.next_tid += 1
        self.threads.append(thread)
        self.runq.append(thread)
        return thread


def _any_ready(blocked: list[GreenThread]) -> Callable[[], bool]:
    def any_ready() -> bool:
        return any(t.ready is not None and t.ready() for t in blocked)
    return any_ready


def threads_of(ctx: GuestContext) -> GuestThreads | None:
    threads = ctx.extensions.get("threads")
    return threads if isinstance(threads, GuestThreads) else None


def attach(ctx: GuestContext, store: wasmtime.Store, module: wasmtime.Module,
           exports: Any, start: wasmtime.Func) -> GuestThreads | None:
    """Set up the thread scheduler for a -pthread guest (None for any other guest)."""
    if not GuestThreads.wanted(module):
        return None
    threads = GuestThreads(ctx, store, exports, start)
    ctx.extensions["threads"] = threads
    ctx.thread_blocker = threads.block
    return threads


# --- the vnet_threads imports ------------------------------------------------------

@host_function(T, "register_main", "iiii")
def register_main(ctx: GuestContext, thread: int, unwind: int, size: int, current: int) -> int:
    threads = threads_of(ctx)
    if threads is None:
        return Errno.SUCCESS  # not transformed: stays single-threaded; spawn says EAGAIN
    return threads.register_main(thread, unwind, size, current)


@host_function(T, "spawn", "iiiii")
def spawn(ctx: GuestContext, thread: int, stack_top: int, unwind: int, size: int,
          tid_ptr: int) -> int:
    threads = threads_of(ctx)
    if threads is None:
        raise WasiError(Errno.EAGAIN)
    ctx.mem.check(tid_ptr, 4)
    ctx.mem.write_u32(tid_ptr, threads.spawn(thread, stack_top, unwind, size).tid)
    return Errno.SUCCESS


@host_function(T, "futex_wait", "iiS")
def futex_wait(ctx: GuestContext, address: int, expected: int, timeout_ns: int) -> int:
    threads = threads_of(ctx)
    thread = threads.current if threads is not None else None
    if thread is None:
        raise WasiError(Errno.EAGAIN)  # nobody else can change the word
    assert threads is not None
    if not thread.retrying:
        if ctx.mem.read_u32(address) != expected & 0xFFFFFFFF:
            raise WasiError(Errno.EAGAIN)
        thread.futex_woken = False
        thread.futex_address = address
        threads.futex_waiters.setdefault(address, deque()).append(thread)
    deadline = None if timeout_ns < 0 else ctx.now_ns() + timeout_ns
    if ctx.block_until(lambda: thread.futex_woken, deadline):
        return Errno.SUCCESS
    waiters = threads.futex_waiters.get(address)
    if waiters is not None and thread in waiters:
        waiters.remove(thread)
    raise WasiError(Errno.ETIMEDOUT)


@host_function(T, "futex_wake", "ii")
def futex_wake(ctx: GuestContext, address: int, count: int) -> int:
    threads = threads_of(ctx)
    if threads is None:
        return Errno.SUCCESS
    waiters = threads.futex_waiters.get(address)
    while waiters and count > 0:
        waiters.popleft().futex_woken = True
        count -= 1
    if waiters is not None and not waiters:
        del threads.futex_waiters[address]
    return Errno.SUCCESS


@host_function(T, "exit_thread", "")
def exit_thread(ctx: GuestContext) -> int:
    threads = threads_of(ctx)
    if threads is None or threads.current is None:
        raise WasiError(Errno.ENOSYS)
    threads.current.state = DONE
    raise ThreadSwitch()


def _yield(ctx: GuestContext) -> int:
    threads = threads_of(ctx)
    thread = threads.current if threads is not None else None
    if thread is not None and thread.retrying:
        thread.retrying = False  # rewound after its turn: the yield is over
        return Errno.SUCCESS
    if threads is None or thread is None or not threads.others_alive():
        assert ctx.task is not None
        ctx.scheduler.yield_task(ctx.task)
        return Errno.SUCCESS
    thread.state = BLOCKED
    thread.ready = _always
    thread.deadline = None
    raise ThreadSwitch()


@host_function(T, "setjmp", "i")
def setjmp(ctx: GuestContext, env: int) -> int:
    threads = threads_of(ctx)
    thread = threads.current if threads is not None else None
    if thread is None:
        raise WasiError(Errno.ENOSYS)
    if thread.retrying:  # rewound: after the snapshot (0) or after a longjmp (its value)
        thread.retrying = False
        value, thread.setjmp_value = thread.setjmp_value, 0
        return value
    ctx.mem.check(env, 16)
    thread.setjmp_env = env
    raise ThreadSwitch()


@host_function(T, "longjmp", "ii")
def longjmp(ctx: GuestContext, env: int, value: int) -> int:
    threads = threads_of(ctx)
    thread = threads.current if threads is not None else None
    if threads is None or thread is None:
        raise WasiError(Errno.ENOSYS)
    snapshot = threads.snapshots.get(env)
    if (snapshot is None or snapshot.tid != thread.tid
            or ctx.mem.read_u32(env) != snapshot.serial):
        raise WasiError(Errno.EINVAL)  # the SDK prints why and aborts
    thread.longjmp_to = snapshot
    thread.setjmp_value = value if value != 0 else 1  # longjmp(env, 0) returns 1
    raise ThreadSwitch()


def _always() -> bool:
    return True


host_function(T, "yield", "")(_yield)


# --- wrappers over the blocking host functions -------------------------------------

def _switchable(impl: Callable[..., int], policy: Callable[..., bool] | None = None
                ) -> Callable[..., int]:
    """`impl` for a threaded guest: rewinds end here, and its blocks may switch threads."""

    def wrapper(ctx: GuestContext, *args: int) -> int:
        threads = ctx.extensions.get("threads")
        if threads is None or threads.current is None:
            return impl(ctx, *args)
        if threads.rewinding:
            threads.finish_rewind()
        threads.may_switch = True if policy is None else policy(ctx, *args)
        try:
            return impl(ctx, *args)
        except ThreadSwitch:
            threads.may_switch = False
            threads.switch_out()
            return 0
        finally:
            threads.may_switch = False
            current = threads.current
            if current is not None:
                current.retrying = False  # a retry that did not block again is over

    wrapper.__name__ = getattr(impl, "__name__", "host_call")
    return wrapper


def _recv_policy(_ctx: GuestContext, _fd: int, _iovs: int, _n: int, riflags: int,
                 *_rest: int) -> bool:
    return not riflags & RIFLAGS_RECV_WAITALL  # after a partial read, block in place


def _wait_for_room(impl: Callable[..., int]) -> Callable[..., int]:
    """A write: wait (switchably) until the socket or pipe takes data, then write.

    Once part of the data went out, the write never waits again while the guest
    has other threads: it returns the short count (as a signal would interrupt
    it on Linux), since the thread could not be switched out without losing what
    it wrote, and the reader may be a sibling (a pipe within the guest). A lone
    thread's write blocks until everything is written, as on Linux.
    """

    def write(ctx: GuestContext, fd: int, *args: int) -> int:
        threads = ctx.extensions.get("threads")
        if threads is None or threads.current is None:
            return impl(ctx, fd, *args)
        try:
            desc = ctx.fds.get(fd)
        except WasiError:
            desc = None
        if desc is not None and not desc.nonblocking:
            def room() -> bool:
                state = desc.readiness_write()
                return bool(state.ready or state.hangup or state.error)
            threads.may_switch = True
            ctx.block_until(room, wasix._deadline(ctx, getattr(desc, "send_timeout_ns",
                                                               None)))
            threads.may_switch = False
        threads.writing = True
        try:
            return impl(ctx, fd, *args)
        finally:
            threads.writing = False

    return write


def _connect_resume(impl: Callable[..., int]) -> Callable[..., int]:
    """connect: a thread rewound into it waits for the handshake it started."""

    def connect(ctx: GuestContext, fd: int, addr_ptr: int) -> int:
        threads = ctx.extensions.get("threads")
        thread = threads.current if threads is not None else None
        if thread is None or not thread.retrying:
            return impl(ctx, fd, addr_ptr)
        desc = wasix._sock(ctx, fd)
        core = desc.core
        ctx.block_until(lambda: core.connect_result() is not None,
                        wasix._deadline(ctx, desc.send_timeout_ns))
        result = core.connect_result()
        if result is None:
            raise WasiError(Errno.ETIMEDOUT)
        if result:
            raise WasiError(wasix._LINUX_TO_WASI.get(result, Errno.EIO))
        return Errno.SUCCESS

    return connect


def _poll_absolute(impl: Callable[..., int]) -> Callable[..., int]:
    """poll_oneoff: relative clock subscriptions become absolute for the call's length.

    A thread switched out in poll_oneoff calls it again when rewound; with its
    clocks absolute, the retry waits for the same deadlines and reports the
    clock events of the first call (a relative timeout would start again). The
    guest's subscriptions are put back as they were when the call returns.
    """

    def poll_oneoff(ctx: GuestContext, in_ptr: int, out_ptr: int, count: int,
                    nevents_ptr: int) -> int:
        threads = ctx.extensions.get("threads")
        thread = threads.current if threads is not None else None
        if thread is None or count <= 0 or count > max_subscriptions(ctx):
            return impl(ctx, in_ptr, out_ptr, count, nevents_ptr)
        mem = ctx.mem
        if not thread.retrying:
            mem.check(in_ptr, count * SUBSCRIPTION_SIZE)
            made_absolute = []
            for index in range(count):
                base = in_ptr + index * SUBSCRIPTION_SIZE
                if mem.unpack(SUBSCRIPTION_HEAD, base)[1] != Eventtype.CLOCK:
                    continue
                clock_id, timeout, precision, flags = mem.unpack(SUBSCRIPTION_CLOCK, base + 16)
                if flags & SUBCLOCKFLAGS_ABSTIME or clock_id not in _CLOCKS:
                    continue
                now = _clock_now(ctx, clock_id)
                mem.pack(SUBSCRIPTION_CLOCK, base + 16, clock_id,
                         min(now + timeout, 0xFFFFFFFFFFFFFFFF), precision,
                         flags | SUBCLOCKFLAGS_ABSTIME)
                made_absolute.append((base, timeout, flags))
            thread.relative_clocks = made_absolute
        switched = True
        try:
            result = impl(ctx, in_ptr, out_ptr, count, nevents_ptr)
            switched = False
            return result
        except ThreadSwitch:
            raise
        except BaseException:
            switched = False
            raise
        finally:
            if not switched:
                for base, timeout, flags in thread.relative_clocks:
                    clock_id, _, precision, _ = mem.unpack(SUBSCRIPTION_CLOCK, base + 16)
                    mem.pack(SUBSCRIPTION_CLOCK, base + 16, clock_id, timeout, precision, flags)
                thread.relative_clocks = []

    return poll_oneoff


_CLOCKS = (int(Clockid.REALTIME), int(Clockid.MONOTONIC))


def _sched_yield(impl: Callable[..., int]) -> Callable[..., int]:
    def sched_yield(ctx: GuestContext) -> int:
        if threads_of(ctx) is None:
            return impl(ctx)
        return _yield(ctx)

    return sched_yield


_ADAPT: dict[str, Callable[[Callable[..., int]], Callable[..., int]]] = {
    f"{P1}.poll_oneoff": _poll_absolute,
    f"{P1}.fd_write": _wait_for_room,
    f"{P1}.sock_send": _wait_for_room,
    f"{X}.sock_send_to": _wait_for_room,
    f"{X}.sock_connect": _connect_resume,
    f"{P1}.sched_yield": _sched_yield,
}
_POLICY: dict[str, Callable[..., bool]] = {
    f"{P1}.sock_recv": _recv_policy,
    f"{X}.sock_recv_from": _recv_policy,
    "vnet_v1.sock_recvmsg": _recv_policy,
}
# writes switch only in their own wait for room (above), never inside the write
_IN_PLACE = {f"{P1}.fd_write", f"{P1}.sock_send", f"{X}.sock_send_to"}


def threaded_functions() -> HostFunctionTable:
    """Every host function, with those in ASYNCIFY_IMPORTS wrapped for threaded guests.

    The runtime links -pthread modules against these (a linker of their own), so
    guests without threads never pay for the wrappers."""
    global _threaded
    if _threaded is None:
        table = HostFunctionTable()
        table.functions = dict(HOST_FUNCTIONS.functions)
        for qualified in ASYNCIFY_IMPORTS:
            module, name = qualified.split(".", 1)
            fn: HostFunction = table.functions[(module, name)]
            impl = fn.impl
            adapt = _ADAPT.get(qualified)
            if adapt is not None:
                impl = adapt(impl)
            if qualified in _IN_PLACE:
                policy: Callable[..., bool] | None = _never
            else:
                policy = _POLICY.get(qualified)
            table.functions[(module, name)] = dataclasses.replace(
                fn, impl=_switchable(impl, policy))
        _threaded = table
    return _threaded


_threaded: HostFunctionTable | None = None


def _never(*_args: Any) -> bool:
    return False


__all__ = ["ASYNCIFY_IMPORTS", "MAX_THREADS", "GuestThreads", "ThreadSwitch", "attach",
           "threaded_functions"]
