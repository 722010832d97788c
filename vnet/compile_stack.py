"""Compile the hot stack modules with mypyc: `python -m vnet.compile_stack` (scripts/compile-stack).

Copies ``stack/``, ``vnet/`` and ``firewall/`` to a scratch directory, compiles
`COMPILED_MODULES` (of stack/) and `COMPILED_VNET_MODULES` (the host-call layer around it)
there as one mypyc group, so that calls between them stay native, and installs the
extension files with a manifest into ``build/compiled-stack/`` (or ``--out DIR``), where
`stack.compiled` finds them at the next start. The build is all or nothing: it is written
under a temporary name and renamed into place only once complete, and the manifest
records the SHA-256 of the sources it was made from, so an edit to any file of ``stack/``,
to any compiled vnet/ module or to an uncompiled one they import (`read_sources`) makes
all of them run as pure Python again until the next build.

``--if-possible`` (scripts/_bootstrap.sh, unless VNET_COMPILE_STACK=0) turns "no C compiler",
"no Python headers" and "VNET_PURE_PYTHON is set" into one line on stderr and exit
status 0: the pure-Python stack is the fallback and needs nothing but python3.
``--check`` only says whether the current build is in use. Touches the scratch
directory, the output directory and the C compiler.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from stack import compiled

#: The modules compiled, by path under stack/: every module a packet or a TCP connection
#: passes through. Left out, and why (mypyc 2.x): wire/ipv6.py — ``cls.__new__(cls)`` is
#: not supported; the DHCP, DNS, router-advertisement sender, multicast routing and
#: ancillary-data modules (off the per-packet path; not tried); the ``__init__`` files
#: and compiled.py itself (they pick the build). What compiling asks of the sources: a
#: class has one base besides traits (the TCP engine is one chain, stack/tcp_tcb.py); a
#: dataclass is not generic, and its annotations name only what the module's globals
#: hold at run time (stack/ip.py); a compiled class has no ``__dict__`` and takes no
#: weak references (stack/weak_handle.py, which must stay out of this list, stands in
#: for a connection), and cannot be monkeypatched.
COMPILED_MODULES = (
    "wire/_multicast.py", "wire/_types.py", "wire/arp.py", "wire/checksum.py",
    "wire/errors.py", "wire/ethernet.py", "wire/gso.py", "wire/icmpv4.py", "wire/icmpv6.py",
    "wire/igmp.py", "wire/ip.py", "wire/ipv4.py", "wire/mld.py", "wire/ndp.py",
    "wire/tcp.py", "wire/udp.py",
    "congestion/hystart.py", "congestion/newreno.py", "congestion/cubic.py",
    "build.py", "counters.py", "driver.py", "fragment.py", "hooks.py", "host.py", "icmp.py",
    "interface.py", "ipv4.py", "ipv6.py", "membership.py", "multicast.py", "oserror.py",
    "path_mtu.py", "ping.py", "router_advert.py", "routing.py", "socket.py",
    "socket_memory.py", "sockopt.py", "tcp.py", "tcp_sack.py", "tcp_socket.py",
    "tcp_sockopt.py", "udp.py",
    "tcp_tcb.py", "tcp_ecn.py", "tcp_recovery.py", "tcp_timers.py", "tcp_output.py",
    "tcp_connection.py", "tcp_timer_queue.py", "tcp_time_wait.py", "neighbor.py", "ip.py",
)
#: The modules of vnet/ compiled in the same group, by path under vnet/: the host-call
#: layer every socket call and frame passes through (the guest ABI callbacks, WASI and
#: WASIX calls, socket descriptions, fd table, guest memory, context; NIC and segment).
#: The scheduler (clock, timers, FairLock, turns: every host call takes and ends a turn)
#: is compiled too. Left out, and why: vnet/guest/runtime.py and threads.py (wasmtime
#: set-up, off the per-call path); the file, pipe, /dev and netlink descriptions (off
#: the socket path; they subclass the compiled FileDescription, which allows it, and set
#: its per-class attributes in ``__init__``: vnet/guest/fdtable.py). They load only
#: through ``vnet/__init__.py``, which imports `stack` (and so its finder) first. What compiling
#: asked of them: the thread-local binding is a plain ``threading.local`` (a subclass
#: would be native, one slot for all threads); the context's ``memory`` is a property
#: over a deletable ``mem``; a value that may be any kind of socket is typed as such
#: (vnet/guest/wasix.py `send_iovecs`); tests give them real objects, not stand-ins; a
#: class-body alias of a method (``__enter__ = acquire``) is a method of its own
#: (vnet/scheduler.py). A compiled loop never gives up the GIL by itself: every wait in
#: the scheduler goes through a lock, gate or sleep that releases it.
COMPILED_VNET_MODULES = (
    "guest/abi.py", "guest/wasi_core.py", "guest/wasix.py", "guest/sockets.py",
    "guest/fdtable.py", "guest/memory.py", "guest/context.py",
    "link/nic.py", "link/segment.py", "scheduler.py",
)
#: The packages copied to the scratch directory: the compiled ones and what they import
#: (mypy reads the uncompiled modules for their types).
STAGED_PACKAGES = ("stack", "vnet", "firewall")
#: mypy's options for the build (the repository's own, as in pyproject.toml).
MYPY_CONFIG = "[mypy]\nignore_missing_imports = True\ncheck_untyped_defs = True\n"
GROUP = "vnet_compiled_stack"  # its shared library: vnet_compiled_stack__mypyc.<suffix>


def missing_prerequisite() -> str | None:
    """Why a build is impossible here (no compiler, no headers, no mypyc), or None."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        return f"no C compiler ({cc})"
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").is_file():
        return f"no Python headers ({include}/Python.h; Debian: python3-dev)"
    try:
        import mypyc.build  # noqa: F401
        import setuptools  # noqa: F401
    except ImportError as e:
        return f"no {e.name} (pip install mypy setuptools)"
    return None


def compiled_paths() -> list[str]:
    """Every compiled source, relative to the repository root."""
    return ([f"stack/{rel}" for rel in COMPILED_MODULES]
            + [f"vnet/{rel}" for rel in COMPILED_VNET_MODULES])


def read_sources(root: Path) -> list[str]:
    """The uncompiled modules of vnet/ and firewall/ that the compiled ones import (at run
    time or for types only), relative to `root`. mypyc compiles a call into one, or a read
    of its attributes, against its annotations and checks the value at run time (a
    ``tuple[int, ...]`` must be a tuple of ints), so an edit there that the sources take
    in their stride (`Impairment.decide` returning a list) makes a build from before it
    raise TypeError: the manifest lists them, and the digest covers them (stack/ is
    covered whole)."""
    compiled_files = set(compiled_paths())
    found: set[str] = set()
    for rel in compiled_files:
        package = rel[:-3].replace("/", ".").rsplit(".", 1)[0]
        for node in ast.walk(ast.parse((root / rel).read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1])
                    name = f"{base}.{node.module}" if node.module else base
                else:
                    name = node.module or ""
                names = [name, *(f"{name}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                path = name.replace(".", "/")
                for candidate in (f"{path}.py", f"{path}/__init__.py"):
                    if (candidate.split("/")[0] in ("vnet", "firewall")
                            and candidate not in compiled_files
                            and (root / candidate).is_file()):
                        found.add(candidate)
    return sorted(found)


def _build_in(scratch: Path, jobs: int) -> None:
    """Compile the staged copy of stack/ under `scratch` in place (a child process,
    so that mypyc's and setuptools' state and output stay out of this one)."""
    script = (
        "import sys\n"
        "from setuptools import setup\n"
        "from mypyc.build import mypycify\n"
        "paths = sys.argv[1:]\n"
        f"setup(name='vnet-compiled-stack', script_args=['-q', 'build_ext', '--inplace',"
        f" '-j', '{jobs}', '--build-temp', 'tmp'],\n"
        f"      ext_modules=mypycify(paths, group_name={GROUP!r}, opt_level='3',"
        " multi_file=True))\n"
    )
    paths = compiled_paths()
    proc = subprocess.run([sys.executable, "-c", script, *paths], cwd=scratch,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"mypyc failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-4000:]}{proc.stderr[-4000:]}")


def build(out: Path, jobs: int = 2) -> dict[str, str]:
    """Compile into `out` (replacing it whole); returns the module → file map."""
    suffix = compiled.platform_tag()["ext_suffix"]
    with tempfile.TemporaryDirectory(prefix="vnet-compile-stack-") as tmp:
        scratch = Path(tmp)
        for package in STAGED_PACKAGES:
            shutil.copytree(compiled.SOURCE_ROOT / package, scratch / package,
                            ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyc"))
        (scratch / "mypy.ini").write_text(MYPY_CONFIG)
        names = [path[:-3].replace("/", ".") for path in compiled_paths()]
        reads = read_sources(scratch)
        digest = compiled.sources_digest(scratch / "stack",
                                         compiled.outside_sources(names) + reads)
        _build_in(scratch, jobs)
        staged = out.with_name(out.name + ".partial")
        shutil.rmtree(staged, ignore_errors=True)
        modules: dict[str, str] = {}
        for name in [*names, f"{GROUP}__mypyc"]:
            rel = name.replace(".", "/") + suffix
            if not (scratch / rel).is_file():
                raise RuntimeError(f"mypyc built no {rel}")
            (staged / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(scratch / rel, staged / rel)
            modules[name] = rel
        manifest = {"format": compiled.MANIFEST_FORMAT, "platform": compiled.platform_tag(),
                    "sources": digest, "modules": modules, "reads": reads}
        (staged / compiled.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        staged.rename(out)
    return modules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/compile-stack", description=__doc__.split(
        "\n\n")[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="where the build goes (default: $VNET_COMPILED_STACK or "
                             "build/compiled-stack)")
    parser.add_argument("--if-possible", action="store_true",
                        help="no compiler or VNET_PURE_PYTHON set: say so, exit 0")
    parser.add_argument("--force", action="store_true", help="rebuild even if current")
    parser.add_argument("--check", action="store_true",
                        help="only say whether the build is current; exit 1 if not")
    parser.add_argument("-j", "--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else compiled.build_dir()
    usable, state = compiled.check_build(out)
    if args.check:
        hint = "" if usable is not None else f" (scripts/compile-stack builds {out})"
        print(f"vnet: stack: {state}{hint}", file=sys.stderr)
        return 0 if usable is not None else 1
    if args.if_possible and os.environ.get("VNET_PURE_PYTHON", "") not in ("", "0"):
        print("vnet: VNET_PURE_PYTHON is set: the stack runs as pure Python", file=sys.stderr)
        return 0
    if usable is not None and not args.force:
        print(f"vnet: stack: {state}: up to date", file=sys.stderr)
        return 0
    missing = missing_prerequisite()
    if missing is not None:
        print(f"vnet: {missing}: the stack runs as pure Python", file=sys.stderr)
        return 0 if args.if_possible else 1
    print(f"vnet: compiling {len(COMPILED_MODULES)} stack and {len(COMPILED_VNET_MODULES)} "
          f"vnet modules with mypyc into {out} "
          "(a few minutes)", file=sys.stderr)
    start = time.monotonic()
    try:
        modules = build(out, args.jobs)
    except (RuntimeError, OSError) as e:
        print(f"vnet: compiling the stack failed: {e}\nvnet: the stack runs as pure Python",
              file=sys.stderr)
        return 0 if args.if_possible else 1
    print(f"vnet: compiled {len(modules) - 1} modules in "
          f"{time.monotonic() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
