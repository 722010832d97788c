"""The bridge between wasm imports and Python host-call implementations.

Host functions are declared once, at import time, with `host_function(module,
name, params, results)`. `HostFunctionTable.define_all` links every declared
function into a wasmtime `Linker` through wasmtime's *unchecked* C API
(`wasmtime_linker_define_func_unchecked`): arguments arrive as a raw
`wasmtime_val_raw_t` array and are decoded with one precompiled `struct`, which
costs about a tenth of wasmtime-py's `Val` path. That API is why wasmtime is
pinned to one major version.

One callback per host function serves every guest in the process (the runtime
links them into one shared `Linker`): a guest's wasm runs on its own thread,
and `bind_thread(ctx)` — called by the runtime on that thread before the
instance exists — tells the callbacks which guest is calling. Nothing of the
bridge is built per guest but that binding, so an idle guest costs no
callbacks, closures or linker of its own.

Calling convention for implementations: `impl(ctx, *args) -> int` where `ctx`
is the guest's `GuestContext` and the return value is the errno (or the
function's single i32/i64 result). Implementations may raise:

- `WasiError(errno)`   → that errno is returned;
- `GuestFault`         → EFAULT;
- `UnicodeDecodeError` → EILSEQ (a path that is not UTF-8);
- `GuestExit(code)`    → the guest stops (proc_exit) via a trap we recognise;
- anything else        → counted as an internal error, reported on the guest's
  diagnostics, and EIO is returned. A Python exception never becomes a trap.

Two kinds of call:

- **Network calls** (the default) run under the network lock
  (`Scheduler.host_call_lock`) as one network turn: work they defer (a frame
  to deliver) runs when the call's own work is done.
- **Read-only calls** (`READ_ONLY_CALLS`: getsockname, getpeername,
  clock_gettime, fcntl(F_GETFL), args and environment, preopen names, and
  proc_raise, which is ENOSYS) read only
  what the calling guest's own thread changes — its fd table, its sockets'
  names (bound and connected by its own calls), its clocks — or a single
  attribute another thread may set (a TCP connection's state). They take
  neither the lock nor a turn: nothing they do can be seen half-done.

A network call may have an **unlocked first try** (`UNLOCKED_FIRST`):
poll_oneoff first looks, without the lock, whether a UDP socket it watches
is ready already (`vnet.guest.wasi_core.poll_ready_unlocked`); if so it
answers as a read-only call would, with the very events the locked call
would write; anything else (a wait, an error, another kind of descriptor, a
guest with threads) runs as the network call.

Every call first compares the guest's memory against its --max-memory:
linear memory as last seen (`GuestMemory.known_size`) plus its socket
memory — one attribute sum and compare; only past the limit does it take the
lock and call `ctx.enforce_memory_limit`, which reclaims or returns the OOM
kill (see vnet.guest.wasix.memory_limit_enforcer).

Every call is charged to the guest when it returns
(`Scheduler.charge_host_call`): in virtual time its fixed cost from
`host_call_charge_ns` plus the frames it put on links; in real time a network
call's wall time and frames against the guest's turn. That is where a
busy-waiting guest is preempted and where a guest that used up its turn
yields; see vnet/scheduler.py. A read-only call in real time holds no network
and is not charged to the turn; a guest killed meanwhile stops at its next
call all the same.

This module touches wasmtime's C API and the scheduler, nothing else.
"""

from __future__ import annotations

import ctypes
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wasmtime import FuncType, Linker, ValType, WasmtimeError
from wasmtime import _ffi as ffi

from vnet.scheduler import DATA_CALL_CHARGE_NS, HOST_CALL_CHARGE_NS, TaskKilled

from .memory import GuestFault
from .wasi_types import Errno, WasiError

if TYPE_CHECKING:
    from stack.socket_memory import SocketMemory
    from vnet.scheduler import Scheduler

    from .context import GuestContext

_VAL_RAW_SIZE = ctypes.sizeof(ffi.wasmtime_val_raw_t)  # 16 on every host we support

_CODE = {"i": ("I", 4), "I": ("Q", 8), "s": ("i", 4), "S": ("q", 8)}
_VALTYPE = {"i": ValType.i32, "s": ValType.i32, "I": ValType.i64, "S": ValType.i64}

#: Calls that read only what the calling guest's own thread changes: they run
#: without the network lock and outside any network turn (see the module docstring).
READ_ONLY_CALLS = frozenset({
    "sock_addr_local", "sock_addr_peer", "clock_time_get", "clock_res_get", "fd_fdstat_get",
    "args_get", "args_sizes_get", "environ_get", "environ_sizes_get", "fd_prestat_get",
    "fd_prestat_dir_name", "proc_raise",
})


class GuestExit(Exception):
    """Raised by proc_exit (and by the runtime to stop a guest): unwinds the guest."""

    def __init__(self, code: int, reason: str = "exit") -> None:
        super().__init__(f"{reason} {code}")
        self.code = code
        self.reason = reason


def _raw_layout(kinds: str) -> struct.Struct:
    """A struct that decodes values laid out one per wasmtime_val_raw_t slot.

    kinds: 'i' u32, 's' s32, 'I' u64, 'S' s64.
    """
    fmt = "<"
    for kind in kinds:
        code, width = _CODE[kind]
        fmt += code + f"{_VAL_RAW_SIZE - width}x"
    return struct.Struct(fmt)


@dataclass(frozen=True)
class HostFunction:
    module: str
    name: str
    params: str
    results: str
    impl: Callable[..., int]

    def functype(self) -> FuncType:
        return FuncType([_VALTYPE[k]() for k in self.params], [_VALTYPE[k]() for k in self.results])


class HostFunctionTable:
    """Every host function vnet provides, by (module, name)."""

    def __init__(self) -> None:
        self.functions: dict[tuple[str, str], HostFunction] = {}

    def declare(self, module: str, name: str, params: str, results: str = "i") -> Callable[
        [Callable[..., int]], Callable[..., int]
    ]:
        def register(impl: Callable[..., int]) -> Callable[..., int]:
            key = (module, name)
            if key in self.functions:
                raise ValueError(f"host function {module}.{name} declared twice")
            self.functions[key] = HostFunction(module, name, params, results, impl)
            return impl

        return register

    def define_all(self, linker: Linker, keep_alive: list[Any],
                   ctx: GuestContext | None = None) -> None:
        """Link every function into `linker`.

        Without `ctx`, each callback serves whichever guest calls it (the one
        `bind_thread` bound to the calling thread), so one linker serves every
        guest of an engine; with `ctx`, the callbacks serve that guest only.
        The ctypes callback objects are appended to `keep_alive`, which must
        live as long as the linker and every instance made from it.
        """
        for fn in self.functions.values():
            callback = _make_callback(fn, ctx)
            keep_alive.append(callback)
            functype = fn.functype()
            keep_alive.append(functype)
            module_bytes = fn.module.encode()
            name_bytes = fn.name.encode()
            error = _define_func_unchecked(
                ctypes.cast(linker.ptr(), ctypes.c_void_p),
                module_bytes, len(module_bytes),
                name_bytes, len(name_bytes),
                ctypes.cast(functype.ptr(), ctypes.c_void_p), callback, None, None,
            )
            if error:
                raise WasmtimeError._from_ptr(
                    ctypes.cast(error, ctypes.POINTER(ffi.wasmtime_error_t))
                )


_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
# Our own prototype for the unchecked callback: the raw argument array comes in
# as a plain address (an int), which is cheaper than a ctypes POINTER object.
_UNCHECKED_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t
)
# A private function object (dll[...] is not cached) so our argtypes apply.
_define_func_unchecked = ffi.dll["wasmtime_linker_define_func_unchecked"]
_define_func_unchecked.restype = ctypes.c_void_p
_define_func_unchecked.argtypes = [
    ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t,
    ctypes.c_void_p, _UNCHECKED_CALLBACK, ctypes.c_void_p, ctypes.c_void_p,
]

#: The registry the runtime links; WASI, WASIX and vnet_v1 modules add to it.
HOST_FUNCTIONS = HostFunctionTable()
host_function = HOST_FUNCTIONS.declare


def make_trap(message: str) -> int:
    data = message.encode()
    trap = ffi.wasmtime_trap_new(ctypes.create_string_buffer(data), len(data))
    return ctypes.cast(trap, ctypes.c_void_p).value or 0


# --- which guest is calling ------------------------------------------------------


class Binding:
    """What a host call needs of the guest that makes it, looked up once per guest.

    Built by `bind_thread` (or by `_make_callback` for callbacks of one guest):
    the scheduler's lock, turn and charge functions, and the --max-memory
    check's operands, so that a call reads one object instead of walking
    `ctx.scheduler` and `ctx.extensions`.
    """

    __slots__ = ("acquire", "begin_turn", "charge_host_call", "charge_real_call", "ctx",
                 "end_turn", "enforce_memory_limit", "lock", "memory_limit", "release",
                 "scheduler", "sockets", "stats", "virtual")

    def __init__(self, ctx: GuestContext) -> None:
        sched = ctx.scheduler
        self.ctx = ctx
        self.scheduler = sched
        self.stats = ctx.stats
        self.lock = ctx.host_call_lock
        # the lock's methods, bound once: the lock is of no type the compiler knows
        # (FairLock in real time, a no-op in virtual time), so a call by name looks it up
        self.acquire: Callable[[], object] = self.lock.acquire
        self.release: Callable[[], object] = self.lock.release
        self.virtual = sched.virtual
        self.charge_host_call = sched.charge_host_call
        self.charge_real_call = sched.charge_real_call
        self.begin_turn, self.end_turn = _turn_functions(sched)
        # --max-memory over linear memory and sockets: linear memory as last seen
        # (the epoch callback refreshes it every tick) plus what the sockets hold
        self.sockets: SocketMemory | None = ctx.extensions.get("socket_memory")
        self.memory_limit = ctx.limits.memory_bytes
        self.enforce_memory_limit = ctx.enforce_memory_limit


def _turn_functions(sched: Scheduler) -> tuple[Callable[[], bool], Callable[[], None]]:
    """`begin()` → True if it began the outermost network turn; `end()` ends that turn."""
    return sched.begin_turn, sched.end_turn


#: The calling thread's `Binding` as attribute ``binding`` (absent: none yet). A plain
#: threading.local, not a subclass with a class-level default: compiled
#: (vnet/compile_stack.py), a subclass would be a native class with one slot for all threads.
_thread = threading.local()


def bind_thread(ctx: GuestContext | None) -> None:
    """Make the calling thread's host calls those of `ctx`'s guest (None: of no guest).

    The runtime calls it on the guest's own thread before instantiating it,
    and with None when the guest has ended. Call again after the guest's
    socket memory or memory enforcer changed.
    """
    _thread.binding = None if ctx is None else Binding(ctx)


# --- the callback -----------------------------------------------------------------


def _native_memory() -> memoryview:
    """A byte view of the process's whole user address space, for the raw argument arrays.

    wasmtime hands each callback the address of its `wasmtime_val_raw_t`
    array; decoding straight from this view at that address saves creating a
    ctypes array object per call. Only ever indexed at those addresses.
    """
    return memoryview((ctypes.c_ubyte * _ADDRESS_SPACE).from_address(0)).cast("B")


_ADDRESS_SPACE = 1 << 47  # x86-64 and aarch64 Linux user space: 128 TiB
_NATIVE = _native_memory()


def _failed_call(ctx: GuestContext, qualified: str, error: BaseException) -> int:
    """What a host call that raised returns: an errno, or (negative) a trap's address.

    Returns the errno for WasiError, GuestFault (EFAULT), UnicodeDecodeError
    (EILSEQ), RecursionError (ENOMEM) and our own bugs (EIO, counted); for
    GuestExit or TaskKilled, records the exit request and returns the negated
    trap pointer that stops the guest.
    """
    if isinstance(error, WasiError):
        return int(error.errno)
    if isinstance(error, GuestFault):
        ctx.count_fault(qualified)
        return int(Errno.EFAULT)
    if isinstance(error, UnicodeDecodeError):
        return int(Errno.EILSEQ)
    if isinstance(error, GuestExit):
        ctx.exit_request = error
        return -make_trap(f"vnet: guest {error.reason} {error.code}")
    if isinstance(error, TaskKilled):
        return _killed(ctx)
    if isinstance(error, RecursionError):
        return int(Errno.ENOMEM)
    ctx.count_internal_error(qualified, error)  # a bug of ours must never trap the guest
    if ctx.debug:
        traceback.print_exception(error, file=sys.stderr)
    return int(Errno.EIO)


def _killed(ctx: GuestContext) -> int:
    ctx.exit_request = GuestExit(137, "killed")
    return -make_trap("vnet: guest killed")


def _over_memory_limit(b: Binding) -> None:
    """Past --max-memory as last seen: reclaim as one network turn, or raise the OOM kill."""
    enforce = b.enforce_memory_limit
    assert enforce is not None
    with b.lock:
        outer = b.begin_turn()
        try:
            oom = enforce()
        finally:
            if outer:
                b.end_turn()
    if oom is not None:
        raise oom


#: Network calls that may first try to answer without the network lock:
#: "module.name" -> a function of the call's (ctx, *args) that returns the
#: result when it could answer from what it read (a poll whose fd is ready
#: already), or None, and then the call runs as a network call. It must only
#: read state that other threads change one whole Python operation at a time
#: (a datagram socket's queue), write nothing but the guest's memory, and
#: never raise; it is charged as a read-only call.
UNLOCKED_FIRST: dict[str, Callable[..., int | None]] = {}


def _try_unlocked(b: Binding, first: Callable[..., int | None],
                  args: tuple[int, ...]) -> int | None:
    """Run a call's unlocked first try (see UNLOCKED_FIRST); None: take the locked path."""
    ctx = b.ctx
    memory = ctx.memory
    sockets = b.sockets
    if sockets is not None and memory is not None and (
            sockets.used + memory.known_size > b.memory_limit):
        return None  # the locked path enforces --max-memory first
    try:
        answer = first(ctx, *args)
    except Exception:  # never meant to raise: the locked path answers
        return None
    if answer is not None:
        b.stats.host_calls += 1
    return answer


def _finish_read_only_call(b: Binding, ctx: GuestContext, charge_ns: int,
                           pack_result: Callable[..., None] | None, native: Any,
                           args_and_results: int, value: int) -> int:
    """The end of a call answered without the network lock: in virtual time charge it,
    in real time only notice a kill; then store its result. What the callback returns."""
    task = ctx.task
    if task is not None:
        if b.virtual:
            try:
                b.charge_host_call(task, charge_ns, 0)
            except TaskKilled:
                return -_killed(ctx)
        elif task.killed:  # real time: nothing to charge
            return -_killed(ctx)
    if pack_result is not None:
        pack_result(native, args_and_results, value)
    return 0


def _invoke(impl: Callable[..., int], ctx: GuestContext, args: tuple[Any, ...],
            nparams: int) -> int:
    """impl(ctx, *args), with the arguments passed one by one for the common counts:
    compiled, a call with ``*args`` builds a list and a tuple first."""
    if nparams == 4:
        return impl(ctx, args[0], args[1], args[2], args[3])
    if nparams == 2:
        return impl(ctx, args[0], args[1])
    if nparams == 1:
        return impl(ctx, args[0])
    if nparams == 3:
        return impl(ctx, args[0], args[1], args[2])
    return impl(ctx, *args)


def _make_callback(fn: HostFunction, ctx: GuestContext | None = None) -> Any:
    """The ctypes callback for `fn`: for `ctx`'s guest, or for whichever guest calls."""
    nparams = len(fn.params)
    unpack_args = _raw_layout(fn.params).unpack_from
    pack_result = _raw_layout(fn.results[:1]).pack_into if fn.results else None
    result_mask = 0xFFFFFFFFFFFFFFFF if fn.results[:1] in ("I", "S") else 0xFFFFFFFF
    impl = fn.impl
    native = _NATIVE
    wall_clock = time.monotonic_ns
    charge_ns = host_call_charge_ns(fn.module, fn.name)
    qualified = f"{fn.module}.{fn.name}"
    fixed = Binding(ctx) if ctx is not None else None
    thread = _thread

    def unbound() -> int:
        return make_trap(f"vnet: {qualified} called from a thread that runs no guest")

    # Both kinds are named `callback`: profiles (vnet/bench/profile.py) find host calls by it.
    if fn.name in READ_ONLY_CALLS:
        def callback(_env: Any, _caller: Any, args_and_results: int, _count: int) -> int:
            b: Binding | None = fixed or getattr(thread, "binding", None)
            if b is None:
                return unbound()
            ctx = b.ctx
            try:
                b.stats.host_calls += 1
                memory = ctx.memory
                sockets = b.sockets
                if sockets is not None and memory is not None and (
                        sockets.used + memory.known_size > b.memory_limit):
                    _over_memory_limit(b)
                result = impl(ctx, *unpack_args(native, args_and_results)) if nparams else impl(ctx)
            except BaseException as e:
                result = _failed_call(ctx, qualified, e)
                if result < 0:
                    return -result
            # _finish_read_only_call, inlined
            task = ctx.task
            if task is not None:
                if b.virtual:
                    try:
                        b.charge_host_call(task, charge_ns, 0)
                    except TaskKilled:
                        return -_killed(ctx)
                elif task.killed:  # real time: nothing to charge
                    return -_killed(ctx)
            if pack_result is not None:
                pack_result(native, args_and_results, result & result_mask)
            return 0

    else:
        unlocked_first = UNLOCKED_FIRST.get(qualified)

        def callback(_env: Any, _caller: Any, args_and_results: int, _count: int) -> int:
            b: Binding | None = fixed or getattr(thread, "binding", None)
            if b is None:
                return unbound()
            ctx = b.ctx
            if unlocked_first is not None:
                answer = _try_unlocked(b, unlocked_first, unpack_args(native, args_and_results))
                if answer is not None:
                    return _finish_read_only_call(b, ctx, charge_ns, pack_result, native,
                                                  args_and_results, answer & result_mask)
            sched = b.scheduler
            virtual = b.virtual
            task = ctx.task
            elsewhere_before = task.frames_elsewhere if task is not None else 0
            frames = call_started_ns = call_end_ns = 0
            try:
                args: tuple[Any, ...] = unpack_args(native, args_and_results) if nparams else ()
                b.acquire()
                try:
                    frames_before = sched.frames_transmitted
                    if not virtual:
                        call_started_ns = wall_clock()
                    # b.begin_turn(), inlined: the outermost turn unless one is under way
                    outer = not sched._draining
                    if outer:
                        sched._draining = True
                    try:
                        b.stats.host_calls += 1
                        memory = ctx.memory
                        sockets = b.sockets
                        if sockets is not None and memory is not None and (
                                sockets.used + memory.known_size > b.memory_limit):
                            enforce = b.enforce_memory_limit
                            assert enforce is not None
                            oom = enforce()
                            if oom is not None:
                                raise oom
                        result = _invoke(impl, ctx, args, nparams)
                    finally:
                        if outer:
                            sched.end_turn()
                        frames = sched.frames_transmitted - frames_before
                        if not virtual:
                            call_end_ns = wall_clock()
                finally:
                    b.release()
            except BaseException as e:
                result = _failed_call(ctx, qualified, e)
                if result < 0:
                    return -result
            if task is not None:
                frames -= task.frames_elsewhere - elsewhere_before
                try:
                    if virtual:
                        sched.charge_host_call(task, charge_ns, frames)
                    else:
                        sched.charge_real_call(task, frames, call_end_ns - call_started_ns,
                                               call_end_ns)
                except TaskKilled:
                    return -_killed(ctx)
            if pack_result is not None:
                pack_result(native, args_and_results, result & result_mask)
            return 0

    return _UNCHECKED_CALLBACK(callback)


#: Host calls that move data between the guest and a file, stream or socket.
DATA_CALLS = frozenset({
    "fd_read", "fd_write", "fd_pread", "fd_pwrite", "sock_recv", "sock_send",
    "sock_recv_from", "sock_send_to", "sock_send_file", "random_get",
})


def host_call_charge_ns(module: str, name: str) -> int:
    """The virtual time one call of `module.name` is charged, frames not counted.

    `HOST_CALL_CHARGE_NS` for every call, plus `DATA_CALL_CHARGE_NS` for the
    calls in DATA_CALLS (see vnet.scheduler, "Host calls cost virtual time").
    """
    del module  # the charge depends on what a call does, whichever module names it
    return HOST_CALL_CHARGE_NS + (DATA_CALL_CHARGE_NS if name in DATA_CALLS else 0)
