"""The bridge between wasm imports and Python host-call implementations.

Host functions are declared once, at import time, with `host_function(module,
name, params, results)`; `HostFunctionTable.define_all` links every declared
function into a wasmtime `Linker` for one guest through wasmtime's *unchecked*
C API (`wasmtime_linker_define_func_unchecked`): arguments arrive as a raw
`wasmtime_val_raw_t` array and are decoded with one precompiled `struct`, which
costs about a tenth of wasmtime-py's `Val` path. That API is why wasmtime is
pinned to one major version.

Calling convention for implementations: `impl(ctx, *args) -> int` where `ctx`
is the guest's `GuestContext` and the return value is the errno (or the
function's single i32/i64 result). Implementations may raise:

- `WasiError(errno)`   → that errno is returned;
- `GuestFault`         → EFAULT;
- `UnicodeDecodeError` → EILSEQ (a path that is not UTF-8);
- `GuestExit(code)`    → the guest stops (proc_exit) via a trap we recognise;
- anything else        → counted as an internal error, reported on the guest's
  diagnostics, and EIO is returned. A Python exception never becomes a trap.

Every call first compares the guest's memory against its --max-memory:
linear memory as last seen (`GuestMemory.known_size`) plus its socket
memory — one attribute sum and compare; only past the limit does it call
`ctx.enforce_memory_limit`, which reclaims or returns the OOM kill (see
vnet.guest.wasix.memory_limit_enforcer).

Every call is charged to the guest when it returns
(`Scheduler.charge_host_call`): its fixed virtual cost from
`host_call_charge_ns` plus the frames it put on links (virtual time), or its
wall time and frames against the guest's turn (real time). That is where a
busy-waiting guest is preempted and where a guest that used up its turn
yields; see vnet/scheduler.py.

This module touches wasmtime's C API and the scheduler, nothing else.
"""

from __future__ import annotations

import ctypes
import struct
import sys
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

    from .context import GuestContext

_VAL_RAW_SIZE = ctypes.sizeof(ffi.wasmtime_val_raw_t)  # 16 on every host we support

_CODE = {"i": ("I", 4), "I": ("Q", 8), "s": ("i", 4), "S": ("q", 8)}
_VALTYPE = {"i": ValType.i32, "s": ValType.i32, "I": ValType.i64, "S": ValType.i64}


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

    def define_all(self, linker: Linker, ctx: GuestContext, keep_alive: list[Any]) -> None:
        """Link every function into `linker`, bound to one guest's context.

        The ctypes callback objects are appended to `keep_alive`, which the
        guest holds for as long as its store lives.
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


def _make_callback(fn: HostFunction, ctx: GuestContext) -> Any:
    params = _raw_layout(fn.params)
    nparams = len(fn.params)
    result_layout = _raw_layout(fn.results[:1]) if fn.results else None
    result_mask = 0xFFFFFFFFFFFFFFFF if fn.results[:1] in ("I", "S") else 0xFFFFFFFF
    raw_bytes = _VAL_RAW_SIZE * max(nparams, len(fn.results), 1)
    impl = fn.impl
    array_type = ctypes.c_ubyte * raw_bytes
    lock = ctx.host_call_lock
    sched = ctx.scheduler
    atomic = sched.atomic
    charge_host_call = sched.charge_host_call
    virtual = sched.virtual
    wall_clock = time.monotonic_ns
    charge_ns = host_call_charge_ns(fn.module, fn.name)
    qualified = f"{fn.module}.{fn.name}"
    stats = ctx.stats
    # --max-memory over linear memory and sockets: linear memory as last seen
    # (the epoch callback refreshes it every tick) plus what the sockets hold
    sockets: SocketMemory | None = ctx.extensions.get("socket_memory")
    memory_limit = ctx.limits.memory_bytes
    enforce_memory_limit = ctx.enforce_memory_limit

    def callback(_env: int, _caller: Any, args_and_results: int, _count: int) -> int:
        raw = array_type.from_address(args_and_results)
        frames = 0
        call_started_ns = call_end_ns = 0
        task = ctx.task
        elsewhere_before = task.frames_elsewhere if task is not None else 0
        try:
            args = params.unpack_from(raw) if nparams else ()
            with lock:
                frames_before = sched.frames_transmitted
                if not virtual:
                    call_started_ns = wall_clock()
                try:
                    with atomic():
                        stats.host_calls += 1
                        memory = ctx.memory
                        if sockets is not None and memory is not None and (
                                sockets.used + memory.known_size > memory_limit):
                            assert enforce_memory_limit is not None
                            oom = enforce_memory_limit()
                            if oom is not None:
                                raise oom
                        result = impl(ctx, *args)
                finally:
                    frames = sched.frames_transmitted - frames_before
                    if not virtual:
                        call_end_ns = wall_clock()
        except WasiError as e:
            result = int(e.errno)
        except GuestFault:
            ctx.count_fault(qualified)
            result = int(Errno.EFAULT)
        except UnicodeDecodeError:
            result = int(Errno.EILSEQ)
        except GuestExit as e:
            ctx.exit_request = e
            return make_trap(f"vnet: guest {e.reason} {e.code}")
        except TaskKilled:
            ctx.exit_request = GuestExit(137, "killed")
            return make_trap("vnet: guest killed")
        except RecursionError:
            result = int(Errno.ENOMEM)
        except BaseException as e:  # a bug of ours must never trap the guest
            ctx.count_internal_error(qualified, e)
            if ctx.debug:
                traceback.print_exc(file=sys.stderr)
            result = int(Errno.EIO)
        if task is not None:
            frames -= task.frames_elsewhere - elsewhere_before
            try:
                charge_host_call(task, charge_ns, frames, call_end_ns - call_started_ns,
                                 call_end_ns)
            except TaskKilled:
                ctx.exit_request = GuestExit(137, "killed")
                return make_trap("vnet: guest killed")
        if result_layout is not None:
            result_layout.pack_into(raw, 0, result & result_mask)
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
