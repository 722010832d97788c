"""The `vnet` command line: build and run guests.

    vnet build SRC.c [SRC.c ...] -o OUT.wasm [-I DIR] [-D NAME[=VALUE]] [-O LEVEL]
    vnet run [--dir HOST[::GUEST]] [--env NAME=VALUE] [--virtual-time] [--seed N]
             GUEST.wasm [ARGS...]

Flag spellings follow `wasmtime run` where the two overlap (`--dir`,
`--env`). Usage errors, bad files and invalid modules print one line naming
the problem and exit with status 2; `vnet run` otherwise exits with the
guest's exit status (134 if it trapped, as wasmtime does). This module parses
arguments and reports; the work is done by vnet.build and vnet.guest.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vnet.guest.fdtable import InputStream
    from vnet.scheduler import Scheduler

USAGE_ERROR = 2


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{self.prog}: {message}")


def _parse_env(values: Sequence[str]) -> list[tuple[str, str]]:
    env = []
    for item in values:
        name, sep, value = item.partition("=")
        if not sep:
            # wasmtime's --env NAME inherits NAME from the host environment
            if not name or name not in os.environ:
                raise CliError(f"--env {item!r}: expected NAME=VALUE (or NAME set on the host)")
            value = os.environ[name]
        if not name or "\0" in name or "\0" in value:
            raise CliError(f"--env {item!r}: expected NAME=VALUE with a non-empty NAME")
        env.append((name, value))
    return env


def _parse_dirs(values: Sequence[str]) -> list[tuple[str, str]]:
    dirs = []
    for item in values:
        host, sep, guest = item.partition("::")
        if not host:
            raise CliError(f"--dir {item!r}: expected HOST_DIR[::GUEST_DIR]")
        if not sep:
            guest = host
        if not guest:
            raise CliError(f"--dir {item!r}: the guest path after '::' is empty")
        if not Path(host).is_dir():
            raise CliError(f"--dir {item!r}: {host} is not a directory")
        dirs.append((host, guest))
    return dirs


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vnet",
        description="Run untrusted WebAssembly network programs on a virtual, inspectable, "
        "reproducible network.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    build = sub.add_parser(
        "build", help="compile C sources to a wasm32-wasip1 guest (zig + the vnet SDK)",
        description="Compile portable C to a wasm32-wasip1 guest with the zig compiler from "
        "the ziglang package, adding the vnet SDK's headers and sources. Builds are cached "
        "by content (~/.cache/vnet/build, or $VNET_CACHE_DIR).",
    )
    build.add_argument("sources", nargs="+", metavar="SRC.c", help="C source files")
    build.add_argument("-o", "--output", required=True, metavar="OUT.wasm",
                       help="where to write the module")
    build.add_argument("-I", dest="include", action="append", default=[], metavar="DIR",
                       help="add an include directory")
    build.add_argument("-D", dest="define", action="append", default=[], metavar="NAME[=VALUE]",
                       help="define a preprocessor macro")
    build.add_argument("-O", dest="opt", default="2", choices=["0", "1", "2", "3", "s", "z"],
                       help="optimisation level (default 2)")
    build.add_argument("--no-cache", action="store_true", help="always run the compiler")
    build.set_defaults(func=_cmd_build, parser=build)

    run = sub.add_parser(
        "run", help="run a guest on its own virtual host",
        description="Run a wasm32-wasip1 guest under vnet's own WASI implementation. "
        "Exits with the guest's exit status (134 if it trapped).",
    )
    run.add_argument("--dir", action="append", default=[], metavar="HOST[::GUEST]",
                     help="preopen a host directory, optionally under another guest path "
                     "(repeatable)")
    run.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                     help="set an environment variable for the guest (repeatable)")
    run.add_argument("--virtual-time", action="store_true",
                     help="run in deterministic virtual time")
    run.add_argument("--seed", type=int, default=0,
                     help="seed for random_get in virtual time (default 0)")
    run.add_argument("--max-memory", type=int, default=256, metavar="MIB",
                     help="cap on the guest's linear memory in MiB (default 256)")
    run.add_argument("--max-fds", type=int, default=1024, metavar="N",
                     help="cap on the guest's open file descriptors (default 1024)")
    run.add_argument("--cpu-time-limit", type=int, default=0, metavar="MS",
                     help="stop the guest after this much CPU time (default: no limit)")
    run.add_argument("--debug", action="store_true",
                     help="print vnet-internal errors with tracebacks")
    run.add_argument("module", metavar="GUEST.wasm", help="the guest module")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                     help="arguments passed to the guest")
    run.set_defaults(func=_cmd_run, parser=run)
    return parser


def _cmd_build(ns: argparse.Namespace) -> int:
    from vnet.build import BuildError, build_wasm

    for source in ns.sources:
        if not Path(source).is_file():
            raise CliError(f"vnet build: {source}: no such source file")
    flags = [f"-I{d}" for d in ns.include] + [f"-D{d}" for d in ns.define]
    try:
        build_wasm(ns.sources, ns.output, flags=flags, optimize=f"-O{ns.opt}",
                   use_cache=not ns.no_cache)
    except BuildError as e:
        print(f"vnet build: {e}", file=sys.stderr)
        return 1
    return 0


def _cmd_run(ns: argparse.Namespace) -> int:
    from vnet.guest.context import GuestLimits
    from vnet.guest.runtime import (
        KILLED_EXIT_CODE,
        Guest,
        GuestConfig,
        GuestLoadError,
        load_module,
        write_through,
    )
    from vnet.scheduler import Scheduler

    env = _parse_env(ns.env)
    dirs = _parse_dirs(ns.dir)
    if ns.max_memory <= 0 or ns.max_fds < 3 or ns.cpu_time_limit < 0:
        raise CliError("vnet run: --max-memory must be > 0, --max-fds >= 3, "
                       "--cpu-time-limit >= 0")
    try:
        module = load_module(ns.module)
    except GuestLoadError as e:
        raise CliError(f"vnet run: {e}") from None
    sched = Scheduler(virtual=ns.virtual_time, seed=ns.seed)
    limits = GuestLimits(memory_bytes=ns.max_memory * 1024 * 1024, max_fds=ns.max_fds,
                         cpu_time_ms=ns.cpu_time_limit)
    config = GuestConfig(
        module=ns.module, args=[ns.module, *ns.args], env=env, preopens=dirs,
        stdin=_stdin_for(sched),
        stdout=write_through(sys.stdout), stderr=write_through(sys.stderr),
        limits=limits, name=Path(ns.module).stem, debug=ns.debug,
    )
    try:
        guest = Guest(sched, config, module)
    except (GuestLoadError, OSError) as e:
        raise CliError(f"vnet run: {e}") from None
    guest.start()
    try:
        sched.run()
    except KeyboardInterrupt:
        sched.stop_all()
        return 130
    if guest.exit_code is None:
        sched.stop_all()
        print("vnet run: guest blocked forever (nothing left that could wake it)",
              file=sys.stderr)
        return KILLED_EXIT_CODE
    if guest.trap:
        print(f"vnet run: guest trapped: {guest.trap}", file=sys.stderr)
    for line in guest.ctx.diagnostics:
        print(f"vnet run: {line}", file=sys.stderr)
    return guest.exit_code


def _stdin_for(sched: Scheduler) -> InputStream | bytes:
    """The guest's stdin: host fd 0, streamed in real time, read whole in virtual time.

    Virtual time reads all of it up front, so that the guest sees the same
    bytes at the same virtual moments on every run.
    """
    from vnet.guest.fdtable import InputStream

    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return b""
    if sched.virtual:
        return b"" if os.isatty(fd) else sys.stdin.buffer.read()
    stream = InputStream(b"", eof=False)

    def pump() -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            with sched.lock:
                if data:
                    stream.feed(data)
                else:
                    stream.close_input()
                sched.notify()
            if not data:
                return

    threading.Thread(target=pump, name="vnet-stdin", daemon=True).start()
    return stream


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    ns: argparse.Namespace | None = None
    try:
        ns = parser.parse_args(argv)
        if ns.command is None:
            parser.print_help()
            return USAGE_ERROR
        return int(ns.func(ns))
    except CliError as e:
        message = str(e)
        if not message.startswith("vnet"):
            message = f"vnet {getattr(ns, 'command', '') or ''}: {message}".replace("  ", " ")
        print(message, file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
