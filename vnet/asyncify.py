"""Binaryen's Asyncify for `-pthread` guests: find or install wasm-opt, run it.

`vnet cc -pthread` / `vnet build -pthread` link the guest with vnet's pthread
runtime and then run `wasm-opt --asyncify` over the module, so vnet's host can
switch threads inside host calls (vnet/guest/threads.py says how). wasm-opt is
Binaryen's, from npm (`binaryen@BINARYEN_VERSION`, a self-contained build run
by node), installed once into the build cache (`cache_dir()/binaryen-VERSION`)
by `scripts/install-binaryen` (which scripts/_bootstrap.sh calls) or on the
first -pthread build. `VNET_WASM_OPT=/path/to/wasm-opt` uses another one
(Debian's `binaryen` package has one too).

This module runs npm and wasm-opt and writes into the build cache; nothing else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from vnet.build import BuildError, cache_dir

BINARYEN_VERSION = "132.0.0"

#: The imports at which a thread may be switched out (wasm-opt's asyncify-imports).
_P1 = "wasi_snapshot_preview1"
ASYNCIFY_IMPORTS = (
    *(f"{_P1}.{name}" for name in ("poll_oneoff", "fd_read", "fd_write", "sock_accept",
                                   "sock_recv", "sock_send", "sched_yield")),
    *(f"wasix_32v1.{name}" for name in ("sock_accept", "sock_accept_v2", "sock_connect",
                                        "sock_recv_from", "sock_send_to")),
    "vnet_v1.sock_recvmsg",
    *(f"vnet_threads.{name}" for name in ("futex_wait", "exit_thread", "yield", "setjmp",
                                          "longjmp")),
)


class BinaryenMissing(BuildError):
    """wasm-opt is not there and cannot be installed (one line saying what is missing)."""


def _npm_wasm_opt() -> Path:
    return (cache_dir() / f"binaryen-{BINARYEN_VERSION}" / "node_modules" / "binaryen" / "bin"
            / "wasm-opt")


def install_binaryen() -> Path:
    """Install binaryen from npm into the build cache (once); its wasm-opt's path."""
    target = _npm_wasm_opt()
    if target.is_file():
        return target
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise BinaryenMissing("-pthread needs Binaryen's wasm-opt: install node and npm "
                         "(apt-get install nodejs npm) or set VNET_WASM_OPT")
    prefix = cache_dir() / f"binaryen-{BINARYEN_VERSION}"
    prefix.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit",
                               "--no-fund", f"binaryen@{BINARYEN_VERSION}"],
                              capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        raise BinaryenMissing(f"-pthread needs Binaryen's wasm-opt: npm install failed: {e}"
                              ) from None
    if proc.returncode != 0 or not target.is_file():
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BinaryenMissing(f"-pthread needs Binaryen's wasm-opt: `npm install binaryen@"
                         f"{BINARYEN_VERSION}` failed: {last}")
    return target


def wasm_opt() -> list[str]:
    """The command that runs wasm-opt (installing binaryen first if need be)."""
    chosen = os.environ.get("VNET_WASM_OPT")
    if chosen:
        return [chosen]
    return [str(install_binaryen())]


def asyncify(module: Path, imports: tuple[str, ...] | list[str]) -> None:
    """Transform `module` in place so the stack can unwind at `imports`."""
    tmp = module.with_name(f"{module.name}.asyncify{os.getpid()}")
    cmd = [*wasm_opt(), str(module), "-o", str(tmp), "--enable-bulk-memory",
           "--enable-sign-ext", "--enable-mutable-globals", "--enable-nontrapping-float-to-int",
           "--asyncify", f"--pass-arg=asyncify-imports@{','.join(imports)}", "-O2",
           "-g"]  # keeps the names section: trap backtraces still name functions
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        raise BuildError(f"wasm-opt --asyncify failed: {e}") from None
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise BuildError(f"wasm-opt --asyncify failed on {module}: {last}")
    os.replace(tmp, module)
