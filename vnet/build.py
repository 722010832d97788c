"""`vnet build`: compile portable C to a wasm32-wasip1 guest with zig.

The compiler is `zig cc -target wasm32-wasi` from the `ziglang` PyPI package
(run as `python -m ziglang`), so building guests needs no system packages.
Every build adds the vnet SDK: its include directory goes first on the
include path, and its C sources (vnet/sdk/src/*.c) are compiled in, so
guests get vnet's socket layer and the wasi-libc emulations (signals,
process clocks, getpid, mman) without extra flags.

Each source is compiled on its own (`building 3/10 x.c` on stderr when
stderr is a terminal or the caller asks), then the objects are linked.
Objects and modules are cached by content: a key covers the compiler
version, the flags (with -I directories resolved), the source's bytes and
the headers next to it, in -I directories and in the SDK, with every path
resolved, so `x.c`, `./x.c`, `/abs/x.c` or a symlink to it hit the same
entry and run no compiler. The SDK's objects are shared by every build with
the same flags. Compiler diagnostics pass through to stderr unchanged; a
failed build raises `BuildError`, with one line more when the failure is on
something WASI cannot have and vnet does not emulate (threads, signals,
setjmp …). This module touches the file system and runs the compiler;
nothing else.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SDK_DIR = Path(__file__).resolve().parent / "sdk"
SDK_INCLUDE = SDK_DIR / "include"
SDK_SOURCES = SDK_DIR / "src"
#: vnet's POSIX threads runtime, linked in by -pthread (see vnet/guest/threads.py)
SDK_PTHREAD = SDK_DIR / "pthread" / "pthread.c"
#: headers -pthread puts first on the include path (what wasi-libc's pthread.h lacks)
SDK_PTHREAD_INCLUDE = SDK_DIR / "pthread" / "include"
#: what -pthread adds to the link: the host switches threads through __stack_pointer
PTHREAD_LINK_FLAGS = ["-Wl,--export=__stack_pointer"]

TARGET = "wasm32-wasi"
EMULATIONS = ("signal", "process-clocks", "getpid", "mman")
BASE_FLAGS = [
    "-target", TARGET,
    "-std=gnu11",
    "-Wall",
    *(f"-D_WASI_EMULATED_{e.upper().replace('-', '_')}" for e in EMULATIONS),
]
LINK_FLAGS = [f"-lwasi-emulated-{e}" for e in EMULATIONS]
#: `vnet build --linux` / `vnet cc --linux`: the macros gcc defines on Linux (not
#: __gnu_linux__, which promises glibc), for programs that take their Linux branch
#: (`#ifdef __linux__`: TUN, rtnetlink, SO_* options). wasi-libc's headers compile
#: with them, and the SDK gives the Linux APIs such programs reach for.
LINUX_DEFINES = ["-D__linux__", "-D__linux"]


class BuildError(Exception):
    """The compiler failed (its diagnostics were already printed) or was not found."""


def zig_command() -> list[str]:
    return [sys.executable, "-m", "ziglang"]


def cache_dir() -> Path:
    root = os.environ.get("VNET_CACHE_DIR")
    if root:
        return Path(root) / "build"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vnet" / "build"


_zig_version: str | None = None


def zig_version() -> str:
    global _zig_version
    if _zig_version is None:
        try:
            proc = subprocess.run([*zig_command(), "version"], capture_output=True, text=True,
                                  check=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as e:
            raise BuildError(f"cannot run the zig compiler (pip package 'ziglang'): {e}") from None
        _zig_version = proc.stdout.strip()
    return _zig_version


def sdk_sources() -> list[Path]:
    return sorted(SDK_SOURCES.glob("*.c")) if SDK_SOURCES.is_dir() else []


def _headers_in(directories: Iterable[Path]) -> list[Path]:
    found: set[Path] = set()
    for directory in directories:
        if directory.is_dir():
            found.update(p for p in directory.rglob("*.h") if p.is_file())
    return sorted(found)


def _include_dirs(flags: Sequence[str]) -> list[Path]:
    dirs = []
    it = iter(flags)
    for flag in it:
        if flag == "-I":
            dirs.append(Path(next(it, ".")))
        elif flag.startswith("-I"):
            dirs.append(Path(flag[2:]))
    return dirs


def normalize_flags(flags: Sequence[str]) -> list[str]:
    """`flags` with every -I directory resolved, so the key ignores how a path was typed."""
    out: list[str] = []
    it = iter(flags)
    for flag in it:
        if flag == "-I":
            out.append(f"-I{Path(next(it, '.')).resolve()}")
        elif flag.startswith("-I"):
            out.append(f"-I{Path(flag[2:]).resolve()}")
        else:
            out.append(flag)
    return out


def _digest_files(digest: Any, paths: Iterable[Path]) -> None:
    for path in paths:
        digest.update(str(path.resolve()).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())


_sdk_headers_keys: dict[tuple[tuple[str, int, int], ...], str] = {}


def sdk_headers_key() -> str:
    """A digest of the SDK's headers (names, contents): for zig commands vnet does not
    cache itself (`vnet cc`), so zig's own cache sees a header added or changed."""
    headers = _headers_in([SDK_INCLUDE, SDK_DIR / "pthread" / "include"])
    stamp = tuple((str(h), h.stat().st_mtime_ns, h.stat().st_size) for h in headers)
    if stamp not in _sdk_headers_keys:
        digest = hashlib.sha256()
        _digest_files(digest, headers)
        _sdk_headers_keys[stamp] = digest.hexdigest()[:32]
    return _sdk_headers_keys[stamp]


def object_key(source: Path, flags: Sequence[str]) -> str:
    """The cache key of one compiled source: its content, its flags, the headers it can see.

    Paths enter only resolved (absolute, symlinks followed), so `x.c`, `./x.c`,
    `/abs/x.c` and a symlink to it are the same entry.
    """
    digest = hashlib.sha256()
    digest.update(zig_version().encode())
    digest.update("\0".join([*BASE_FLAGS, *normalize_flags(flags)]).encode())
    header_dirs = {source.resolve().parent} | {d.resolve() for d in _include_dirs(flags)}
    _digest_files(digest, [source, *_headers_in([SDK_INCLUDE, *sorted(header_dirs)])])
    return digest.hexdigest()[:32]


def cache_key(sources: Sequence[Path], flags: Sequence[str],
              link_flags: Sequence[str] = ()) -> str:
    """The cache key of a whole module (every source's object key, the link flags)."""
    digest = hashlib.sha256()
    digest.update("\0".join([*LINK_FLAGS, *link_flags]).encode())
    for source in [*sources, *sdk_sources()]:
        digest.update(object_key(source, flags).encode())
    return digest.hexdigest()[:32]


def _zig_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(cache_dir().parent / "zig"))
    return env


def _store(produced: Path, cached: Path) -> None:
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_name(f"{cached.name}.tmp{os.getpid()}")
    shutil.copyfile(produced, partial)
    os.replace(partial, cached)


def _run_zig(cmd: list[str], quiet: bool, what: str) -> None:
    try:
        proc = subprocess.run(cmd, env=_zig_env(), capture_output=True, text=True, timeout=600)
    except OSError as e:
        raise BuildError(f"cannot run the zig compiler: {e}") from None
    if proc.stderr and (proc.returncode != 0 or not quiet):
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        hint = wasi_hint(proc.stderr)
        raise BuildError(f"{what} failed (exit {proc.returncode})" + (f": {hint}" if hint else ""))


def compile_object(source: Path, flags: Sequence[str], use_cache: bool = True,
                   quiet: bool = False) -> Path:
    """Compile one C source (SDK headers first) to a cached object file; return its path."""
    key = object_key(source, flags)
    cached = cache_dir() / "obj" / f"{key}.o"
    if use_cache and cached.is_file():
        return cached
    with tempfile.TemporaryDirectory(prefix="vnet-build-") as tmp:
        tmp_out = Path(tmp) / "out.o"
        # The key as a macro: zig keeps a cache of its own, which misses a header added
        # where it shadows another (the SDK's __header_fcntl.h over wasi-libc's) and
        # would hand back the object compiled before; the key changes with every header.
        cmd = [*zig_command(), "cc", *BASE_FLAGS, "-I", str(SDK_INCLUDE),
               f"-D__VNET_BUILD_KEY__={key}", *normalize_flags(flags), "-c", str(source),
               "-o", str(tmp_out)]
        _run_zig(cmd, quiet, f"compilation of {source}")
        _store(tmp_out, cached)
    return cached


class Progress:
    """`building 7/15 lobby.c` on stderr, when stderr is a terminal or `verbose` is set."""

    def __init__(self, total: int, verbose: bool | None = None) -> None:
        self.total = total
        self.done = 0
        if verbose is None:
            verbose = sys.stderr.isatty()
        self.enabled = verbose

    def step(self, name: str) -> None:
        self.done += 1
        if self.enabled:
            print(f"building {self.done}/{self.total} {name}", file=sys.stderr, flush=True)


def check_output_dir(output: Path) -> None:
    """Fail as a compiler does when the output's directory does not exist."""
    parent = output.parent
    if not parent.is_dir():
        raise BuildError(f"unable to open output file '{output}': "
                         f"{parent}: No such file or directory")


def build_wasm(
    sources: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    flags: Sequence[str] = (),
    optimize: str = "-O2",
    use_cache: bool = True,
    quiet: bool = False,
    link_flags: Sequence[str] = (),
    verbose: bool | None = None,
    make_dirs: bool = True,
    threads: bool = False,
) -> Path:
    """Compile C sources (plus the SDK) into one wasm32-wasip1 module at `output`.

    Each source is compiled to its own cached object (so the SDK's objects are
    shared by every build), then everything is linked. `make_dirs=False`
    refuses a missing output directory, as a compiler does (`vnet build -o`).
    `threads=True` is -pthread: vnet's pthread runtime is linked in and the module
    is transformed by Asyncify (vnet.asyncify) so the host can switch threads.
    """
    srcs = [Path(s) for s in sources]
    if not srcs:
        raise BuildError("no source files given")
    for src in srcs:
        if not src.is_file():
            raise BuildError(f"{src}: no such source file")
    out = Path(output)
    if not make_dirs:
        check_output_dir(out)
    if "-pthread" in flags:  # as a compiler takes it
        threads = True
    flags = [f for f in flags if f != "-pthread"]
    if threads:
        from vnet.asyncify import wasm_opt
        wasm_opt()  # fail fast, before compiling, when Binaryen cannot be had
        flags = [f"-I{SDK_PTHREAD_INCLUDE}", "-D_REENTRANT", *flags]
    all_flags = [optimize, *flags]
    if threads:
        from vnet.asyncify import ASYNCIFY_IMPORTS, BINARYEN_VERSION
        # the cache key covers the transform: Binaryen's version and where it may unwind
        link_flags = [*link_flags, *PTHREAD_LINK_FLAGS,
                      f"-pthread={BINARYEN_VERSION}:{','.join(ASYNCIFY_IMPORTS)}"]
    key = cache_key([*srcs, *([SDK_PTHREAD] if threads else [])], all_flags, link_flags)
    cached = cache_dir() / f"{key}.wasm"
    if use_cache and cached.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, out)
        return out
    # the pthread runtime goes first: wasm-ld then never takes wasi-libc's thread stubs
    everything = [*([SDK_PTHREAD] if threads else []), *srcs, *sdk_sources()]
    progress = Progress(len(everything) + 1, False if quiet and verbose is None else verbose)
    objects = []
    for source in everything:
        progress.step(source.name)
        objects.append(compile_object(source, all_flags, use_cache, quiet))
    progress.step(out.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vnet-build-") as tmp:
        tmp_out = Path(tmp) / "out.wasm"
        zig_link_flags = [f for f in link_flags if not f.startswith("-pthread")]
        cmd = [*zig_command(), "cc", "-target", TARGET, optimize, *zig_link_flags,
               *(str(o) for o in objects), *LINK_FLAGS, "-o", str(tmp_out)]
        names = ", ".join(str(s) for s in srcs)
        _run_zig(cmd, quiet, f"linking {names}")
        if threads:
            from vnet.asyncify import ASYNCIFY_IMPORTS, asyncify
            asyncify(tmp_out, ASYNCIFY_IMPORTS)
        _store(tmp_out, cached)
        shutil.copyfile(tmp_out, out)
    return out


# Things WASI cannot have and vnet does not emulate: a symbol (undefined at
# link time or undeclared at compile time) and the one line that says why.
# fork, vfork, the exec family, wait/waitpid, system, popen, daemon and the
# setuid family are not here: the SDK defines them (vnet/sdk/src/process.c),
# so programs link and take their error path at run time (ENOSYS, ECHILD).
WASI_MISSING = {
    "pthread_create": "pthread_create: threads need -pthread (vnet cc -pthread, vnet build "
                      "-pthread): vnet's green threads",
    "sigaction": "sigaction: WASI has no signals (signal() and raise() are emulated in-process)",
    "kill": "kill: WASI has no signals between processes",
    "sigprocmask": "sigprocmask: WASI has no signals",
    "setjmp": "setjmp/longjmp: build with -pthread (vnet cc -pthread, vnet build -pthread): "
              "vnet gives them through Asyncify",
    "longjmp": "setjmp/longjmp: build with -pthread (vnet cc -pthread, vnet build -pthread): "
               "vnet gives them through Asyncify",
    "dlopen": "dlopen: WASI modules cannot load shared libraries",
    "__cxa_throw": "C++ exceptions: zig's libc++ for wasm32-wasi has none; build with "
                   "-fno-exceptions (vnet c++ does) and do not throw",
    "__cxa_allocate_exception": "C++ exceptions: zig's libc++ for wasm32-wasi has none; "
                                "build with -fno-exceptions (vnet c++ does) and do not throw",
}

_MISSING_PATTERNS = (
    re.compile(r"undefined symbol: (\w+)"),
    re.compile(r"undeclared function '(\w+)'"),
    re.compile(r"implicit declaration of function '(\w+)'"),
)


def wasi_hint(diagnostics: str) -> str | None:
    """One line saying which missing thing WASI cannot have, if the diagnostics show one."""
    for pattern in _MISSING_PATTERNS:
        for match in pattern.finditer(diagnostics):
            if match.group(1) in WASI_MISSING:
                return WASI_MISSING[match.group(1)]
    if "#error" in diagnostics or "error: " in diagnostics:
        if "setjmp" in diagnostics and ("exception" in diagnostics.lower()):
            return WASI_MISSING["setjmp"]
        if "signal" in diagnostics and "_WASI_EMULATED_SIGNAL" in diagnostics:
            return WASI_MISSING["sigaction"]
        if "exceptions disabled" in diagnostics:
            return WASI_MISSING["__cxa_throw"]
        for word in ("pthread_create",):
            if f"'{word}'" in diagnostics:
                return WASI_MISSING[word]
    return None
