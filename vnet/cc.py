"""`vnet cc` / `vnet c++`: a compiler driver build systems can point at.

`vnet cc ARGS...` is `zig cc -target wasm32-wasi ARGS...` with the vnet SDK
added: the SDK's include directory goes first and the wasi-libc emulation
macros are defined on every compile (`--linux`, vnet's one flag of its own,
also defines __linux__ for programs with a Linux branch); when the command links (no `-c`, `-S`,
`-E`, `-M`/`-MM`, `-fsyntax-only`), the SDK's archive (its sources compiled
once and cached, vnet.build's cache) and the wasi-libc emulation libraries
are added after the user's inputs. Every other flag goes to clang unchanged,
so `CC="vnet cc" ./configure --host=wasm32-wasi`, Makefiles and the CMake
toolchain file (`vnet cc --print-toolchain`, vnet/sdk/cmake/vnet-wasm32.cmake)
work as with any cross compiler. `vnet c++` is zig's clang++ with zig's
libc++, built for wasm32-wasi without exceptions, so it adds
`-fno-exceptions`. The driver's exit status is the compiler's; a failure on
something WASI cannot have (threads, signals …) gets one explaining line
after clang's diagnostics; fork, exec and friends link (the SDK defines them
to fail at run time with ENOSYS).

This module runs the compiler and writes the SDK archive into the build
cache; nothing else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from vnet.build import (
    EMULATIONS,
    LINK_FLAGS,
    LINUX_DEFINES,
    PTHREAD_LINK_FLAGS,
    SDK_DIR,
    SDK_INCLUDE,
    SDK_PTHREAD,
    SDK_PTHREAD_INCLUDE,
    TARGET,
    BuildError,
    _zig_env,
    cache_dir,
    compile_object,
    sdk_headers_key,
    sdk_sources,
    wasi_hint,
    zig_command,
)

TOOLCHAIN_FILE = SDK_DIR / "cmake" / "vnet-wasm32.cmake"
COMPILE_DEFINES = [f"-D_WASI_EMULATED_{e.upper().replace('-', '_')}" for e in EMULATIONS]
# The SDK archive is built once per compiler with these flags, whatever the user's are.
SDK_ARCHIVE_FLAGS = ["-O2"]

# Options that take their value as the next argument (so that value is not an input file).
_TAKES_VALUE = {
    "-o", "-I", "-D", "-U", "-include", "-imacros", "-isystem", "-idirafter", "-iquote",
    "-iprefix", "-iwithprefix", "-isysroot", "--sysroot", "-MF", "-MT", "-MQ", "-x", "-L",
    "-l", "-target", "-Xclang", "-Xlinker", "-Xpreprocessor", "-Xassembler", "-arch",
    "-T", "-u", "-z", "-e", "-mllvm", "-std", "-W", "--param",
}
_SOURCE_SUFFIXES = {".c", ".cc", ".cpp", ".cxx", ".C", ".i", ".s", ".S"}
_NO_LINK = {"-c", "-S", "-E", "-M", "-MM", "-fsyntax-only"}
_INFO_ONLY = ("--version", "-v", "-V", "-dumpversion", "-dumpmachine", "-qversion", "--help",
              "-print-", "--print-", "-###")


def _inputs(args: Sequence[str]) -> list[str]:
    found = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in _TAKES_VALUE:
            skip = True
        elif arg == "-" or not arg.startswith("-"):
            found.append(arg)
    return found


def links(args: Sequence[str]) -> bool:
    """Whether this command line links (so the SDK archive must be added)."""
    if any(a in _NO_LINK for a in args):
        return False
    return bool(_inputs(args))


def sdk_archive() -> Path:
    """The SDK's sources compiled (cached) and archived: cache/sdk-KEY.a."""
    objects = [compile_object(s, SDK_ARCHIVE_FLAGS, quiet=True) for s in sdk_sources()]
    digest = hashlib.sha256()
    for obj in objects:
        digest.update(obj.name.encode())
    archive = cache_dir() / f"sdk-{digest.hexdigest()[:24]}.a"
    if archive.is_file():
        return archive
    with tempfile.TemporaryDirectory(prefix="vnet-cc-") as tmp:
        tmp_archive = Path(tmp) / "libvnet.a"
        # members need distinct names: the objects are named by key, so copy to source names
        members = []
        for source, obj in zip(sdk_sources(), objects, strict=True):
            member = Path(tmp) / f"vnet_{source.stem}.o"
            shutil.copyfile(obj, member)
            members.append(str(member))
        proc = subprocess.run([*zig_command(), "ar", "rcs", str(tmp_archive), *members],
                              env=_zig_env(), capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise BuildError(f"archiving the SDK failed: {proc.stderr.strip()}")
        partial = archive.with_name(f"{archive.name}.tmp{os.getpid()}")
        shutil.copyfile(tmp_archive, partial)
        os.replace(partial, archive)
    return archive


def wants_threads(args: Sequence[str]) -> bool:
    """-pthread: vnet's green threads (vnet/guest/threads.py), not zig's thread stubs."""
    return "-pthread" in args


def output_of(args: Sequence[str]) -> Path:
    """The file a linking command line writes (-o, else a.out as clang does)."""
    it = iter(args)
    for arg in it:
        if arg == "-o":
            return Path(next(it, "a.out"))
        if arg.startswith("-o") and len(arg) > 2:
            return Path(arg[2:])
    return Path("a.out")


def command(args: Sequence[str], language: str = "cc") -> list[str]:
    """The zig command line `vnet cc ARGS` (or `vnet c++ ARGS`) runs.

    -pthread is vnet's: it is taken off the line (zig's would pick wasi-libc's
    thread stubs), defines _REENTRANT, and when linking adds the pthread runtime
    and the __stack_pointer export; `main` then runs Asyncify over the output.
    `--linux` is vnet's own flag (not passed to clang): it defines __linux__ and
    __linux, as `vnet build --linux` does (vnet.build.LINUX_DEFINES).
    """
    threads = wants_threads(args)
    user = [a for a in args if a not in ("--linux", "-pthread")]
    if "--linux" in args:
        user = [*LINUX_DEFINES, *user]
    has_target = any(a in ("-target",) or a.startswith("--target=") for a in user)
    cmd = [*zig_command(), language]
    if not has_target:
        cmd += ["-target", TARGET]
    info_only = not _inputs(user) and any(a.startswith(_INFO_ONLY) for a in user)
    if info_only:
        return [*cmd, *user]
    linking = links(user)
    if linking and not any(a.startswith("-O") for a in user) and not any(
            Path(a).suffix in _SOURCE_SUFFIXES for a in _inputs(user)):
        # Linking objects only: -O picks the prebuilt wasi-libc zig links (not the
        # user's code), and -O2's is the one every vnet build already has.
        cmd.append("-O2")
    # zig cc turns on UBSan when no -O is given, which clang does not: code built
    # that way needs zig's ubsan runtime at link time. Be clang (a user's
    # -fsanitize=undefined, later on the line, still wins).
    # the SDK headers' digest as a macro, so that zig's own cache notices a header
    # added where it shadows another (vnet.build.compile_object says more)
    cmd += ["-fno-sanitize=undefined", "-I", str(SDK_INCLUDE), *COMPILE_DEFINES,
            f"-D__VNET_SDK_KEY__={sdk_headers_key()}"]
    if language == "c++":
        # zig's libc++ for wasm32-wasi is built without exceptions: even code that never
        # throws links only when its templates are compiled without them.
        cmd.append("-fno-exceptions")
    if threads:
        cmd += ["-I", str(SDK_PTHREAD_INCLUDE), "-D_REENTRANT"]
        if linking:  # first, so wasm-ld never takes wasi-libc's thread stubs instead
            cmd += [str(compile_object(SDK_PTHREAD, SDK_ARCHIVE_FLAGS, quiet=True)),
                    *PTHREAD_LINK_FLAGS]
    cmd += user
    if linking:
        # the archive members with /dev's and /etc's preopens have only a constructor:
        # pull them in by exporting it (zig ignores -u for wasm)
        cmd += ["-Wl,--export=__vnet_dev_preopen", "-Wl,--export=__vnet_etc_preopen",
                str(sdk_archive()), *LINK_FLAGS]
    return cmd


def main(argv: Sequence[str], language: str = "cc") -> int:
    """`vnet cc ARGS...`: run zig with the SDK added; exit status is the compiler's."""
    args = list(argv)
    if args in (["--print-toolchain"], ["--print-cmake-toolchain"]):
        print(TOOLCHAIN_FILE)
        return 0
    if args == ["--print-sdk"]:
        print(SDK_DIR)
        return 0
    try:
        if wants_threads(args) and links([a for a in args if a != "-pthread"]):
            from vnet.asyncify import wasm_opt
            wasm_opt()  # fail fast, before compiling, when Binaryen cannot be had
        cmd = command(args, language)
    except BuildError as e:
        print(f"vnet {language}: {e}", file=sys.stderr)
        return 1
    try:
        proc = subprocess.run(cmd, env=_zig_env(), stderr=subprocess.PIPE, text=True)
    except OSError as e:
        print(f"vnet {language}: cannot run the zig compiler: {e}", file=sys.stderr)
        return 1
    if proc.stderr:
        sys.stderr.write(proc.stderr)
    if proc.returncode != 0:
        hint = wasi_hint(proc.stderr or "")
        if hint:
            print(f"vnet {language}: {hint}", file=sys.stderr)
        return proc.returncode
    if wants_threads(args) and links([a for a in args if a != "-pthread"]):
        from vnet.asyncify import ASYNCIFY_IMPORTS, asyncify
        try:
            asyncify(output_of(args), ASYNCIFY_IMPORTS)
        except BuildError as e:
            print(f"vnet {language}: {e}", file=sys.stderr)
            return 1
    return 0
