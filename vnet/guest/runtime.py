"""Loading and running wasm32-wasip1 guests under vnet's own WASI.

`load_module` compiles and validates a module (a core module, not a
component; every import one vnet provides; a `_start` export and an exported
memory). `Guest` instantiates it in its own wasmtime store with per-guest
limits and runs `_start` on a scheduler task. Every host function is linked
once per process (`shared_linker`, through the unchecked ABI bridge) and
each module's imports are resolved once (`instance_pre`); a guest's thread
is bound to its context (`abi.bind_thread`) so the shared callbacks know who
calls. A guest therefore owns only its store, instance, context and thread:
an idle one costs about 0.1 MiB. `run_module` is the one-call form used by
the CLI and tests.

Limits: linear memory is capped with store limits (`memory.grow` returns -1
past the cap); --max-memory also covers what vnet holds for the guest's
sockets, and since the store's cap is fixed at instantiation, a guest that
fills its sockets first and then grows its linear memory gets over it: the
epoch callback reads the linear memory's size every tick (and the ABI bridge
compares the last size seen at every host call), and past the limit
`wasix.memory_limit_enforcer` reclaims queued datagrams and TCP out-of-order
data, then kills the guest as Linux's OOM killer would — exit status 137,
one line `vnet: guest killed: out of memory (linear N MiB + sockets M MiB >
--max-memory L MiB)` on its stderr, its sockets closed as at any exit,
`stats.oom_kills`. The fd table has a cap; and epoch interruption gives each guest
a CPU slice — when it expires the epoch callback hands control to the
scheduler (virtual time) or just lets the OS switch threads (real time), and
charges the slice against an optional CPU budget. A killed guest is stopped
at its next slice boundary or host call. Host calls themselves are charged
(virtual time, and the real-time fair share) by the ABI bridge, vnet.guest.abi.

This module touches wasmtime and the scheduler; it builds no packets.
"""

from __future__ import annotations

import ctypes
import gc
import os
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import Config, Engine, InstancePre, Linker, Module, Store, WasmtimeError
from wasmtime import _ffi as ffi

from vnet.link.guest_tun import GuestDeviceGrant
from vnet.scheduler import SPIN_THRESHOLD_NS, GuestTask, Scheduler, kick_overdue_loops

# Importing these modules registers their host functions.
from . import ifconfig, ioctl, rtnetlink, tundev, vnet_v1, wasi_core, wasi_fs, wasix  # noqa: F401
from . import threads as guest_threads
from .abi import HOST_FUNCTIONS, GuestExit, bind_thread
from .context import GuestContext, GuestLimits
from .devfs import install_dev
from .fdtable import FileDescription, InputStream, OutputStream
from .fs import open_preopen
from .memory import GuestMemory

TRAP_EXIT_CODE = 134  # what `wasmtime run` exits with when a guest traps (128 + SIGABRT)
KILLED_EXIT_CODE = 137
OUT_OF_MEMORY = "out of memory"  # how the reason of a guest killed over --max-memory starts


class GuestLoadError(Exception):
    """The module cannot run as a vnet guest; the message is one line for the user."""


# --- the engine ----------------------------------------------------------------

_engine_lock = threading.Lock()
_engine: Engine | None = None
_EPOCH_TICK_S = 0.005
#: Real time: ticks without a host call after which a guest may compute on any CPU.
_ROAM_AFTER_SLICES = 2


def engine() -> Engine:
    """The process-wide engine (epoch interruption on, memories never move)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            config = Config()
            config.epoch_interruption = True
            config.memory_may_move = False
            if os.environ.get("VNET_WASMTIME_CACHE", "1") != "0":
                try:
                    config.cache = True
                except WasmtimeError:
                    pass
            _engine = Engine(config)
            ticker = threading.Thread(target=_tick_epochs, args=(_engine,), daemon=True,
                                      name="vnet-epoch")
            ticker.start()
        return _engine


def settle_heap() -> None:
    """Take what the process allocated to start its run — imported modules, the wasm
    engine and compiled modules, the network — out of the cyclic garbage collector's
    sight for the rest of the process (`gc.freeze`).

    For a process that runs one network and then exits (`vnet run`, `vnet sim`, the
    benchmark between its runs): else each full collection walks that whole heap
    again — tens of milliseconds, every few thousand TCP connections, a tenth of a
    short benchmark run. Objects frozen are never collected (freed by reference
    counting as before, only a cycle among them stays), so a library that creates
    networks again and again (a test suite) must not call it."""
    gc.freeze()


def _tick_epochs(eng: Engine) -> None:
    event = threading.Event()
    while True:
        event.wait(_EPOCH_TICK_S)
        eng.increment_epoch()
        # a timer a guest's turn armed for the guest to look at, overdue: the loop runs it
        kick_overdue_loops()


# --- the linker --------------------------------------------------------------------

_linkers: dict[bool, Linker] = {}
_linker_keep_alive: list[Any] = []  # the linkers' callbacks and function types
_instance_pres: dict[int, tuple[Module, InstancePre]] = {}


def shared_linker(threaded: bool = False) -> Linker:
    """The one linker with every host function, for every guest of the engine.

    Its callbacks find the calling guest through `abi.bind_thread`, so no guest
    needs a linker, callbacks or closures of its own. `threaded`: the linker for
    modules built with -pthread, whose blocking calls may switch threads
    (vnet.guest.threads.threaded_functions).
    """
    eng = engine()
    with _engine_lock:
        linker = _linkers.get(threaded)
        if linker is None:
            linker = Linker(eng)
            table = guest_threads.threaded_functions() if threaded else HOST_FUNCTIONS
            table.define_all(linker, _linker_keep_alive)
            _linkers[threaded] = linker
        return linker


def instance_pre(module: Module) -> InstancePre:
    """`module` with its imports resolved against the shared linker, once per module."""
    linker = shared_linker(guest_threads.GuestThreads.wanted(module))
    with _engine_lock:
        cached = _instance_pres.get(id(module))
        if cached is None or cached[0] is not module:
            cached = (module, linker.instantiate_pre(module))
            _instance_pres[id(module)] = cached
        return cached[1]


# --- modules ---------------------------------------------------------------------

_module_cache: dict[tuple[str, int, int], Module] = {}


def load_module(path: str | os.PathLike[str], entry: str = "_start") -> Module:
    """Compile and validate a guest module, or raise GuestLoadError.

    `entry` is the exported function the guest will run: `_start` for a WASI command,
    another export for `--invoke` (a reactor's `_initialize` runs first)."""
    module = _load_module(path)
    exports = {e.name: e for e in module.exports}
    if entry not in exports:
        if entry == "_start":
            raise GuestLoadError(f"{path}: no _start export (not a wasip1 command module; "
                                 "--invoke FUNCTION runs another export)")
        raise GuestLoadError(f"{path}: --invoke {entry}: the module exports no {entry!r}")
    if not isinstance(exports[entry].type, wasmtime.FuncType):
        raise GuestLoadError(f"{path}: --invoke {entry}: {entry!r} is not a function")
    return module


def _load_module(path: str | os.PathLike[str]) -> Module:
    p = Path(path)
    try:
        st = p.stat()
        data = p.read_bytes()
    except FileNotFoundError:
        raise GuestLoadError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise GuestLoadError(f"{p}: is a directory, not a wasm module") from None
    except OSError as e:
        raise GuestLoadError(f"{p}: cannot read: {e.strerror}") from None
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    cached = _module_cache.get(key)
    if cached is not None:
        return cached
    if data[:4] != b"\0asm":
        raise GuestLoadError(f"{p}: not a WebAssembly module (bad magic number)")
    if len(data) >= 8 and data[4:8] != b"\x01\0\0\0":
        raise GuestLoadError(
            f"{p}: a WebAssembly component or unknown version, not a wasm32-wasip1 core module"
        )
    try:
        module = Module(engine(), data)
    except WasmtimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid module"
        raise GuestLoadError(f"{p}: invalid wasm module: {first}") from None
    provided = HOST_FUNCTIONS.functions
    for imp in module.imports:
        if (imp.module, imp.name) not in provided:
            raise GuestLoadError(
                f"{p}: imports {imp.module}.{imp.name}, which vnet does not provide "
                "(is this a wasm32-wasip1 module?)"
            )
    exports = {e.name: e for e in module.exports}
    if "memory" not in exports:
        raise GuestLoadError(f"{p}: exports no memory")
    _module_cache[key] = module
    return module


# --- guests ---------------------------------------------------------------------

Sink = Callable[[bytes], None]


@dataclass
class GuestConfig:
    """How to start one guest."""

    module: str
    args: list[str]
    env: list[tuple[str, str]] = field(default_factory=list)
    preopens: list[tuple[str, str]] = field(default_factory=list)  # (host dir, guest path)
    stdin: InputStream | bytes | None = None
    stdout: Sink | None = None
    stderr: Sink | None = None
    limits: GuestLimits = field(default_factory=GuestLimits)
    name: str = "guest"
    debug: bool = False
    #: The virtual host (vnet.network.Host) whose stack the guest's sockets use.
    host: Any = None
    #: Listening TCP sockets opened before the guest starts, as wasmtime's
    #: --tcplisten gives them: fds 3, 4, … (before preopened directories).
    tcplisten: list[tuple[str, int]] = field(default_factory=list)
    #: The export to run (wasmtime's --invoke): `_start` for a command; another function
    #: gets `invoke_args` converted to its parameter types, and its results are printed
    #: on stdout one per line, as wasmtime does.
    entry: str = "_start"
    invoke_args: list[str] = field(default_factory=list)
    #: TUN/TAP devices the guest may create through /dev/net/tun (vnet.guest.tundev).
    devices: list[GuestDeviceGrant] = field(default_factory=list)
    #: May configure every interface of its host (`vnet run --guest-net-admin`), as
    #: CAP_NET_ADMIN; else only those in `ctx.configurable_interfaces` (vnet.guest.ifconfig).
    net_admin: bool = False


class Guest:
    """One running wasm instance: its store, context and scheduler task."""

    def __init__(self, scheduler: Scheduler, config: GuestConfig, module: Module | None = None):
        self.scheduler = scheduler
        self.config = config
        self.module = (module if module is not None
                       else load_module(config.module, config.entry))
        seed_material = f"{scheduler.seed}:{config.name}".encode()
        self.ctx = GuestContext(
            config.name, scheduler, list(config.args), list(config.env), config.limits,
            random.Random(seed_material), config.debug,
        )
        if config.net_admin:
            self.ctx.configurable_interfaces.add(ifconfig.EVERY_INTERFACE)
        self.exit_code: int | None = None
        self.trap: str | None = None
        # wasmtime's backtrace of the trap, one line per frame (function names; file:line
        # from DWARF when WASMTIME_BACKTRACE_DETAILS=1 and the module has debug info)
        self.trap_backtrace: list[str] = []
        self.memory_bytes_at_exit = 0
        self.task: GuestTask | None = None
        self._keep_alive: list[object] = []
        self._install_stdio_and_preopens()

    def _install_stdio_and_preopens(self) -> None:
        cfg = self.config
        stdin = cfg.stdin
        if stdin is None:
            stdin = InputStream(b"", eof=True)
        elif isinstance(stdin, bytes):
            stdin = InputStream(stdin, eof=True)
        self.ctx.fds.add(stdin)
        self.ctx.fds.add(OutputStream(cfg.stdout or _discard))
        self.ctx.fds.add(OutputStream(cfg.stderr or _discard))
        if cfg.host is not None:
            self.ctx.extensions["host"] = cfg.host
            self.ctx.enforce_memory_limit = wasix.memory_limit_enforcer(self.ctx, cfg.host)
        for address, port in cfg.tcplisten:
            self.ctx.fds.add(self._listening_socket(address, port))
        for host_dir, guest_path in cfg.preopens:
            self.ctx.fds.add(open_preopen(host_dir), preopen_name=guest_path)
        self.ctx.extensions[tundev.GRANTS_KEY] = list(cfg.devices)
        install_dev(self.ctx)  # the synthetic /dev (vnet.guest.devfs), not counted in max_fds
        from .etc_files import install_etc  # /etc: resolv.conf, hosts (vnet.guest.etc_files)

        install_etc(self.ctx, cfg.host, cfg.preopens)

    def _listening_socket(self, address: str, port: int) -> FileDescription:
        import ipaddress
        import socket as _socket

        from .sockets import SocketDescription

        host = self.config.host
        if host is None:
            raise GuestLoadError("--tcplisten needs the guest to run on a virtual host")
        ip = ipaddress.ip_address(address)
        family = _socket.AF_INET if ip.version == 4 else _socket.AF_INET6
        sched = host.network.scheduler
        with sched.lock, sched.atomic():
            core = host.tcp.socket(family)
            core.reuseaddr = True
            try:
                core.bind(ip.packed, port)
                core.listen(128)
            except OSError as e:
                raise GuestLoadError(f"--tcplisten {address}:{port}: {e.strerror}") from None
        return SocketDescription(host, core, family, _socket.SOCK_STREAM, 6)

    def start(self) -> GuestTask:
        # instantiating may use any CPU; the guest joins the network's CPU to run
        self.task = self.scheduler.spawn(self.config.name, self._run, wake_key=self.config.host,
                                         pin_at_start=False)
        self.ctx.task = self.task
        return self.task

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done

    def _run(self, task: GuestTask) -> None:
        self.ctx.task = task
        bind_thread(self.ctx)
        try:
            self._instantiate_and_start(task)
        finally:
            bind_thread(None)
            # Closing sockets sends FINs/RSTs: one atomic network turn, under the lock,
            # like any host call (else a loopback peer could answer mid-close).
            sched = self.scheduler
            with sched.lock, sched.atomic():
                self.ctx.fds.close_all()
            if self.ctx.memory is not None:
                self.memory_bytes_at_exit = self.ctx.memory.size
            self.ctx.memory = None  # releases the store and its linear memory

    def _instantiate_and_start(self, task: GuestTask) -> None:
        eng = engine()
        store = Store(eng)
        limits = self.config.limits
        store.set_limits(memory_size=limits.memory_bytes, instances=1, tables=4, memories=1)
        self._install_epoch_callback(store, task)
        store.set_epoch_deadline(1)
        try:
            instance = instance_pre(self.module).instantiate(store)
        except (WasmtimeError, wasmtime.Trap) as e:
            self.trap = _one_line(e)
            self.exit_code = TRAP_EXIT_CODE
            return
        memory = instance.exports(store)["memory"]
        assert isinstance(memory, wasmtime.Memory)
        self.ctx.memory = GuestMemory(store, memory)
        exports = instance.exports(store)
        start = exports[self.config.entry]
        assert isinstance(start, wasmtime.Func)
        self.scheduler.placement.pin()
        threads = guest_threads.attach(self.ctx, store, self.module, exports, start)
        try:
            if threads is not None and self.config.entry == "_start":
                threads.run(start)
            elif self.config.entry == "_start":
                start(store)
            else:
                self._invoke(store, exports, start)
            self.exit_code = 0
        except _InvokeError as e:
            (self.config.stderr or _discard)(f"vnet: {e}\n".encode())
            self.exit_code = 1
        except (wasmtime.Trap, WasmtimeError) as e:
            request = self.ctx.exit_request
            if request is not None and request.reason == "exit":
                self.exit_code = request.code & 0xFF
            elif request is not None and request.reason.startswith(OUT_OF_MEMORY):
                # as the OOM killer: 137, and one line saying why
                self.exit_code = KILLED_EXIT_CODE
                self.trap = request.reason
                (self.config.stderr or _discard)(f"vnet: guest killed: {request.reason}\n"
                                                 .encode())
            elif request is not None:
                self.exit_code = KILLED_EXIT_CODE
                self.trap = f"guest {request.reason}"
            else:
                self.trap = _one_line(e)
                self.trap_backtrace = wasm_backtrace(e)
                self.exit_code = TRAP_EXIT_CODE

    def _invoke(self, store: Store, exports: Any, func: wasmtime.Func) -> None:
        """Run an export other than _start, as `wasmtime run --invoke`: the reactor's
        _initialize first, arguments converted to the parameters' types, results printed
        one per line. A bad argument ends the guest with exit status 1 and one line why."""
        initialize = exports.get("_initialize")
        if isinstance(initialize, wasmtime.Func):
            initialize(store)
        params = func.type(store).params
        name = self.config.entry
        args = self.config.invoke_args
        if len(args) != len(params):
            raise _InvokeError(f"--invoke {name}: takes {len(params)} argument(s), "
                               f"{len(args)} given")
        values: list[int | float] = []
        for index, (text, kind) in enumerate(zip(args, params, strict=True)):
            try:
                values.append(int(text, 0) if str(kind) in ("i32", "i64") else float(text))
            except ValueError:
                raise _InvokeError(f"--invoke {name}: argument {index + 1} {text!r} is not "
                                   f"a valid {kind}") from None
        results = func(store, *values)
        if results is None:
            results = []
        elif not isinstance(results, list):
            results = [results]
        out = self.config.stdout or _discard
        for value in results:
            out(f"{value}\n".encode())

    def _install_epoch_callback(self, store: Store, task: GuestTask) -> None:
        sched = self.scheduler
        ctx = self.ctx
        budget_slices = (
            max(1, int(ctx.limits.cpu_time_ms / (_EPOCH_TICK_S * 1000)))
            if ctx.limits.cpu_time_ms else 0
        )
        spin_slices = max(1, int(SPIN_THRESHOLD_NS / (_EPOCH_TICK_S * 1e9)))
        # slices: ticks seen while this guest ran; quiet: consecutive ticks with no host call
        state = {"slices": 0, "quiet": 0, "calls": -1}
        sockets = ctx.extensions.get("socket_memory")
        memory_limit = ctx.limits.memory_bytes
        enforce_memory_limit = ctx.enforce_memory_limit
        lock = ctx.host_call_lock

        def on_deadline(_context: int, _data: int, delta_ptr: int, kind_ptr: int) -> int:
            ctypes.c_uint64.from_address(delta_ptr).value = 1
            ctypes.c_uint8.from_address(kind_ptr).value = 0  # continue
            state["slices"] += 1
            if task.killed:
                ctx.exit_request = GuestExit(KILLED_EXIT_CODE, "killed")
                return _new_error("guest killed")
            if budget_slices and state["slices"] > budget_slices:
                ctx.exit_request = GuestExit(KILLED_EXIT_CODE, "exceeded its CPU time limit")
                return _new_error("cpu time limit")
            memory = ctx.memory
            # linear memory grows without a host call: its size is read again every tick
            if sockets is not None and memory is not None and enforce_memory_limit is not None \
                    and memory.size + sockets.used > memory_limit:
                with lock, sched.atomic():
                    oom = enforce_memory_limit()
                if oom is not None:
                    ctx.exit_request = oom
                    return _new_error("out of memory")
            calls = ctx.stats.host_calls
            if calls != state["calls"]:
                state["calls"] = calls
                state["quiet"] = 0
            else:
                state["quiet"] += 1
            if sched.virtual and state["quiet"] >= spin_slices:
                ctx.stats.preemptions += 1
                try:
                    sched.yield_task(task, spinning=True)
                except Exception:
                    ctx.exit_request = GuestExit(KILLED_EXIT_CODE, "killed")
                    return _new_error("guest killed")
            elif not sched.virtual:
                ctx.stats.preemptions += 1  # the OS switches threads; we just count slices
                sched.end_burst(task)  # a burst of calls that ended in compute
                if state["quiet"] >= _ROAM_AFTER_SLICES and not task.roaming:
                    # computing, not networking: let it out to every CPU until its next
                    # host call (vnet.cpu_placement)
                    task.roaming = True
                    sched.placement.release()
            return 0

        callback = _EPOCH_CALLBACK(on_deadline)
        self._keep_alive.append(callback)
        _set_epoch_callback(ctypes.cast(store.ptr(), ctypes.c_void_p), callback, None, None)


_EPOCH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p
)
_set_epoch_callback = ffi.dll["wasmtime_store_epoch_deadline_callback"]
_set_epoch_callback.restype = None
_set_epoch_callback.argtypes = [ctypes.c_void_p, _EPOCH_CALLBACK, ctypes.c_void_p, ctypes.c_void_p]
_error_new = ffi.dll["wasmtime_error_new"]
_error_new.restype = ctypes.c_void_p
_error_new.argtypes = [ctypes.c_char_p]


def _new_error(message: str) -> int:
    return _error_new(message.encode()) or 0


class _InvokeError(Exception):
    """--invoke was given arguments the function cannot take."""


def _discard(_data: bytes) -> None:
    return None


def _one_line(error: BaseException) -> str:
    """The reason for a trap in one line: wasmtime's last cause ("wasm trap: out of
    bounds memory access") with the causes before it in brackets ("memory fault at wasm
    address 0x7fffffff in linear memory of size 0x1020000")."""
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "Caused by:" in lines:
        causes = [_CAUSE_NUMBER.sub("", line) for line in lines[lines.index("Caused by:") + 1:]]
        if causes:
            reason, details = causes[-1], causes[:-1]
            return reason + (f" ({'; '.join(details)})" if details else "")
    for line in reversed(lines):
        if line.startswith(("wasm trap:", "error while executing")):
            return line
    if len(lines) > 1 and lines[-1].startswith("Caused by:") is False:
        for line in lines:
            if "trap" in line:
                return line
    return lines[0] if lines else type(error).__name__


_CAUSE_NUMBER = re.compile(r"^\d+:\s*")


def wasm_backtrace(error: BaseException) -> list[str]:
    """The frames of wasmtime's backtrace for a trap, as wasmtime prints them."""
    frames: list[str] = []
    inside = False
    for line in str(error).splitlines():
        if line.rstrip().endswith("wasm backtrace:"):
            inside = True
        elif inside:
            if not line.strip() or line.startswith(("note:", "Caused by:")):
                break
            frames.append(line.rstrip())
    return frames


@dataclass
class RunResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    trap: str | None
    guest: Guest


def run_module(
    wasm_path: str | os.PathLike[str],
    args: list[str] | None = None,
    env: list[tuple[str, str]] | None = None,
    preopens: list[tuple[str, str]] | None = None,
    stdin: bytes = b"",
    virtual_time: bool = False,
    seed: int = 0,
    limits: GuestLimits | None = None,
    timeout_s: float | None = None,
) -> RunResult:
    """Run one guest to completion and capture its output (tests, simple use)."""
    out = bytearray()
    err = bytearray()
    sched = Scheduler(virtual=virtual_time, seed=seed)
    cfg = GuestConfig(
        module=str(wasm_path),
        args=list(args) if args is not None else [Path(wasm_path).name],
        env=list(env or []),
        preopens=list(preopens or []),
        stdin=stdin,
        stdout=out.extend,
        stderr=err.extend,
        limits=limits or GuestLimits(),
    )
    guest = Guest(sched, cfg)
    guest.start()
    finished = sched.run(timeout_s=timeout_s)
    if not finished:
        sched.stop_all()
    code = guest.exit_code if guest.exit_code is not None else KILLED_EXIT_CODE
    return RunResult(code, bytes(out), bytes(err), guest.trap, guest)


def write_through(stream: object) -> Sink:
    """A sink that writes guest output straight to a binary stream and flushes."""
    buffer = getattr(stream, "buffer", stream)

    def sink(data: bytes) -> None:
        buffer.write(data)  # type: ignore[attr-defined]
        buffer.flush()  # type: ignore[attr-defined]

    return sink

