"""`vnet build`: compile portable C to a wasm32-wasip1 guest with zig.

The compiler is `zig cc -target wasm32-wasi` from the `ziglang` PyPI package
(run as `python -m ziglang`), so building guests needs no system packages.
Every build adds the vnet SDK: its include directory goes first on the
include path, and its C sources (vnet/sdk/src/*.c) are compiled in, so
guests get vnet's socket layer and the wasi-libc emulations (signals,
process clocks, getpid, mman) without extra flags.

Builds are cached by content: the key covers the compiler version, the
flags, every source, the headers next to each source and in -I directories,
and the SDK. A hit copies the cached module to the output path. Compiler
diagnostics pass through to stderr unchanged; a failed build raises
`BuildError`. This module touches the file system and runs the compiler;
nothing else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

SDK_DIR = Path(__file__).resolve().parent / "sdk"
SDK_INCLUDE = SDK_DIR / "include"
SDK_SOURCES = SDK_DIR / "src"

TARGET = "wasm32-wasi"
EMULATIONS = ("signal", "process-clocks", "getpid", "mman")
BASE_FLAGS = [
    "-target", TARGET,
    "-std=gnu11",
    "-Wall",
    *(f"-D_WASI_EMULATED_{e.upper().replace('-', '_')}" for e in EMULATIONS),
]
LINK_FLAGS = [f"-lwasi-emulated-{e}" for e in EMULATIONS]


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


def cache_key(sources: Sequence[Path], flags: Sequence[str]) -> str:
    digest = hashlib.sha256()
    digest.update(zig_version().encode())
    digest.update("\0".join([*BASE_FLAGS, *LINK_FLAGS, *flags]).encode())
    header_dirs = {s.resolve().parent for s in sources} | {
        d.resolve() for d in _include_dirs(flags)
    }
    inputs = [*sources, *sdk_sources(), *_headers_in([SDK_INCLUDE, *sorted(header_dirs)])]
    for path in inputs:
        digest.update(str(path).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def build_wasm(
    sources: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    flags: Sequence[str] = (),
    optimize: str = "-O2",
    use_cache: bool = True,
    quiet: bool = False,
) -> Path:
    """Compile C sources (plus the SDK) into one wasm32-wasip1 module at `output`."""
    srcs = [Path(s) for s in sources]
    if not srcs:
        raise BuildError("no source files given")
    for src in srcs:
        if not src.is_file():
            raise BuildError(f"{src}: no such source file")
    out = Path(output)
    all_flags = [optimize, *flags]
    key = cache_key(srcs, all_flags) if use_cache else None
    cached = cache_dir() / f"{key}.wasm" if key else None
    if cached is not None and cached.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, out)
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vnet-build-") as tmp:
        tmp_out = Path(tmp) / "out.wasm"
        cmd = [
            *zig_command(), "cc", *BASE_FLAGS, "-I", str(SDK_INCLUDE), *all_flags,
            *(str(s) for s in srcs), *(str(s) for s in sdk_sources()),
            *LINK_FLAGS, "-o", str(tmp_out),
        ]
        env = dict(os.environ)
        env.setdefault("ZIG_GLOBAL_CACHE_DIR", str(cache_dir().parent / "zig"))
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        except OSError as e:
            raise BuildError(f"cannot run the zig compiler: {e}") from None
        if proc.stderr and (proc.returncode != 0 or not quiet):
            sys.stderr.write(proc.stderr)
        if proc.returncode != 0:
            names = ", ".join(str(s) for s in srcs)
            raise BuildError(f"compilation of {names} failed (exit {proc.returncode})")
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".tmp{os.getpid()}")
            shutil.copyfile(tmp_out, partial)
            os.replace(partial, cached)
        shutil.copyfile(tmp_out, out)
    return out
